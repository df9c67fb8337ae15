"""Issue 9, every user can log in and work: on the stacks' resources (harness) and upstream's data.

- every configured user and the admin: a Dex static password entry (hash in `dex-passwords` under
  the variable Dex's config names) or the configured connector, and a Profile they own;
- per-user passwords are generated, exported as a secret map, and only their bcrypt hash reaches Dex;
- a changed password restarts Dex (the pod-template annotation changes);
- quota admission: every profile namespace with a CPU/memory requests quota gets a LimitRange
  giving default requests, and the defaults fit the quota;
- reserved names: every namespace the rendered components and platform layers use is refused;
- upstream's two Sidecar exceptions are applied as upstream has them;
- an adminPassword over 72 bytes, or an identity provider without its secret, fails at config load.
"""

from __future__ import annotations

import copy

import bcrypt
import pytest
import yaml

from components.kubeflow import kubeflow_plan as kp
from stacks import settings as sm
from stacks.settings import ConfigError, parse_settings
from tests import harness
from tests.contract import kubeflow_upstream as up
from tests.contract import kubeflow_variants as kv
from tests.harness import stack_raw

FULL = ["dev", "cloud", "cloud-users", "cloud-oidc"]


def one(run, typ, name=None, namespace=None):
    out = [r for r in run.by_type(typ) if (name is None or r.inputs["metadata"]["name"] == name)
           and (namespace is None or r.inputs["metadata"].get("namespace") == namespace)]
    assert len(out) == 1, (typ, name, [r.name for r in out])
    return out[0]


@pytest.mark.parametrize("name", FULL)
def test_every_user_and_the_admin_can_log_in_and_owns_a_profile(runs, name):
    run = kv.run(name, runs)
    s = kv.run_settings(name)
    config = yaml.safe_load(kp.dex_config(s))
    static = {e["email"]: e["hashFromEnv"] for e in config["staticPasswords"]}
    secret = one(run, "kubernetes:core/v1:Secret", "dex-passwords", "auth").inputs["stringData"]
    connector = config.get("connectors") or []
    profiles = {r.inputs["spec"]["owner"]["name"]: r.inputs["metadata"]["name"]
                for r in run.by_type("kubernetes:kubeflow.org/v1:Profile")}
    people = [s.kubeflow.admin_email] + [u.email for u in s.kubeflow.users]
    for email in people:
        if email in static:
            # the variable Dex reads is in the Secret, and holds a bcrypt hash
            assert secret[static[email]].startswith("$2b$12$"), email
        else:
            assert email != s.kubeflow.admin_email, "the admin always has a password login"
            assert connector and connector[0]["type"] == s.kubeflow.identity_provider.type, email
        assert email in profiles, f"{email} owns no Profile"
    assert profiles[s.kubeflow.admin_email] == kp.admin_namespace(s)
    assert len(set(profiles.values())) == len(profiles)
    # Dex's config names nothing secret; every hashFromEnv variable exists
    assert set(static.values()) <= set(secret)


