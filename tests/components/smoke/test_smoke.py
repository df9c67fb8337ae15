"""The smoke step (issue 13): in every stack with Kubeflow, after everything; its real script logs in
through a local fake of oauth2-proxy and Dex and drives a fake KFP API; its pipeline is KFP 2.16 IR."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import time

import pytest
import yaml

from components.shared import images_plan
from components.k3s import k3s_plan, scripts
from components.kubeflow import kubeflow_plan
from components.smoke import smoke_plan
from stacks import versions
from stacks.settings import ConfigError, parse_settings
from tests import harness
from tests.components.smoke import smoke_fakes as fakes
from tests.harness import stack_raw

KUBEFLOW_STACKS = [s for s in harness.STACKS if parse_settings(stack_raw(s), s).kubeflow.mode != "none"]
PASSWORD = "p@ss w&rd=+%ä'\"x"  # every character that could break a form body or a shell word
EMAIL = "admin@example.com"


# --- the graph ------------------------------------------------------------------------------------


def kubeflow_registrations(run: harness.Run) -> list[harness.Registration]:
    """Every resource of the Kubeflow layer (the Kubeflow or KfpStandalone component and its descendants)."""
    layer = [r.urn for r in run.registrations
             if r.type in ("kubeflow-k3s:kubeflow:Kubeflow", "kubeflow-k3s:kubeflow:KfpStandalone")]
    assert len(layer) == 1
    parents = {r.urn: r.parent for r in run.registrations}
    out = []
    for r in run.registrations:
        parent = r.parent
        while parent and parent != layer[0]:
            parent = parents.get(parent, "")
        if parent:
            out.append(r)
    return out


@pytest.mark.parametrize("stack", KUBEFLOW_STACKS)
def test_every_kubeflow_stack_ends_with_the_smoke_step_after_everything(runs, stack):
    run = runs[stack]
    check = run.get("smoke-check")
    assert run.ancestors("smoke-check")[0] == "smoke"
    kubeflow = [r for r in kubeflow_registrations(run) if r.custom]
    assert len(kubeflow) > 5
    missing = [r.name for r in kubeflow if not run.waits_for(check, r)]
    assert not missing, f"the smoke step does not wait for {missing}"
    # GPU layer and the gateway certificate, when the stack has them.
    for name in ("gpu-settled", "istio-gateway-certificate"):
        if name in run.names():
            assert run.depends_on("smoke-check", name)
    # Nothing waits for the smoke step: it is the last step.
    assert not [r.name for r in run.registrations if check.urn in r.dependencies]
    # It runs on the first server, is deleted with K3s, and is bounded.
    settings = parse_settings(stack_raw(stack), stack)
    assert check.deleted_with == run.get("k3s-cluster-identity").urn  # goes with the cluster, not with one host
    assert check.custom_timeouts["create"] == f"{smoke_plan.timeout_seconds(settings)}s"
    script = harness.script(check.inputs["create"])
    assert "# kubeflow-k3s: smoke.sh" in script
    assert f"MODE={settings.kubeflow.mode}" in script
    # One GPU check pod per GPU node of the stack, none without.
    pods = " ".join(f"{smoke_plan.GPU_POD_PREFIX}{n.name}" for n in settings.gpu_nodes)
    assert (f"GPU_PODS={pods}\n" if pods else "GPU_PODS=''\n") in script
    # installSeconds: from the mocked run's report, counted from the preflight's `started` line.
    assert run.exports["installSeconds"] == 1843
    assert "STARTED=1767225600" in script


def test_no_smoke_step_without_kubeflow_or_when_switched_off():
    off = harness.run_stack("edge", overrides={"smoke": {"enabled": False}})
    assert "smoke-check" not in off.names() and "installSeconds" not in off.exports
    none = harness.run_stack("edge", overrides={"kubeflow": {"mode": "none"}})
    assert "smoke-check" not in none.names()


@pytest.mark.parametrize("stack", KUBEFLOW_STACKS)
def test_no_secret_in_the_smoke_command_text(runs, stack):
    run = runs[stack]
    check = run.get("smoke-check")
    text = " ".join(str(check.inputs.get(k) or "") for k in ("create", "update", "delete", "triggers"))
    generated = {s for r in run.registrations if r.type.startswith("random:") for s in [r.name]}
    for secret in harness.FAKE_SECRETS.values():
        assert secret not in text
    assert harness.GENERATED_PREFIX not in text, "a generated credential is in the command text"
    assert generated  # the stack has generated secrets, so the check above means something
    if parse_settings(stack_raw(stack), stack).kubeflow.mode == "full":
        # The admin password is the command's stdin, and secret.
        assert harness.is_secret(check.raw_inputs["stdin"])
        assert check.inputs["stdin"].startswith(harness.GENERATED_PREFIX) or check.inputs["stdin"] == harness.FAKE_SECRETS["adminPassword"]
    else:
        assert not check.inputs.get("stdin")


def test_configured_admin_password_travels_on_stdin_only():
    secrets = {"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"], "adminPassword": harness.FAKE_SECRETS["adminPassword"]}
    run = harness.run_stack("cloud", secrets=secrets)
    check = run.get("smoke-check")
    assert check.inputs["stdin"] == harness.FAKE_SECRETS["adminPassword"] and harness.is_secret(check.raw_inputs["stdin"])
    assert harness.FAKE_SECRETS["adminPassword"] not in check.inputs["create"]


def test_what_it_checks_is_in_its_text_so_a_change_re_runs_it():
    base = parse_settings(stack_raw("cloud"), "cloud")
    text = smoke_plan.script(base, "1")
    raw = stack_raw("cloud")
    changes = {
        "admin email": {**raw, "kubeflow": {**raw["kubeflow"], "adminEmail": "root@example.com"}},
        "k3s version": {**raw, "k3s": {**raw["k3s"], "version": "v1.34.7+k3s1"}},
        "components": {**raw, "kubeflow": {**raw["kubeflow"], "components": {"katib": False}}},
        "tls host": {**raw, "tls": {**raw["tls"], "host": "ml.example.com"}},
        "timeout": {**raw, "smoke": {"timeoutSeconds": 300}},
        # issue 13: new users or an identity provider re-check the login
        "users": {**raw, "kubeflow": {**raw["kubeflow"], "users": [
            *(raw["kubeflow"].get("users") or []), {"name": "carol", "email": "carol@example.com"}]}},
        "identity provider": {**raw, "kubeflow": {**raw["kubeflow"], "identityProvider": {
            "type": "oidc", "issuer": "https://login.example.com", "clientId": "kubeflow"}}},
    }
    for what, changed in changes.items():
        assert smoke_plan.script(parse_settings(changed, "cloud"), "1") != text, what
    assert smoke_plan.script(base, "2") != text  # a new preflight (new install) re-runs it too
    assert smoke_plan.script(base, "1") == text  # and nothing else does: previews stay quiet


def test_preflight_reports_when_it_started():
    import platform

    s = parse_settings(stack_raw("dev"), "dev")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    params = {**k3s_plan.preflight_params(s, s.nodes[0]), "EXPECT_ARCH": arch, "MIN_MEMORY_MIB": 256, "MIN_DISK_GIB": 1}
    before = int(time.time())
    out = subprocess.run(["sh", "-c", scripts.render("preflight.sh", params)], capture_output=True, text=True, timeout=60)
    started = smoke_plan.started_epoch(out.stdout)
    assert before <= int(started) <= int(time.time())
    assert smoke_plan.started_epoch("") == "" and smoke_plan.started_epoch("garbage") == ""


def smoke_step_images(settings) -> set[tuple[str, str]]:
    """(image, where) of every pod the smoke step starts, read from what it runs: the pipeline IR's
    executors (a run's pod lands on any node) and the GPU check pods (on their GPU node)."""
    doc = yaml.safe_load(smoke_plan.PIPELINE_FILE.read_text())
    out = {(e["container"]["image"], images_plan.ANY) for e in doc["deploymentSpec"]["executors"].values()}
    kinds = {n.name: n.gpu for n in settings.nodes}
    for pod in json.loads(smoke_plan.params(settings)["GPU_MANIFEST"] or '{"items": []}')["items"]:
        node = pod["spec"]["nodeSelector"]["kubernetes.io/hostname"]
        out |= {(c["image"], f"gpu:{kinds[node]}") for c in pod["spec"]["containers"]}
    return out


@pytest.mark.parametrize("stack", KUBEFLOW_STACKS)
def test_every_image_the_smoke_step_runs_is_in_the_stack_image_list(stack):
    """An air-gapped stack runs its smoke step from the pre-pulled images and the bundle."""
    s = parse_settings(stack_raw(stack), stack)
    wanted = smoke_step_images(s)
    assert wanted and any(where == images_plan.ANY for _, where in wanted)
    listed = {(i.ref, i.where) for i in images_plan.stack_images(s).images}
    assert wanted <= listed
    bundle = set(images_plan.all_images(s))
    assert {images_plan.qualified(ref) for ref, _ in wanted} <= bundle
    for node in s.gpu_nodes:  # each GPU node pre-pulls its check pod's image
        assert versions.SMOKE_GPU_IMAGE in images_plan.images_for(s, node)
    off = parse_settings({**stack_raw(stack), "smoke": {"enabled": False}}, stack)
    assert not {ref for ref, _ in wanted} & {i.ref for i in images_plan.stack_images(off).images}


def test_the_gpu_check_image_is_listed_per_gpu_kind():
    raw = stack_raw("cloud")
    raw = {**raw, "nodes": [*raw["nodes"], {"name": "jetson-1", "host": "192.0.2.41", "role": "agent", "arch": "arm64",
                                            "gpu": "jetson", "hostKey": raw["nodes"][0]["hostKey"]}]}
    s = parse_settings(raw, "cloud")
    wanted = smoke_step_images(s)
    assert {w for _, w in wanted} >= {"gpu:nvidia", "gpu:jetson"}
    assert wanted <= {(i.ref, i.where) for i in images_plan.stack_images(s).images}


# --- GPU check pods ---------------------------------------------------------------------------------


def test_gpu_check_pods_are_valid_and_land_on_their_node():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    raw = stack_raw("cloud")
    raw = {**raw, "nodes": [*raw["nodes"], {"name": "jetson-1", "host": "192.0.2.41", "role": "agent", "arch": "arm64",
                                            "gpu": "jetson", "taints": ["dedicated=gpu:NoSchedule"],
                                            "hostKey": raw["nodes"][0]["hostKey"]}]}
    s = parse_settings(raw, "cloud")
    pods = smoke_plan.gpu_pods(s)
    assert [p["spec"]["nodeSelector"]["kubernetes.io/hostname"] for p in pods] == [n.name for n in s.gpu_nodes]
    for pod in pods:
        kubernetes_validate.validate(pod, versions.KUBERNETES_MINOR, strict=True)
        container = pod["spec"]["containers"][0]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
        assert pod["spec"]["runtimeClassName"] == "nvidia" and pod["spec"]["restartPolicy"] == "Never"
    nvidia, jetson = pods
    assert nvidia["spec"]["containers"][0]["command"][-1] == "nvidia-smi"
    assert "/dev/nvhost-ctrl-gpu" in jetson["spec"]["containers"][0]["command"][-1]
    assert {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in jetson["spec"]["tolerations"]
    manifest = json.loads(smoke_plan.params(s)["GPU_MANIFEST"])
    assert manifest["kind"] == "List" and manifest["items"] == pods


# --- the pipeline: KFP 2.16 IR ---------------------------------------------------------------------------


def pipeline_spec_class():
    """PipelineSpec of kfp-pipeline-spec 2.16.0 (installed without dependencies by scripts/run-tests.sh:
    its generated module demands protobuf 6, pulumi-policy pins 5). The module's own serialized
    descriptor is loaded into a fresh pool with the protobuf runtime at hand: the same schema."""
    spec = importlib.util.find_spec("kfp.pipeline_spec.pipeline_spec_pb2") if importlib.util.find_spec("kfp") else None
    if spec is None or spec.origin is None:
        pytest.skip("kfp-pipeline-spec 2.16.0 is not installed (scripts/run-tests.sh installs it)")
    from importlib.metadata import version

    assert version("kfp-pipeline-spec") == "2.16.0"
    from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory, struct_pb2
    from google.rpc import status_pb2

    tree = ast.parse(open(spec.origin).read())
    serialized = next(node.args[0].value for node in ast.walk(tree)
                      if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile")
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, struct_pb2, status_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    pool.AddSerializedFile(serialized)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ml_pipelines.PipelineSpec"))


def test_smoke_pipeline_is_kfp_2_16_ir():
    from google.protobuf import json_format

    doc = yaml.safe_load(smoke_plan.pipeline_yaml())
    message = json_format.ParseDict(doc, pipeline_spec_class()())  # unknown or mistyped fields raise
    assert message.schema_version == "2.1.0" and message.sdk_version == "kfp-2.16.0"
    executors = message.deployment_spec["executors"]
    assert list(executors) == ["exec-echo"]
    container = executors["exec-echo"]["container"]
    assert container["image"] == versions.SMOKE_PIPELINE_IMAGE and list(container["command"]) == ["echo"]
    tasks = message.root.dag.tasks
    assert list(tasks) == ["echo"] and tasks["echo"].component_ref.name in message.components
    assert not tasks["echo"].caching_options.enable_cache  # every smoke run really runs a pod


def test_a_broken_pipeline_is_rejected_by_the_schema():
    from google.protobuf import json_format

    doc = yaml.safe_load(smoke_plan.pipeline_yaml())
    doc["root"]["dag"]["tasks"]["echo"]["componentRef"]["nme"] = "comp-echo"
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(doc, pipeline_spec_class()())


# --- the real script against local fakes ----------------------------------------------------------------

needs_tools = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl")
    return fakes.make_tls(tmp_path_factory.mktemp("tls"), ["kubeflow.smoke.test", "localhost"])


@pytest.fixture
def fake_kubeflow(tls):
    fake = fakes.FakeKubeflow(email=EMAIL, password=PASSWORD, namespace="admin").start(tls[1])
    yield fake
    fake.stop()


def run_smoke(tmp_path, values: dict, state: dict, *, stdin: str = "", no_dns: bool = False, timeout: int = 120):
    bindir, k3s, log = fakes.fake_bin(tmp_path, state, no_dns=no_dns)
    text = smoke_plan.render({**values, "K3S_BIN": str(k3s), "DEADLINE_SECONDS": 60})
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = subprocess.run(["sh", "-c", text], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    return result, log


def full_values(url: str, **extra) -> dict:
    s = parse_settings({**stack_raw("dev"), "kubeflow": {"adminEmail": EMAIL}}, "dev")
    return {**smoke_plan.params(s, "1000"), "DASHBOARD_URL": url, **extra}


@needs_tools
def test_full_mode_logs_in_through_dex_and_runs_the_pipeline(tmp_path, tls, fake_kubeflow):
    """Host name not resolvable on the node: the script reaches the gateway's node port with
    --connect-to, verifies HTTPS with the gateway Secret's ca.crt, logs in, runs, cleans up."""
    fake = fake_kubeflow
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake.port}
    result, log = run_smoke(tmp_path, full_values("https://kubeflow.smoke.test/"), state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 0, result.stderr
    report = fakes.report(result.stdout)
    assert report["reachedThrough"] == f"gateway 127.0.0.1:{fake.port}"
    assert report["login"] == f"ok {EMAIL}" and report["dashboard"] == "ok admin"
    assert report["pipelinesApi"] == "ok" and report["pipelineRun"] == "SUCCEEDED r-1 in admin"
    # Notebooks: the Jupyter web app listed the admin's notebooks as the logged-in admin, and the
    # notebook-like pod went through a server-side dry run in their namespace and came back injected.
    assert report["notebooksApi"] == "ok admin"
    assert report["notebookPod"].startswith("ok admin: admitted with the istio-proxy sidecar")
    jupyter = [r for r in fake.requests if r.path.startswith("/jupyter/")]
    assert [(r.method, r.path) for r in jupyter] == [("GET", "/jupyter/api/namespaces/admin/notebooks")]
    assert fakes.SESSION_COOKIE in (jupyter[0].headers.get("Cookie") or "")
    kubectl_calls = log.read_text()
    assert "-n admin get rolebinding namespaceAdmin" in kubectl_calls
    assert "-n admin create --dry-run=server -o yaml -f -" in kubectl_calls
    dry_run = json.loads((tmp_path / "k3s-state.json").read_text())["dry_run"]
    assert dry_run == json.loads(full_values("x")["NOTEBOOK_POD"])
    installed = int(report["installSeconds"])
    assert abs(installed - (int(time.time()) - 1000)) < 120
    # The three hops, in order, and the form POST carried exactly the password (url-encoded by curl).
    calls = fake.calls()
    hops = ["GET /oauth2/start", "GET /dex/auth", "GET /dex/auth/local", "GET /dex/auth/local/login",
            "POST /dex/auth/local/login", "GET /dex/approval", "GET /oauth2/callback"]
    positions = [calls.index(h) for h in hops]
    assert positions == sorted(positions)
    assert calls[0] == "GET /" and calls.index("GET /oauth2/start") > 0  # the anonymous request came first
    # The pipeline: uploaded into the admin's namespace with the shipped IR, run, polled, deleted.
    assert fake.uploaded["query"]["namespace"] == "admin"
    assert fakes.multipart_file(fake.uploaded["body"]) == smoke_plan.pipeline_yaml()
    experiment = json.loads(next(r.body for r in fake.requests if r.path.endswith("/experiments")))
    assert experiment["namespace"] == "admin"
    run = json.loads(next(r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/runs")))
    assert run["experiment_id"] == "e-1"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-1"}
    assert fake.polls >= 2
    assert fake.calls("DELETE") == [f"DELETE /pipeline/apis/v2beta1/{p}" for p in
                                    ("runs/r-1", "experiments/e-1", "pipelines/p-1/versions/v-1", "pipelines/p-1")]
    # Every API call after the login carried the session cookie; nothing printed the password.
    for r in fake.requests:
        if r.path.startswith("/pipeline/"):
            assert fakes.SESSION_COOKIE in (r.headers.get("Cookie") or "")
    assert PASSWORD not in result.stdout + result.stderr
    assert "get secret kubeflow-gateway-tls" in log.read_text().replace("-n istio-system ", "")


@needs_tools
def test_full_mode_logs_in_through_the_local_connector_when_dex_offers_a_choice(tmp_path, tls, fake_kubeflow):
    """kubeflow.identityProvider: Dex shows its connector chooser (the provider and `local`); the script
    follows the `local` link to the password form (the admin is a static password)."""
    fake = fake_kubeflow
    fake.chooser = True
    fake.polls_before_success = 0
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake.port}
    result, _ = run_smoke(tmp_path, full_values("https://kubeflow.smoke.test/"), state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 0, result.stderr
    assert fakes.report(result.stdout)["login"] == f"ok {EMAIL}"
    calls = fake.calls()
    assert "GET /dex/auth/oidc" not in calls
    local = next(r for r in fake.requests if r.path == "/dex/auth/local")
    assert local.query["client_id"] == ["kubeflow-oidc-authservice"]  # the link's &amp; was unescaped
    assert calls.index("GET /dex/auth") < calls.index("GET /dex/auth/local") < calls.index("POST /dex/auth/local/login")


NO_PROFILES = {"profiles": False, "pipelines": False, "centralDashboard": False, "notebooks": False,
               "volumes": False, "tensorboards": False, "katib": False}


def test_without_profiles_the_smoke_step_checks_no_profile_namespace():
    s = parse_settings({**stack_raw("dev"), "kubeflow": {"adminEmail": EMAIL, "components": NO_PROFILES}}, "dev")
    params = smoke_plan.params(s, "1000")
    assert params["CHECK_PROFILE"] is False and params["CHECK_PIPELINES"] is False
    assert smoke_plan.params(parse_settings(stack_raw("dev"), "dev"))["CHECK_PROFILE"] is True
    # Multi-user Pipelines need a Profile (settings refuse pipelines without profiles): never a run without one.
    with pytest.raises(ConfigError):
        parse_settings({**stack_raw("dev"), "kubeflow": {"components": {**NO_PROFILES, "pipelines": True}}}, "dev")


@needs_tools
def test_full_mode_without_profiles_logs_in_and_skips_the_namespace(tmp_path, tls, fake_kubeflow):
    s = parse_settings({**stack_raw("dev"), "kubeflow": {"adminEmail": EMAIL, "components": NO_PROFILES}}, "dev")
    values = {**smoke_plan.params(s, "1000"), "DASHBOARD_URL": "https://kubeflow.smoke.test/"}
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake_kubeflow.port}
    result, log = run_smoke(tmp_path, values, state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 0, result.stderr
    report = fakes.report(result.stdout)
    assert report["login"] == f"ok {EMAIL}"
    assert report["profile"].startswith("skipped: the profiles component is off")
    assert "get namespace" not in log.read_text()
    assert not [c for c in fake_kubeflow.calls() if "/pipeline/" in c]
    assert not [c for c in fake_kubeflow.calls() if "/jupyter/" in c] and "dry-run" not in log.read_text()


@needs_tools
def test_full_mode_uses_the_name_when_it_resolves(tmp_path, tls, fake_kubeflow):
    fake_kubeflow.polls_before_success = 0
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": 1}
    result, _ = run_smoke(tmp_path, full_values(f"https://localhost:{fake_kubeflow.port}/"), state, stdin=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert fakes.report(result.stdout)["reachedThrough"] == "dns"


@needs_tools
@pytest.mark.parametrize("case,expect", [
    ("wrong-password", "Dex refused the login of admin@example.com"),
    ("no-password", "no admin password on stdin"),
    ("anonymous-ok", "the login is not enforced"),
    ("rbac-denied", "RBAC: access denied"),
    ("run-fails", "ended FAILED: step echo failed"),
    ("untrusted-ca", "is not signed by the CA in Secret istio-system/kubeflow-gateway-tls"),
])
def test_full_mode_failures_say_what_failed(tmp_path, tls, fake_kubeflow, case, expect):
    fake = fake_kubeflow
    fake.polls_before_success = 0
    stdin = {"wrong-password": "not-the-password", "no-password": ""}.get(case, PASSWORD)
    fake.anonymous_ok = case == "anonymous-ok"
    fake.rbac_denied = case == "rbac-denied"
    fake.final_state = "FAILED" if case == "run-fails" else "SUCCEEDED"
    if case == "untrusted-ca":  # the gateway's certificate is not from the stack's CA
        (tmp_path / "other").mkdir()
        ca = fakes.ca_b64(fakes.make_tls(tmp_path / "other", ["kubeflow.smoke.test"])[0])
    else:
        ca = fakes.ca_b64(tls[0])
    state = {"ca_b64": ca, "service_type": "NodePort", "port": fake.port}
    result, _ = run_smoke(tmp_path, full_values("https://kubeflow.smoke.test/"), state, stdin=stdin, no_dns=True)
    assert result.returncode == 1
    assert expect in result.stderr, result.stderr
    assert "Check:" in result.stderr or case == "no-password"
    assert PASSWORD not in result.stdout + result.stderr


# --- how the gateway's certificate is verified ------------------------------------------------------


def staging_settings(issuer: str = "letsencrypt-staging"):
    tls = {"issuer": issuer, "host": "kubeflow.example.com", "email": "ops@example.com"}
    return parse_settings({**stack_raw("dev"), "kubeflow": {"adminEmail": EMAIL}, "tls": tls}, "dev")


def test_the_certificate_is_verified_by_where_it_comes_from():
    selfsigned = smoke_plan.params(parse_settings(stack_raw("dev"), "dev"))
    assert (selfsigned["PUBLIC_CA"], selfsigned["CA_KEY"]) == (False, "ca.crt")
    production = smoke_plan.params(staging_settings("letsencrypt"))
    assert production["PUBLIC_CA"] is True
    # Staging: the certificate must still be issued (the script waits for it), but its root is in no
    # trust store and its Secret has no ca.crt: curl trusts the Secret's own chain instead.
    staging = smoke_plan.params(staging_settings())
    assert (staging["PUBLIC_CA"], staging["CA_KEY"]) == (False, "tls.crt")
    assert smoke_plan.params(parse_settings(stack_raw("cloud"), "cloud"))["PUBLIC_CA"] is True


@pytest.fixture(scope="module")
def staging_tls(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl")
    return fakes.make_staging_tls(tmp_path_factory.mktemp("staging"), ["kubeflow.smoke.test"])


@needs_tools
@pytest.mark.parametrize("served", ["issued", "another-chain"])
def test_letsencrypt_staging_is_verified_with_the_issued_chain(tmp_path, staging_tls, served):
    """tls.issuer letsencrypt-staging: the Secret has tls.crt (certificate + staging intermediate) and no
    ca.crt; the gateway must serve that chain. A certificate of another chain fails as untrusted."""
    if served == "issued":
        chain, server = staging_tls
    else:
        (tmp_path / "other").mkdir()
        chain, _ = fakes.make_staging_tls(tmp_path / "other", ["kubeflow.smoke.test"])
        server = staging_tls[1]
    fake = fakes.FakeKubeflow(email=EMAIL, password=PASSWORD, namespace="admin", polls_before_success=0).start(server)
    try:
        values = {**smoke_plan.params(staging_settings(), "1000"), "DASHBOARD_URL": "https://kubeflow.smoke.test/"}
        state = {"tls_b64": fakes.ca_b64(chain), "service_type": "NodePort", "port": fake.port}
        result, log = run_smoke(tmp_path, values, state, stdin=PASSWORD, no_dns=True)
    finally:
        fake.stop()
    calls = log.read_text()
    assert "get certificate kubeflow-gateway-tls" in calls  # still waits for the issued certificate
    assert "tls\\.crt" in calls and "ca\\.crt" not in calls
    if served == "issued":
        assert result.returncode == 0, result.stderr
        assert fakes.report(result.stdout)["login"] == f"ok {EMAIL}"
    else:
        assert result.returncode == 1
        assert "is not the Let's Encrypt staging certificate issued into Secret istio-system/kubeflow-gateway-tls" in result.stderr


@needs_tools
def test_letsencrypt_production_needs_a_publicly_trusted_certificate(tmp_path, tls, fake_kubeflow):
    """The system's CAs only: the test CA of the fake is not among them, and no Secret key is read."""
    values = {**smoke_plan.params(staging_settings("letsencrypt"), "1000"), "DASHBOARD_URL": "https://kubeflow.smoke.test/"}
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake_kubeflow.port}
    result, log = run_smoke(tmp_path, values, state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 1
    assert "is not publicly trusted (Let's Encrypt)" in result.stderr, result.stderr
    assert "get secret" not in log.read_text()


# --- notebooks ---------------------------------------------------------------------------------------


def test_notebooks_are_checked_only_in_full_mode_with_the_notebooks_component():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    full = parse_settings(stack_raw("dev"), "dev")
    params = smoke_plan.params(full)
    assert params["CHECK_NOTEBOOKS"] is True
    pod = json.loads(params["NOTEBOOK_POD"])
    assert pod == smoke_plan.notebook_pod(kubeflow_plan.admin_namespace(full))
    kubernetes_validate.validate(pod, versions.KUBERNETES_MINOR, strict=True)
    assert pod["metadata"]["namespace"] == params["ADMIN_NAMESPACE"]
    assert pod["spec"]["serviceAccountName"] == "default-editor"  # what notebook pods run as
    # The image is the smoke pipeline's, already in the image list (a dry run pulls nothing anyway).
    assert {c["image"] for c in pod["spec"]["containers"]} <= smoke_plan.pipeline_images()
    off = parse_settings({**stack_raw("dev"), "kubeflow": {"components": {"notebooks": False}}}, "dev")
    assert smoke_plan.params(off)["CHECK_NOTEBOOKS"] is False and smoke_plan.params(off)["NOTEBOOK_POD"] == ""
    edge = smoke_plan.params(parse_settings(stack_raw("edge"), "edge"))
    assert edge["CHECK_NOTEBOOKS"] is False and edge["NOTEBOOK_POD"] == ""


def rendered_docs(upstream, prefix: str) -> list[dict]:
    (path,) = (upstream / "rendered" / "kubeflow-26.03").glob(f"{prefix}*.yaml")
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_notebook_checks_match_kubeflow_26_03(upstream):
    """What the script relies on, in the rendered kubeflow/manifests 26.03: the web app's route and
    policy (the names in its messages), and the PodDefault webhook (Fail policy) selecting Profile
    namespaces by a label the Profile controller sets, with no object selector, so the dry-run pod
    passes through it; its sideEffects (None), like Istio's injector's, let a dry run call it."""
    jwa = rendered_docs(upstream, "16-applications_jupyter_jupyter-web-app")
    (vs,) = [d for d in jwa if d["kind"] == "VirtualService"]
    (route,) = vs["spec"]["http"]
    assert route["match"] == [{"uri": {"prefix": "/jupyter/"}}] and route["rewrite"] == {"uri": "/"}
    deployment = next(d for d in jwa if d["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "jupyter-web-app-deployment"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/jupyter-web-app:v1.10.0")
    assert [d["metadata"]["name"] for d in jwa if d["kind"] == "AuthorizationPolicy"] == ["jupyter-web-app"]

    webhook_docs = rendered_docs(upstream, "15-applications_admission-webhook")
    (config,) = [d for d in webhook_docs if d["kind"] == "MutatingWebhookConfiguration"]
    (webhook,) = config["webhooks"]
    assert webhook["failurePolicy"] == "Fail" and webhook["sideEffects"] == "None"
    assert webhook["rules"][0]["operations"] == ["CREATE"] and webhook["rules"][0]["resources"] == ["pods"]
    assert "objectSelector" not in webhook
    assert webhook["clientConfig"]["service"]["name"] == "admission-webhook-service"
    assert "admission-webhook-deployment" in {d["metadata"]["name"] for d in webhook_docs if d["kind"] == "Deployment"}
    profiles = rendered_docs(upstream, "18-applications_profiles_pss")
    labels_cm = next(d for d in profiles if d["kind"] == "ConfigMap" and "namespace-labels.yaml" in d.get("data", {}))
    profile_labels = yaml.safe_load(labels_cm["data"]["namespace-labels.yaml"])
    assert webhook["namespaceSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "kubeflow-profile"}}
    assert webhook["namespaceSelector"]["matchLabels"].items() <= profile_labels.items()


@needs_tools
@pytest.mark.parametrize("case,expect", [
    ("rbac-denied", "the Jupyter web app's API refused the logged-in admin@example.com"),
    ("forbidden", "is not authorized to list kubeflow.org/v1beta1/notebooks in namespace 'admin'"),
    ("absent", "the Jupyter web app's API did not list the notebooks of admin"),
    ("no-sidecar", "gets no istio-proxy sidecar"),
    ("webhook-down", 'failed calling webhook "admission-webhook-deployment.kubeflow.org"'),
])
def test_notebook_failures_name_the_jupyter_web_app_or_the_admission_chain(tmp_path, tls, fake_kubeflow, case, expect):
    fake = fake_kubeflow
    fake.jupyter = case if case in ("rbac-denied", "forbidden", "absent") else "ok"
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake.port,
             "inject_istio": case != "no-sidecar"}
    if case == "webhook-down":
        state["dry_run_error"] = (
            'Error from server (InternalError): Internal error occurred: failed calling webhook '
            '"admission-webhook-deployment.kubeflow.org": failed to call webhook: Post '
            '"https://admission-webhook-service.kubeflow.svc:443/apply-poddefault?timeout=10s": '
            'no endpoints available for service "admission-webhook-service"')
    result, _ = run_smoke(tmp_path, full_values("https://kubeflow.smoke.test/"), state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 1
    assert expect in result.stderr, result.stderr
    assert "Check:" in result.stderr
    if case in ("rbac-denied", "forbidden", "absent"):
        assert "kubectl -n kubeflow logs deploy/jupyter-web-app-deployment" in result.stderr
        assert "authorizationpolicy jupyter-web-app" in result.stderr
        assert "notebookPod" not in fakes.report(result.stdout)
    else:
        assert fakes.report(result.stdout)["notebooksApi"] == "ok admin"
    assert not [r for r in fake.requests if r.path.startswith("/pipeline/")]  # it stopped there


@needs_tools
def test_notebooks_wait_for_the_jupyter_web_app_to_serve(tmp_path, tls, fake_kubeflow):
    """Istio's 503 (no healthy upstream) is waited out within the deadline; the next answer counts."""
    fake = fake_kubeflow
    fake.jupyter_unready = 1
    fake.polls_before_success = 0
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake.port}
    result, _ = run_smoke(tmp_path, full_values("https://kubeflow.smoke.test/"), state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 0, result.stderr
    assert fakes.report(result.stdout)["notebooksApi"] == "ok admin"
    assert fake.calls().count("GET /jupyter/api/namespaces/admin/notebooks") == 2


@needs_tools
def test_notebooks_off_means_no_jupyter_request_and_no_dry_run(tmp_path, tls, fake_kubeflow):
    fake = fake_kubeflow
    fake.polls_before_success = 0
    s = parse_settings({**stack_raw("dev"), "kubeflow": {"adminEmail": EMAIL, "components": {"notebooks": False}}}, "dev")
    values = {**smoke_plan.params(s, "1000"), "DASHBOARD_URL": "https://kubeflow.smoke.test/"}
    state = {"ca_b64": fakes.ca_b64(tls[0]), "service_type": "NodePort", "port": fake.port}
    result, log = run_smoke(tmp_path, values, state, stdin=PASSWORD, no_dns=True)
    assert result.returncode == 0, result.stderr
    report = fakes.report(result.stdout)
    assert "notebooksApi" not in report and "notebookPod" not in report
    assert report["pipelineRun"] == "SUCCEEDED r-1 in admin"
    assert not [c for c in fake.calls() if "/jupyter" in c]
    assert "dry-run" not in log.read_text() and "rolebinding" not in log.read_text()


@needs_tools
def test_pipelines_mode_runs_the_pipeline_through_the_kfp_service(tmp_path):
    # Succeeds at the first poll (the full-mode test covers polling a RUNNING run).
    fake = fakes.FakeKubeflow(api_prefix="/apis/v2beta1", login=False, polls_before_success=0).start()
    try:
        s = parse_settings(stack_raw("edge"), "edge")
        values = {**smoke_plan.params(s, ""), "KFP_PORT": fake.port}
        result, log = run_smoke(tmp_path, values, {})
    finally:
        fake.stop()
    assert result.returncode == 0, result.stderr
    report = fakes.report(result.stdout)
    assert report["reachedThrough"] == f"service kubeflow/ml-pipeline 127.0.0.1:{fake.port}"
    assert report["pipelineRun"] == "SUCCEEDED r-1" and report["installSeconds"] == ""
    assert "namespace" not in fake.uploaded["query"]
    assert fakes.multipart_file(fake.uploaded["body"]) == smoke_plan.pipeline_yaml()
    assert fake.calls("DELETE") == [f"DELETE /apis/v2beta1/{p}" for p in
                                    ("runs/r-1", "experiments/e-1", "pipelines/p-1/versions/v-1", "pipelines/p-1")]
    assert not [c for c in fake.calls() if "/oauth2/" in c or "/dex/" in c]


@needs_tools
@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_gpu_pods_run_to_completion_and_are_deleted(tmp_path, phase):
    fake = fakes.FakeKubeflow(api_prefix="/apis/v2beta1", login=False, polls_before_success=0).start()
    try:
        s = parse_settings(stack_raw("cloud"), "cloud")
        edge = parse_settings(stack_raw("edge"), "edge")
        gpu = smoke_plan.params(s)
        values = {**smoke_plan.params(edge, ""), "KFP_PORT": fake.port,
                  "GPU_PODS": gpu["GPU_PODS"], "GPU_MANIFEST": gpu["GPU_MANIFEST"]}
        result, log = run_smoke(tmp_path, values, {"pod_phase": phase})
    finally:
        fake.stop()
    calls = log.read_text()
    assert "apply -f -" in calls and "delete pod kubeflow-k3s-smoke-gpu-gpu-1" in calls.replace("-n default ", "")
    applied = json.loads(json.loads((tmp_path / "k3s-state.json").read_text())["applied"])
    assert applied == json.loads(gpu["GPU_MANIFEST"])
    if phase == "Succeeded":
        assert result.returncode == 0, result.stderr
        assert fakes.report(result.stdout)["gpu"] == "ok gpu-1" and "NVIDIA-SMI" in result.stderr
    else:
        assert result.returncode == 1 and "GPU check pod kubeflow-k3s-smoke-gpu-gpu-1 failed" in result.stderr


@needs_tools
def test_a_later_up_reports_time_since_the_install_not_an_install_time(tmp_path):
    fake = fakes.FakeKubeflow(api_prefix="/apis/v2beta1", login=False, polls_before_success=0).start()
    try:
        s = parse_settings(stack_raw("edge"), "edge")
        values = {**smoke_plan.params(s, "1000", run="update"), "KFP_PORT": fake.port}
        result, _ = run_smoke(tmp_path, values, {})
    finally:
        fake.stop()
    assert result.returncode == 0, result.stderr
    report = fakes.report(result.stdout)
    assert report["run"] == "update" and report["installSeconds"] == ""
    assert abs(int(report["sinceInstallStart"]) - (int(time.time()) - 1000)) < 120
    assert "not an install time" in result.stderr


@pytest.mark.parametrize("stack", KUBEFLOW_STACKS)
def test_update_runs_the_same_checks_flagged_as_a_re_check(runs, stack):
    check = runs[stack].get("smoke-check")
    create, update = harness.script(check.inputs["create"]), harness.script(check.inputs["update"])
    assert "RUN=create" in create and update == create.replace("RUN=create", "RUN=update")
