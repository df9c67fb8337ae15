"""The policy pack in policy/: each rule with passing and violating inputs, the pack's wiring, and the pack
applied to every resource of every stack evaluated under the test mocks (what `pulumi preview
--policy-pack ./policy` checks, minus the children the provider renders at deploy time)."""

from __future__ import annotations

import runpy

import pytest
import pulumi_policy
import yaml
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs, PolicyResource

from policy import validators as v
from tests import harness

POLICY_DIR = harness.ROOT / "policy"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_V4 = "kubernetes:helm.sh/v4:Chart"
KUSTOMIZE = "kubernetes:kustomize/v2:Directory"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
ISTIO_GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
SERVICE = "kubernetes:core/v1:Service"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
REMOTE = "command:remote:Command"


# 1. Pinned sources ----------------------------------------------------------------------------------

@pytest.mark.parametrize("typ,props", [
    (RELEASE, {"chart": "cert-manager", "version": "v1.19.4", "repositoryOpts": {"repo": "https://charts.jetstack.io"}}),
    (CHART_V4, {"chart": "oci://ghcr.io/x/chart", "version": "1.29.0"}),
    (RELEASE, {"chart": "https://example.com/charts/gateway-1.29.0.tgz"}),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/manifests//applications/pipeline?ref=26.03"}),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/pipelines//manifests/kustomize/env/platform-agnostic?ref=2.16.0"}),
    (KUSTOMIZE, {"directory": "/work/shared/upstream/kubeflow-manifests-26.03/applications/katib/upstream"}),
    (KUSTOMIZE, {"directory": "github.com/kubeflow/manifests/common/dex?ref=0123456789abcdef0123456789abcdef01234567"}),
    (CONFIG_GROUP, {"files": ["https://raw.githubusercontent.com/kubeflow/pipelines/2.16.0/manifests/x.yaml", "local.yaml"]}),
    (CONFIG_GROUP, {"yaml": "kind: Namespace"}),
    ("kubernetes:yaml/v2:ConfigFile", {"file": "https://github.com/cert-manager/cert-manager/releases/download/v1.19.4/cert-manager.yaml"}),
])
def test_pinned_sources_pass(typ, props):
    assert v.pinned_source_violations(typ, props) == []


@pytest.mark.parametrize("typ,props,needle", [
    (RELEASE, {"chart": "cert-manager", "repositoryOpts": {"repo": "https://charts.jetstack.io"}}, "no version"),
    (RELEASE, {"chart": "cert-manager", "version": ""}, "no version"),
    (RELEASE, {"chart": "cert-manager", "version": "^1.19"}, "not an exact version"),
    (RELEASE, {"chart": "cert-manager", "version": ">=1.19.0"}, "not an exact version"),
    (CHART_V4, {"chart": "istiod", "version": "1.29.x"}, "not an exact version"),
    (CHART_V4, {"chart": "istiod", "version": "latest"}, "not an exact version"),
    (RELEASE, {"chart": "istiod", "version": "1.29.0", "devel": True}, "devel"),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/manifests//applications/pipeline?ref=master"}, "'master'"),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/manifests//applications/pipeline"}, "no exact version"),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/manifests//example?ref=v1.11-branch"}, "not an exact tag"),
    (CONFIG_GROUP, {"files": ["https://raw.githubusercontent.com/kubeflow/pipelines/master/manifests/x.yaml"]}, "moving ref"),
    ("kubernetes:yaml/v2:ConfigFile", {"file": "https://github.com/cert-manager/cert-manager/releases/latest/download/cert-manager.yaml"}, "moving ref"),
])
def test_unpinned_sources_are_violations(typ, props, needle):
    problems = v.pinned_source_violations(typ, props)
    assert problems and needle in " ".join(problems), problems