def test_user_passwords_are_generated_exported_secret_and_only_hashed_in_dex(runs):
    run = kv.run("cloud-users", runs)
    passwords = run.exports["kubeflowUserPasswords"]
    assert run.secret_exports["kubeflowUserPasswords"] is True
    assert set(passwords) == {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert len(set(passwords.values())) == 3
    secret = one(run, "kubernetes:core/v1:Secret", "dex-passwords", "auth")
    assert harness.is_secret(secret.raw_inputs["stringData"])
    config = yaml.safe_load(kp.dex_config(kv.run_settings("cloud-users")))
    for entry in config["staticPasswords"]:
        if entry["email"] in passwords:
            assert bcrypt.checkpw(passwords[entry["email"]].encode(), secret.inputs["stringData"][entry["hashFromEnv"]].encode())
    for r in run.registrations:  # no plain password anywhere outside secrets
        for text in harness.strings_outside_secrets(r.inputs):
            assert not any(p in text for p in passwords.values()), r.name


def test_with_an_identity_provider_users_log_in_through_it(runs):
    run = kv.run("cloud-oidc", runs)
    assert "kubeflowUserPasswords" not in run.exports
    config = yaml.safe_load(kp.dex_config(kv.run_settings("cloud-oidc")))
    [conn] = config["connectors"]
    assert conn["config"]["clientSecret"] == "$" + kp.DEX_CONNECTOR_SECRET_ENV
    assert conn["config"]["redirectURI"] == "https://kubeflow.example.com/dex/callback"
    secret = one(run, "kubernetes:core/v1:Secret", "dex-passwords", "auth")
    assert secret.inputs["stringData"][kp.DEX_CONNECTOR_SECRET_ENV] == "FAKE-IDP-CLIENT-SECRET-9f2"
    assert harness.is_secret(secret.raw_inputs["stringData"])
    assert [e["email"] for e in config["staticPasswords"]] == ["admin@example.com"]


def test_dex_reads_every_password_from_the_secret_by_envfrom(upstream):
    """hashFromEnv works because upstream's Deployment loads all of `dex-passwords` with envFrom."""
    dex = [d for d in up.docs_of(up.rendered_file(upstream / "rendered" / "kubeflow-26.03", "common/dex/overlays/oauth2-proxy"))
           if d["kind"] == "Deployment"][0]
    refs = [e["secretRef"]["name"] for e in dex["spec"]["template"]["spec"]["containers"][0]["envFrom"]]
    assert "dex-passwords" in refs


def _restart_annotation(run) -> str:
    patch = one(run, "kubernetes:apps/v1:DeploymentPatch")
    assert patch.inputs["metadata"] == {"name": "dex", "namespace": "auth"}
    assert run.depends_on(patch.name, "kubeflow-dex")
    return patch.inputs["spec"]["template"]["metadata"]["annotations"][kp.DEX_PASSWORDS_ANNOTATION]


def test_a_changed_password_restarts_dex():
    secrets = {"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"]}
    a = harness.run_stack("cloud", secrets={**secrets, "adminPassword": "first-password-1"})
    b = harness.run_stack("cloud", secrets={**secrets, "adminPassword": "second-password-2"})
    again = harness.run_stack("cloud", secrets={**secrets, "adminPassword": "first-password-1"})
    assert _restart_annotation(a) != _restart_annotation(b)
    assert _restart_annotation(a) == _restart_annotation(again)  # stable: no restart on every run


def test_an_admin_password_over_72_bytes_is_a_config_error():
    secrets = {"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"], "adminPassword": "é" * 37}
    with pytest.raises(ConfigError) as err:
        harness.run_stack("cloud", secrets=secrets)
    assert "adminPassword" in str(err.value) and "74 bytes" in str(err.value) and "72" in str(err.value)
    harness.run_stack("cloud", secrets={**secrets, "adminPassword": "x" * 72})


def test_an_identity_provider_needs_its_secret():
    stack, overrides, _ = kv.VARIANTS["cloud-oidc"]
    with pytest.raises(ConfigError) as err:
        harness.run_stack(stack, overrides=overrides)
    assert "identityProviderSecret" in str(err.value)


@pytest.mark.parametrize("idp,key", [
    ({"type": "saml"}, "kubeflow.identityProvider.type"),
    ({"type": "oidc", "clientId": "x"}, "kubeflow.identityProvider.issuer"),
    ({"type": "oidc", "issuer": "http://idp", "clientId": "x"}, "kubeflow.identityProvider.issuer"),
    ({"type": "github", "clientId": "x", "bindDN": "cn=a"}, "kubeflow.identityProvider.bindDN"),
    ({"type": "ldap", "host": "ldap:636", "bindDN": "cn=a"}, "kubeflow.identityProvider.userBaseDN"),
    ({"type": "google", "clientId": "x", "hostedDomains": "example.com"}, "kubeflow.identityProvider.hostedDomains"),
])
def test_identity_provider_errors_name_the_key(idp, key):
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["identityProvider"] = idp
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "cloud")
    assert key in dict(err.value.problems)


@pytest.mark.parametrize("kind,fields", [
    ("github", {"clientId": "x", "orgs": ["acme"]}),
    ("google", {"clientId": "x", "hostedDomains": ["example.com"]}),
    ("ldap", {"host": "ldap.example.com:636", "bindDN": "cn=svc,dc=example,dc=com", "userBaseDN": "ou=people,dc=example,dc=com"}),
])
def test_each_connector_type_renders_dex_fields(kind, fields):
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["identityProvider"] = {"type": kind, **fields}
    [conn] = yaml.safe_load(kp.dex_config(parse_settings(raw, "cloud")))["connectors"]
    assert conn["type"] == kind
    secret = "$" + kp.DEX_CONNECTOR_SECRET_ENV
    assert secret in (conn["config"].get("clientSecret"), conn["config"].get("bindPW"))


