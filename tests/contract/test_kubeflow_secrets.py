"""No upstream credential reaches a cluster; each replacement is secret, complete and stable.

Upstream literals are read from the rendered manifests themselves (every value of every Secret the
program replaces, plain and base64), plus the documented defaults (user@example.com / 12341234).
They are searched for in (1) what each step applies, i.e. the rendered upstream objects with the
program's overlay applied (tests/kustomize_lite.py; real kustomize cross-checks it below when
`kubectl` or `kustomize` is installed), (2) every input of every resource of every stack, secret or
not, and (3) the overlay files the program writes.
"""

from __future__ import annotations

import base64
import copy
import subprocess

import bcrypt
import pytest

from components.kubeflow import credentials_plan as cp, kfp_plan, kubeflow_plan as kp
from stacks.settings import parse_settings
from tests import harness
from tests.contract import kubeflow_upstream as up
from tests.kustomize_lite import apply, load
from tests.harness import stack_raw

DOCUMENTED = {"user@example.com", "12341234", "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72",
              "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok", "7d16fee92f8d11b8940b081b3f8b8acb", "minio123"}


# Identifiers, not credentials (an OIDC client id is in every login URL; a user name). The access
# key `minio` is a credential but also part of object names (`mlpipeline-minio-artifact`): its Secret
# is replaced as a whole, which test_no_upstream_credential_is_applied_by_any_step checks.
NOT_SECRET_KEYS = {"client-id", "OIDC_CLIENT_ID", "username", "MYSQL_USER_NAME", "accesskey"}


def cloud_plan():
    return kp.plan(parse_settings(copy.deepcopy(stack_raw("cloud")), "cloud"))


def upstream_secret_values(docs) -> set[str]:
    """Plain and base64 forms of every value of the upstream Secrets the program replaces."""
    out = set()
    for d in docs:
        if d["kind"] != "Secret":
            continue
        name = d["metadata"]["name"]
        if not any(name == s or name.startswith(s + "-") for s in cp.SECRETS):
            continue
        for key, value in (d.get("stringData") or {}).items():
            if key not in NOT_SECRET_KEYS:
                out |= {value, base64.b64encode(value.encode()).decode()}
        for key, value in (d.get("data") or {}).items():
            if key not in NOT_SECRET_KEYS:
                out |= {value, base64.b64decode(value).decode()}
    return {v for v in out if v}


def leaks(text: str, literals: set[str]) -> set[str]:
    """Literals found in `text`: long ones anywhere, short ones (Katib's `test`) only as the whole value."""
    return {lit for lit in literals if (lit in text if len(lit) >= 8 else lit == text)}


@pytest.fixture(scope="module")
def applied(upstream):
    """(step name -> objects the step applies, upstream literals) for every rendered step + edge KFP."""
    rendered = upstream / "rendered" / "kubeflow-26.03"
    steps, literals = {}, set(DOCUMENTED)
    for planned in cloud_plan():
        f = up.rendered_file(rendered, planned.step.path)
        if f is None:
            continue
        docs = list(up.docs_of(f))
        literals |= upstream_secret_values(docs)
        steps[planned.step.name] = apply(docs, planned.overlay) if planned.overlay else docs
    kfp_docs = load(upstream / "rendered" / "kubeflow-pipelines-2.16.0" / "env_platform-agnostic.yaml")
    literals |= upstream_secret_values(kfp_docs)
    edge = kfp_plan.plan(parse_settings(copy.deepcopy(stack_raw("edge")), "edge"))
    steps["edge/kfp"] = apply(kfp_docs, edge.overlay)
    return steps, literals




def test_the_literals_were_found_upstream(applied):
    _, literals = applied
    # the OIDC client secret and the cookie secret in base64, KFP's and Katib's passwords
    assert {"cFVCbkJPWTgwU25YZ2ppYlRZTTlaV056WTJ4cmVOR1Fvaw==", "N2QxNmZlZTkyZjhkMTFiODk0MGIwODFiM2Y4YjhhY2I=",
            "bWluaW8xMjM=", "dGVzdA=="} <= literals


def test_no_upstream_credential_is_applied_by_any_step(applied):
    steps, literals = applied
    for name, docs in steps.items():
        for doc in docs:
            leaked = {lit for s in harness.strings_outside_secrets(doc) for lit in leaks(s, literals)}
            assert not leaked, f"{name}: {doc['kind']} {doc['metadata']['name']} carries {leaked}"
            if doc["kind"] == "Secret":
                assert not any(doc["metadata"]["name"].startswith(s) for s in cp.SECRETS), (name, doc["metadata"])