def test_local_kustomizations_are_followed_to_their_remote_sources(tmp_path):
    (tmp_path / "app" / "nested").mkdir(parents=True)
    (tmp_path / "app" / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [
        "https://github.com/kubeflow/manifests/common/dex/overlays/oauth2-proxy?ref=26.03", "nested", "local.yaml"]}))
    (tmp_path / "app" / "nested" / "kustomization.yaml").write_text(yaml.safe_dump({"components": [
        "https://github.com/kubeflow/manifests/common/x?ref=master"]}))
    (problem,) = v.pinned_source_violations(KUSTOMIZE, {"directory": "app"}, str(tmp_path))
    assert "ref 'master'" in problem
    (tmp_path / "app" / "nested" / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["a.yaml"]}))
    assert v.pinned_source_violations(KUSTOMIZE, {"directory": "app"}, str(tmp_path)) == []
    assert v.pinned_source_violations(KUSTOMIZE, {"directory": "missing"}, str(tmp_path)) == []


def test_pinning_ignores_other_resources():
    assert v.pinned_source_violations(CONFIGMAP, {"data": {"version": "latest"}}) == []


# 2. TLS on cloud ----------------------------------------------------------------------------------------

TLS_GATEWAY = v.Resource(ISTIO_GATEWAY, "kubeflow-gateway", {"spec": {"servers": [
    {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
     "tls": {"mode": "SIMPLE", "credentialName": "kubeflow-tls"}},
    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"httpsRedirect": True}},
]}})
PLAIN_GATEWAY = v.Resource(ISTIO_GATEWAY, "kubeflow-gateway", {"spec": {"servers": [
    {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
]}})
LB_SERVICE = v.Resource(SERVICE, "istio-ingressgateway", {"spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
GATEWAY_CHART_DEFAULT = v.Resource(RELEASE, "istio-gateway", {"chart": "gateway", "version": "1.29.0", "values": {}})
GATEWAY_CHART_NODEPORT = v.Resource(RELEASE, "istio-gateway", {"chart": "gateway", "version": "1.29.0",
                                                               "values": {"service": {"type": "NodePort"}}})


@pytest.mark.parametrize("resources", [
    [TLS_GATEWAY, LB_SERVICE],
    [TLS_GATEWAY, GATEWAY_CHART_DEFAULT],
    [GATEWAY_CHART_NODEPORT],
    [v.Resource(SERVICE, "web", {"spec": {"type": "ClusterIP"}})],
    [v.Resource("kubernetes:gateway.networking.k8s.io/v1:Gateway", "gw", {"spec": {"listeners": [
        {"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": [{"name": "cert"}]}}]}})],
])
def test_tls_on_cloud_passes(resources):
    assert v.exposure_violations(resources, cloud=True) == []


@pytest.mark.parametrize("resources,needle", [
    ([PLAIN_GATEWAY], "plain HTTP"),
    ([LB_SERVICE], "no gateway in the stack terminates TLS"),
    ([GATEWAY_CHART_DEFAULT], "no gateway in the stack terminates TLS"),
    ([PLAIN_GATEWAY, LB_SERVICE], "no gateway in the stack terminates TLS"),
    ([v.Resource(ISTIO_GATEWAY, "gw", {"spec": {"servers": [{"port": {"protocol": "HTTPS"}, "tls": {"mode": "SIMPLE"}}]}})],
     "no certificate"),
    ([v.Resource("kubernetes:gateway.networking.k8s.io/v1:Gateway", "gw", {"spec": {"listeners": [
        {"name": "http", "protocol": "HTTP", "port": 80}]}})], "plain HTTP"),
])
def test_exposure_without_tls_on_cloud_is_a_violation(resources, needle):
    problems = v.exposure_violations(resources, cloud=True)
    assert problems and needle in " ".join(problems), problems


LOCAL_GATEWAY_CHART = v.Resource(RELEASE, "istio-local-gateway", {"chart": "gateway", "version": "1.29.0", "values": {
    "name": "cluster-local-gateway", "labels": {"app": "cluster-local-gateway", "istio": "cluster-local-gateway"},
    "service": {"type": "ClusterIP"}}})
LOCAL_GATEWAY = v.Resource(ISTIO_GATEWAY, "cluster-local-gateway", {"spec": {
    "selector": {"app": "cluster-local-gateway", "istio": "cluster-local-gateway"},
    "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}})
INGRESS_SELECTED = v.Resource(ISTIO_GATEWAY, "istio-ingressgateway", {"spec": {
    "selector": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
    "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}})
NODEPORT_CHART = v.Resource(RELEASE, "istio-ingressgateway", {"chart": "gateway", "version": "1.29.0", "values": {
    "name": "istio-ingressgateway", "service": {"type": "NodePort"}}})


def test_a_cluster_local_gateway_may_serve_http():
    assert v.exposure_violations([TLS_GATEWAY, LOCAL_GATEWAY_CHART, LOCAL_GATEWAY], cloud=True) == []


def test_a_gateway_behind_a_node_port_must_terminate_tls():
    problems = v.exposure_violations([NODEPORT_CHART, INGRESS_SELECTED], cloud=True)
    assert problems and "istio-ingressgateway server 0 serves plain HTTP" in problems[0]


def test_exposure_rules_apply_on_cloud_only():
    assert v.exposure_violations([PLAIN_GATEWAY, LB_SERVICE], cloud=False) == []
    assert v.is_cloud("urn:pulumi:cloud::kubeflow-k3s::pulumi:pulumi:Stack::kubeflow-k3s-cloud")
    assert not v.is_cloud("urn:pulumi:dev::kubeflow-k3s::pulumi:pulumi:Stack::kubeflow-k3s-dev")
    assert v.is_cloud("urn:pulumi:prod::kubeflow-k3s::x::y", ["prod"])


# 3. Secrets -------------------------------------------------------------------------------------------------

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
READ_KUBECONFIG = {"create": "sudo cat /etc/rancher/k3s/k3s.yaml", "logging": "none"}


@pytest.mark.parametrize("typ,props,outputs", [
    (REMOTE, {"create": "echo hi", "stdin": "token: abc\n", "logging": "stdoutAndStderr"}, []),
    (REMOTE, READ_KUBECONFIG, ["stdout", "stderr"]),
    (CONFIGMAP, {"data": {"config.yaml": "issuer: https://dex"}}, []),
    (CONFIGMAP, {"data": {"oidc.yaml": "token: {expiry: 24h}\n"}}, []),  # a key named token is not a token
    ("kubernetes:core/v1:Secret", {"stringData": {"key": KEY}}, []),
    (RELEASE, {"chart": "dex", "values": {"config": {"staticPasswords": [{"hash": "$2a$10$" + "a" * 53}]}}}, []),
])
def test_secret_rule_passes(typ, props, outputs):
    assert v.secret_violations(typ, props, outputs) == []


@pytest.mark.parametrize("typ,props,outputs,needle", [
    (REMOTE, {"create": f"echo '{KEY}' > /root/.ssh/id"}, [], "private key"),
    (REMOTE, {"create": "cat > /etc/rancher/k3s/config.yaml <<EOF\ntoken: s3cr3t\nEOF\n"}, [], "token"),
    (REMOTE, {"create": "k3s agent --token K10" + "ab" * 20 + "::server:xyz"}, [], "join token"),
    (REMOTE, READ_KUBECONFIG, [], "not additionalSecretOutputs"),
    (REMOTE, {"create": "sudo cat /etc/rancher/k3s/k3s.yaml", "logging": "stdoutAndStderr"}, ["stdout", "stderr"], "logging on"),
    (CONFIGMAP, {"data": {"config.yaml": "hash: $2y$10$" + "b" * 53}}, [], "bcrypt"),
    ("kubernetes:apps/v1:Deployment", {"spec": {"env": [{"name": "KEY", "value": KEY}]}}, [], "private key"),
])
def test_secret_rule_violations(typ, props, outputs, needle):
    problems = v.secret_violations(typ, props, outputs)
    assert problems and needle in " ".join(problems), problems


# 4. GPU taints on cloud ----------------------------------------------------------------------------------------

def install(config: dict) -> dict:
    return {"create": "#!/bin/sh\n# kubeflow-k3s: install.sh\n", "stdin": yaml.safe_dump(config)}


GPU_LABELS = ["kubeflow-k3s/gpu=nvidia", "nvidia.com/gpu.present=true"]


@pytest.mark.parametrize("props,cloud", [
    (install({"node-name": "gpu-1", "node-label": GPU_LABELS, "node-taint": ["nvidia.com/gpu=true:NoSchedule"]}), True),
    (install({"node-name": "gpu-1", "node-label": GPU_LABELS, "node-taint": ["nvidia.com/gpu:NoExecute"]}), True),
    (install({"node-name": "cpu-1", "node-label": ["tier=general"]}), True),
    (install({"node-name": "gpu-1", "node-label": GPU_LABELS}), False),  # dev/edge: shared nodes are fine
    ({"create": "# kubeflow-k3s: install.sh", "stdin": None}, True),  # unknown in a first preview
    ({"create": "# kubeflow-k3s: preflight.sh"}, True),
])
def test_gpu_taint_passes(props, cloud):
    assert v.gpu_taint_violations(REMOTE, props, cloud) == []


@pytest.mark.parametrize("config", [
    {"node-name": "gpu-1", "node-label": GPU_LABELS},
    {"node-name": "gpu-1", "node-label": ["nvidia.com/gpu.present=true"], "node-taint": ["dedicated=ml:NoSchedule"]},
    {"node-name": "gpu-1", "node-label": GPU_LABELS, "node-taint": ["nvidia.com/gpu=true:PreferNoSchedule"]},
])
def test_untainted_gpu_node_on_cloud_is_a_violation(config):
    (problem,) = v.gpu_taint_violations(REMOTE, install(config), cloud=True)
    assert "gpu-1" in problem and "nvidia.com/gpu" in problem


def test_gpu_rule_reads_a_secret_wrapped_stdin():
    props = install({"node-name": "gpu-1", "node-label": GPU_LABELS})
    props["stdin"] = {harness.SECRET_SIG: harness.SECRET_MARK, "value": props["stdin"]}
    assert v.gpu_taint_violations(REMOTE, props, cloud=True)


# 5. Kubeflow default credentials --------------------------------------------------------------------------------

@pytest.mark.parametrize("typ,props", [
    ("kubernetes:core/v1:Secret", {"stringData": {"DEX_USER_PASSWORD": "$2y$12$" + "c" * 53}}),
    ("kubernetes:kubeflow.org/v1:Profile", {"metadata": {"name": "alice"}, "spec": {"owner": {"kind": "User", "name": "alice@example.org"}}}),
    (KUSTOMIZE, {"directory": "/upstream/kubeflow-manifests-26.03/common/dex/overlays/oauth2-proxy"}),
    (CONFIGMAP, {"data": {"x": "timeout=12341234ms"}}),
])
def test_default_credentials_pass(typ, props):
    assert v.default_credential_violations(typ, props) == []


@pytest.mark.parametrize("typ,props,needle", [
    ("kubernetes:core/v1:Secret", {"stringData": {"DEX_USER_PASSWORD": v.DEFAULT_PASSWORD_HASH}}, "12341234"),
    (CONFIGMAP, {"data": {"config.yaml": "staticPasswords:\n- email: user@example.com\n"}}, "user@example.com"),
    ("kubernetes:kubeflow.org/v1:Profile", {"metadata": {"name": v.DEFAULT_PROFILE}}, v.DEFAULT_PROFILE),
    (CONFIGMAP, {"data": {"params.env": f"OIDC_CLIENT_SECRET={v.DEFAULT_OIDC_CLIENT_SECRET}"}}, "OIDC client secret"),
    (RELEASE, {"chart": "dex", "values": {"password": "12341234"}}, "12341234"),
    (KUSTOMIZE, {"directory": "https://github.com/kubeflow/manifests//common/user-namespace/base?ref=26.03"}, "profile"),
    (KUSTOMIZE, {"directory": "/upstream/kubeflow-manifests-26.03/example"}, "profile"),
])
def test_default_credentials_are_violations(typ, props, needle):
    problems = v.default_credential_violations(typ, props)
    assert problems and needle in " ".join(problems), problems


# The pack's wiring ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pack(monkeypatch_module=None):
    """policy/__main__.py run with PolicyPack replaced by a recorder (the real one serves gRPC forever)."""
    captured = {}

    class Recorder:
        def __init__(self, name, policies, **kwargs):
            captured.update(name=name, policies=policies, **kwargs)

    original = pulumi_policy.PolicyPack
    pulumi_policy.PolicyPack = Recorder
    try:
        module = runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    finally:
        pulumi_policy.PolicyPack = original
    return captured, module


def test_pack_files():
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python" and spec["version"]
    requirements = (POLICY_DIR / "requirements.txt").read_text()
    assert "pulumi-policy==" in requirements


def test_pack_declares_every_policy_as_mandatory(pack):
    captured, _ = pack
    assert captured["name"] == "kubeflow-k3s"
    assert captured["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert {p.name for p in captured["policies"]} == {
        "pinned-sources", "tls-on-cloud", "secrets-stay-secret", "gpu-nodes-tainted-on-cloud",
        "no-kubeflow-default-credentials", "no-example-password-in-config",
    }


def options(reg: harness.Registration | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False, ignore_changes=[], delete_before_replace=bool(reg and reg.delete_before_replace), aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(reg.additional_secret_outputs) if reg else [], parent=None,
    )


def resource_args(reg: harness.Registration, config=None) -> ResourceValidationArgs:
    return ResourceValidationArgs(reg.type, reg.raw_inputs, reg.urn, reg.name, options(reg), None, config or {})


def stack_args(run: harness.Run, config=None) -> StackValidationArgs:
    resources = [PolicyResource(r.type, r.raw_inputs, r.urn, r.name, options(r), None, None, [], {}) for r in run.registrations]
    return StackValidationArgs(resources, config or {})


def evaluate_pack(module, run: harness.Run, config=None) -> list[str]:
    """`config`: the pack's config. The stack's own config reaches the pack as the engine passes it."""
    import pulumi

    pulumi.runtime.set_all_config(*harness.load_config(run.stack)) if (harness.ROOT / f"Pulumi.{run.stack}.yaml").exists() \
        else pulumi.runtime.set_all_config({}, [])
    found: list[str] = []

    def report(message, urn=None):
        found.append(message)

    for reg in run.registrations:
        for fn in ("pinned", "secrets", "gpu_taint", "default_credentials"):
            module[fn](resource_args(reg, config), lambda m, urn=None, reg=reg: found.append(f"{reg.name}: {m}"))
    module["exposure"](stack_args(run, config), report)
    return found


def test_pack_adapters_report_violations(pack):
    _, module = pack
    bad = harness.Registration(
        type=RELEASE, name="cm", urn="urn:pulumi:cloud::kubeflow-k3s::kubernetes:helm.sh/v3:Release::cm", custom=True,
        parent="", inputs={}, raw_inputs={"chart": "cert-manager", "version": "latest"}, dependencies=[], deleted_with="",
        provider="", delete_before_replace=False, additional_secret_outputs=[], custom_timeouts={}, replace_on_changes=[],
        remote=False,
    )
    lb = harness.Registration(**{**bad.__dict__, "type": SERVICE, "name": "lb", "raw_inputs": {"spec": {"type": "LoadBalancer"}}})
    run = harness.Run(stack="cloud", registrations=[bad, lb], component_outputs={}, exports={})
    found = evaluate_pack(module, run)
    assert any("not an exact version" in m for m in found) and any("LoadBalancer" in m for m in found)
    # A stack without profile: cloud in its config gets the cloud rules only when cloudStacks names it.
    in_prod = [harness.Registration(**{**r.__dict__, "urn": r.urn.replace(":cloud::", ":prod::")}) for r in (bad, lb)]
    prod = harness.Run(stack="prod", registrations=in_prod, component_outputs={}, exports={})
    assert not [m for m in evaluate_pack(module, prod) if "LoadBalancer" in m]
    assert [m for m in evaluate_pack(module, prod, {"cloudStacks": ["prod"]}) if "LoadBalancer" in m]


def test_pack_keys_the_cloud_rules_on_the_profile(pack, monkeypatch):
    """A stack called prod with profile: cloud gets the cloud rules; a stack called cloud with profile edge
    gets them only because cloudStacks names it (default ["cloud"])."""
    import pulumi

    _, module = pack
    lb = harness.Registration(
        type=SERVICE, name="lb", urn="urn:pulumi:prod::kubeflow-k3s::kubernetes:core/v1:Service::lb", custom=True,
        parent="", inputs={}, raw_inputs={"spec": {"type": "LoadBalancer"}}, dependencies=[], deleted_with="",
        provider="", delete_before_replace=False, additional_secret_outputs=[], custom_timeouts={}, replace_on_changes=[],
        remote=False,
    )
    found = []
    for profile in ("cloud", "edge", "laptop"):
        pulumi.runtime.set_all_config({"kubeflow-k3s:profile": profile}, [])
        module["exposure"](stack_args(harness.Run("prod", [lb], {}, {})), lambda m, urn=None: found.append((profile, m)))
    assert [p for p, _ in found] == ["cloud"]


def test_the_example_password_is_blocked_by_value_wherever_the_pack_sees_it():
    import bcrypt

    hashed = bcrypt.hashpw(b"12341234", bcrypt.gensalt(rounds=4)).decode()
    for typ, props in [
        ("kubernetes:core/v1:Secret", {"stringData": {"ADMIN": "12341234"}}),
        (REMOTE, {"create": "set-password.sh", "stdin": "12341234"}),
        ("kubernetes:core/v1:Secret", {"stringData": {"DEX_USER_PASSWORD": hashed}}),
        (RELEASE, {"chart": "dex", "values": {"config": {"staticPasswords": [{"hash": hashed}]}}}),
    ]:
        assert any("12341234" in p for p in v.default_credential_violations(typ, props)), props
    other = bcrypt.hashpw(b"another-password", bcrypt.gensalt(rounds=4)).decode()
    assert v.default_credential_violations("kubernetes:core/v1:Secret", {"stringData": {"H": other}}) == []
    assert v.config_violations({"kubeflow-k3s:adminPassword": "12341234"})
    assert v.config_violations({"kubeflow-k3s:adminPassword": "s3cret-and-long"}) == []


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_stack_complies_with_the_pack(pack, runs, stack):
    _, module = pack
    assert evaluate_pack(module, runs[stack]) == []


def test_the_pack_catches_an_untainted_gpu_node_in_the_cloud_stack(pack):
    # The cloud stack taints its GPU node; a stack that drops the taint is caught. (Only GPU nodes of the
    # cloud profile are tainted by the program, so the violation is built from the real install's stdin.)
    _, module = pack
    run = harness.run_stack("cloud")
    reg = run.get("k3s-gpu-1-install")
    config = yaml.safe_load(v.plain(reg.raw_inputs["stdin"]))
    config["node-taint"] = [t for t in config.get("node-taint", []) if not t.startswith("nvidia.com/gpu")]
    reg.raw_inputs = {**reg.raw_inputs, "stdin": yaml.safe_dump(config)}
    assert any("gpu-1" in m and "taint" in m for m in evaluate_pack(module, run))