# quotas ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FULL)
def test_every_namespace_with_a_requests_quota_gets_default_requests(runs, name):
    run = kv.run(name, runs)
    limits = {r.inputs["metadata"]["namespace"]: r for r in run.by_type("kubernetes:core/v1:LimitRange")}
    for profile in run.by_type("kubernetes:kubeflow.org/v1:Profile"):
        ns = profile.inputs["metadata"]["name"]
        hard = ((profile.inputs["spec"].get("resourceQuotaSpec") or {}).get("hard")) or {}
        needs = {r.split(".", 1)[1] for r in hard if r in ("requests.cpu", "requests.memory")}
        if not needs:
            assert ns not in limits
            continue
        lr = limits[ns]
        assert run.depends_on(lr.name, profile.name)
        [item] = lr.inputs["spec"]["limits"]
        assert item["type"] == "Container" and needs <= set(item["defaultRequest"])
        for res in needs:  # a container with the defaults fits the quota
            assert kp._quantity(item["defaultRequest"][res]) <= kp._quantity(hard[f"requests.{res}"])
        assert "default" not in item  # no limits nobody asked for
        checked = True
    if name == "cloud-users":
        assert checked and set(limits) == {"alice", "bob"}


def test_gpu_quota_needs_no_default():
    assert kp.limit_range_spec(sm.Quota(gpu="1")) is None


def test_contributors_get_kfams_binding_and_policy(runs):
    run = kv.run("cloud-users", runs)
    [rb] = run.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert rb.inputs["metadata"]["namespace"] == "alice"
    assert rb.inputs["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob@example.com"}]
    assert rb.inputs["roleRef"]["name"] == "kubeflow-edit"
    [ap] = [r for r in run.by_type("kubernetes:security.istio.io/v1:AuthorizationPolicy") if r.inputs["metadata"]["namespace"] == "alice"]
    assert ap.inputs["spec"]["rules"][0]["when"] == [{"key": "request.headers[kubeflow-userid]", "values": ["bob@example.com"]}]


def kfam_principals(upstream) -> list[str]:
    """The sources KFAM's contributor policies admit: the principals its profiles-config gives it."""
    for f in up.rendered_index(upstream / "rendered" / "kubeflow-26.03").values():
        for d in up.docs_of(f):
            data = d.get("data") or {}
            if d["kind"] == "ConfigMap" and "KFP_UI_PRINCIPAL" in data:
                return [data["ISTIO_INGRESS_GATEWAY_PRINCIPAL"], data["KFP_UI_PRINCIPAL"]]
    raise AssertionError("no profiles-config with KFP_UI_PRINCIPAL in the rendered manifests")


def test_a_contributor_is_admitted_only_through_the_gateway_or_the_kfp_ui(runs, upstream):
    """Any pod in the mesh can set kubeflow-userid itself; only the gateway sets it from a login. KFAM's
    policy (what "Manage contributors" creates) admits the header from the principals of profiles-config."""
    from tests.contract.test_kubeflow_mesh_authz import allowed

    run = kv.run("cloud-users", runs)
    [ap] = [r for r in run.by_type("kubernetes:security.istio.io/v1:AuthorizationPolicy") if r.inputs["metadata"]["namespace"] == "alice"]
    sources = ap.inputs["spec"]["rules"][0]["from"]
    assert sources == [{"source": {"principals": kfam_principals(upstream)}}]
    policy = {"metadata": ap.inputs["metadata"], "spec": ap.inputs["spec"]}

    def request(principal):
        return {"principal": principal, "jwt": False, "path": "/notebook/alice/nb/", "method": "GET",
                "headers": {"kubeflow-userid": "bob@example.com"}}

    gateway, kfp_ui = kfam_principals(upstream)
    assert allowed([policy], "alice", {}, request(gateway)) and allowed([policy], "alice", {}, request(kfp_ui))
    assert not allowed([policy], "alice", {}, request("cluster.local/ns/carol/sa/default-editor"))