def test_kfp_mysql_has_a_root_password(applied):
    steps, _ = applied
    for name in ("pipelines", "edge/kfp"):
        [mysql] = [d for d in steps[name] if d["kind"] == "Deployment" and d["metadata"]["name"] == "mysql"]
        env = {e["name"]: e for e in mysql["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "MYSQL_ALLOW_EMPTY_PASSWORD" not in env
        assert env["MYSQL_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mysql-secret", "key": "password"}


def secret_refs(doc):
    """(secret name, key or None) of every Secret a workload's containers read."""
    spec = (doc.get("spec") or {}).get("template", {}).get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                yield ref["name"], ref["key"]
        for e in c.get("envFrom") or []:
            if e.get("secretRef"):
                yield e["secretRef"]["name"], None


def test_every_credential_a_workload_reads_is_created_by_the_program_with_its_keys(applied):
    steps, _ = applied
    for name, docs in steps.items():
        present = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
        for doc in docs:
            if doc["kind"] not in up.WORKLOAD_KINDS:
                continue
            for secret, key in secret_refs(doc):
                if secret in present:
                    continue  # upstream's own non-credential Secret (e.g. a webhook certificate)
                if secret in cp.SECRETS:
                    spec = cp.SECRETS[secret]
                    assert spec.namespace == doc["metadata"]["namespace"]
                    assert key is None or key in spec.data, f"{name}: {doc['metadata']['name']} reads {secret}/{key}"
                    step_secrets = kp.CATALOG_BY_NAME[name].secrets if name in kp.CATALOG_BY_NAME else ("mlpipeline-minio-artifact", "mysql-secret")
                    assert secret in step_secrets, f"{name} reads {secret} but the program does not create it first"
                else:
                    # created at run time by a controller (e.g. cert-manager, KServe) - never a credential
                    assert not secret.startswith(tuple(cp.SECRETS)), (name, secret)


def test_profile_namespaces_get_their_own_object_store_keys_from_the_replaced_admin_keys(applied):
    """KFP's profile controller creates a key pair per profile namespace through SeaweedFS's IAM API
    with the admin keys it reads from the replaced kubeflow/mlpipeline-minio-artifact."""
    steps, literals = applied
    controller = next(d for d in steps["pipelines"] if d["kind"] == "ConfigMap" and "sync.py" in (d.get("data") or {}))
    sync = controller["data"]["sync.py"]
    assert "iam.create_access_key(UserName=namespace)" in sync
    assert not leaks(sync, {lit for lit in literals if len(lit) >= 8})
    [deployment] = [d for d in steps["pipelines"] if d["kind"] == "Deployment" and d["metadata"]["name"] == "kubeflow-pipelines-profile-controller"]
    refs = set(secret_refs(deployment))
    assert {("mlpipeline-minio-artifact", "accesskey"), ("mlpipeline-minio-artifact", "secretkey")} <= refs


# The stacks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_no_upstream_credential_in_any_input_of_any_stack(runs, applied, stack):
    _, literals = applied
    for reg in runs[stack].registrations:
        leaked = {lit for s in harness.strings_outside_secrets(reg.inputs) for lit in leaks(s, literals)}
        assert not leaked, f"{reg.type} {reg.name}: {leaked}"
    for path in (kp.PROJECT_ROOT / ".build" / "kubeflow" / stack).rglob("kustomization.yaml"):
        assert not leaks(path.read_text(), {lit for lit in literals if len(lit) >= 8}), path


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_credential_secret_is_secret_and_complete(runs, stack):
    run = runs[stack]
    secrets = run.by_type("kubernetes:core/v1:Secret")
    assert secrets
    for reg in secrets:
        assert harness.is_secret(reg.raw_inputs["stringData"]), reg.name
        spec = cp.SECRETS[reg.inputs["metadata"]["name"]]
        if spec.name == "dex-passwords":  # one hash per login of the stack
            spec = cp.dex_passwords(kp.logins(parse_settings(copy.deepcopy(stack_raw(stack)), stack)), False, "")
        assert reg.inputs["metadata"]["namespace"] == spec.namespace
        assert set(reg.inputs["stringData"]) == set(spec.data)
        assert all(v for v in reg.inputs["stringData"].values()), f"{reg.name} has an empty value"


def test_dex_gets_a_hash_of_the_exported_password(runs):
    run = runs["dev"]
    assert run.secret_exports["kubeflowAdminPassword"] is True
    password = run.exports["kubeflowAdminPassword"]
    [dex] = [r for r in run.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "dex-passwords"]
    hashed = dex.inputs["stringData"]["DEX_USER_PASSWORD"]
    assert bcrypt.checkpw(password.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"12341234", hashed.encode())


def test_a_configured_admin_password_is_used_and_not_exported():
    run = harness.run_stack("dev", secrets={"adminPassword": harness.FAKE_SECRETS["adminPassword"]})
    assert "kubeflowAdminPassword" not in run.exports
    assert not [r for r in run.by_type("random:index/randomPassword:RandomPassword") if r.name.endswith("admin-password")]
    [dex] = [r for r in run.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "dex-passwords"]
    assert bcrypt.checkpw(harness.FAKE_SECRETS["adminPassword"].encode(), dex.inputs["stringData"]["DEX_USER_PASSWORD"].encode())
    for reg in run.registrations:
        assert not any(harness.FAKE_SECRETS["adminPassword"] in s for s in harness.strings_outside_secrets(reg.raw_inputs)), reg.name


@pytest.mark.parametrize("stack", harness.STACKS)
def test_two_runs_give_identical_inputs_including_every_generated_credential(runs, stack):
    again = harness.run_stack(stack)
    first = {(r.type, r.name): r.inputs for r in runs[stack].registrations}
    second = {(r.type, r.name): r.inputs for r in again.registrations}
    assert first == second
    assert again.exports == runs[stack].exports


# Real kustomize over the real 26.03 tree, where a binary is installed ----------------------------



@pytest.mark.parametrize("step", ["oauth2-proxy", "dex", "katib", "kubeflow-istio-resources", "kserve"])
def test_real_kustomize_renders_the_overlay_as_the_tests_model_it(upstream, applied, step, tmp_path):
    cmd = up.kustomize_cmd()
    if cmd is None:
        pytest.skip("no kustomize or kubectl binary installed")
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["manifestsPath"] = str(upstream / "kubeflow-manifests-26.03")
    # its own overlay directory (.build/kubeflow/kustomize-check/), apart from the stacks' ones
    planned = next(p for p in kp.plan(parse_settings(raw, "kustomize-check")) if p.step.name == step)
    directory = kp.PROJECT_ROOT / planned.directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(planned.overlay.text())
    result = subprocess.run([*cmd, str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    real = up.load_yaml(result.stdout)
    steps, literals = applied
    model = steps[step]
    key = lambda d: (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"].rsplit("-", 1)[0]
                     if d["kind"] in ("ConfigMap", "Secret") else d["metadata"]["name"])
    assert sorted(map(key, real)) == sorted(map(key, model))
    assert not {lit for doc in real for text in harness.strings_outside_secrets(doc) for lit in leaks(text, literals)}
    for doc in real:
        if doc["kind"] in up.WORKLOAD_KINDS:
            assert set(secret_refs(doc)) == set(secret_refs(next(m for m in model if key(m) == key(doc))))


@pytest.mark.parametrize("which", ["pipelines", "edge/kfp"])
def test_real_kustomize_applies_the_kfp_patches_as_modelled(upstream, applied, which, tmp_path):
    """KFP's kustomizations need network (argo-workflows bases) or files left out of the reference
    data (sync.py), so real kustomize gets the rendered objects as its resource and our patches."""
    cmd = up.kustomize_cmd()
    if cmd is None:
        pytest.skip("no kustomize or kubectl binary installed")
    import dataclasses

    if which == "pipelines":
        overlay = next(p for p in cloud_plan() if p.step.name == "pipelines").overlay
        source = upstream / "rendered" / "kubeflow-26.03" / "12-applications_pipeline_overlays.yaml"
    else:
        overlay = kfp_plan.plan(parse_settings(copy.deepcopy(stack_raw("edge")), "edge")).overlay
        source = upstream / "rendered" / "kubeflow-pipelines-2.16.0" / "env_platform-agnostic.yaml"
    (tmp_path / "upstream.yaml").write_text(source.read_text())
    local = dataclasses.replace(overlay, resource="upstream.yaml")
    (tmp_path / "kustomization.yaml").write_text(local.text())
    result = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    real = up.load_yaml(result.stdout)
    model = applied[0][which]
    key = lambda d: (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
    assert sorted(map(key, real)) == sorted(map(key, model))
    by_key = {key(m): m for m in model}
    for doc in real:
        if doc["kind"] in up.WORKLOAD_KINDS:
            spec, want = doc["spec"]["template"]["spec"], by_key[key(doc)]["spec"]["template"]["spec"]
            for got, exp in zip(spec["containers"], want["containers"]):
                assert got.get("resources") == exp.get("resources"), key(doc)
                assert got.get("env") == exp.get("env"), key(doc)