def test_contributor_role_exists_upstream(upstream):
    roles = {d["metadata"]["name"] for d in up.docs_of(up.rendered_file(upstream / "rendered" / "kubeflow-26.03",
                                                                        "common/kubeflow-roles/base")) if d["kind"] == "ClusterRole"}
    assert "kubeflow-edit" in roles


# reserved names -------------------------------------------------------------------------------------

def rendered_namespaces(upstream) -> set[str]:
    out = set()
    for f in (upstream / "rendered").glob("*/*.yaml"):
        for d in up.docs_of(f):
            if d["metadata"].get("namespace"):
                out.add(d["metadata"]["namespace"])
            if d["kind"] == "Namespace":
                out.add(d["metadata"]["name"])
    return out


def test_reserved_names_cover_every_namespace_the_platform_uses(upstream, runs):
    used = rendered_namespaces(upstream) - {"kubeflow-user-example-com"}
    for run in runs.values():
        for r in run.registrations:
            ns = r.inputs.get("namespace") or (r.inputs.get("metadata") or {}).get("namespace")
            if isinstance(ns, str) and ns and r.type != "kubernetes:kubeflow.org/v1:Profile":
                used.add(ns)
    profiles = {r.inputs["metadata"]["name"] for run in runs.values() for r in run.by_type("kubernetes:kubeflow.org/v1:Profile")}
    assert used - profiles <= sm.RESERVED_NAMESPACES, used - profiles - sm.RESERVED_NAMESPACES
    assert {"kube-system", "kube-public", "kube-node-lease", "default"} <= sm.RESERVED_NAMESPACES


@pytest.mark.parametrize("bad", sorted(sm.RESERVED_NAMESPACES) + ["kube-flannel"])
def test_a_reserved_user_name_is_refused_naming_the_key(bad):
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["users"] = [{"name": "alice", "email": "alice@example.com"}, {"name": bad, "email": "x@example.com"}]
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "cloud")
    assert "kubeflow.users[1].name" in dict(err.value.problems)


def test_the_admins_profile_cannot_be_a_platform_namespace_or_a_users():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["adminEmail"] = "kubeflow@example.com"
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "cloud")
    assert "kubeflow.adminEmail" in dict(err.value.problems)
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["users"] = [{"name": "admin", "email": "someone@example.com"}]
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "cloud")
    assert "kubeflow.users[0].name" in dict(err.value.problems)
    # listing the admin as a user is how the admin picks a namespace name
    raw["kubeflow"]["users"] = [{"name": "ops", "email": "admin@example.com"}]
    assert kp.admin_namespace(parse_settings(raw, "cloud")) == "ops"


# sidecar exceptions ---------------------------------------------------------------------------------

def test_upstreams_sidecar_exceptions_are_applied_as_upstream_has_them(upstream, runs):
    path = upstream / "kubeflow-manifests-26.03" / "common/istio/istio-install/base/sidecar-prune-egress.yaml"
    theirs = {d["metadata"]["name"]: d for d in up.load_yaml(path.read_text()) if d["metadata"]["namespace"] == "kubeflow"}
    assert set(theirs) == {"notebook-controller-exception", "ml-pipeline-ui-exception"}
    ours = {r.inputs["metadata"]["name"]: r for r in runs["cloud"].by_type("kubernetes:networking.istio.io/v1:Sidecar")
            if r.inputs["metadata"].get("namespace") == "kubeflow"}
    assert set(ours) == set(theirs)
    for n, doc in theirs.items():
        assert ours[n].inputs["spec"] == doc["spec"]
        assert runs["cloud"].depends_on(ours[n].name, "kubeflow-kubeflow-namespace")
    # the selected workloads exist with those labels in the rendered components
    rendered = upstream / "rendered" / "kubeflow-26.03"
    labels = [d["spec"]["template"]["metadata"]["labels"] for f in up.rendered_index(rendered).values()
              for d in up.docs_of(f) if d["kind"] == "Deployment" and d["metadata"].get("namespace") == "kubeflow"]
    for doc in theirs.values():
        assert any(up.selector_matches({"matchLabels": doc["spec"]["workloadSelector"]["labels"]}, lab) for lab in labels)
