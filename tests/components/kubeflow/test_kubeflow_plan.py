"""The Kubeflow plan without the engine: which steps, from where, with which overlay, users, rules."""

from __future__ import annotations

import copy

import pytest
import yaml

from components.kubeflow import kubeflow_overlay, kubeflow_plan as kp
from stacks import kubeflow_components, profiles
from stacks.settings import parse_settings
from tests.harness import stack_raw


def settings(stack: str = "dev", **kubeflow):
    raw = copy.deepcopy(stack_raw(stack))
    raw.setdefault("kubeflow", {}).update(kubeflow)
    return parse_settings(raw, stack)


def names(s) -> list[str]:
    return [p.step.name for p in kp.plan(s)]


LAPTOP_STEPS = [
    "oauth2-proxy", "dex", "kubeflow-namespace", "kubeflow-roles", "kubeflow-istio-resources", "pipelines",
    "central-dashboard", "admission-webhook", "jupyter-web-app", "notebook-controller", "profiles",
    "pvcviewer-controller", "volumes-web-app",
]


def test_laptop_installs_what_a_single_developer_needs_in_upstream_order():
    assert names(settings("dev")) == LAPTOP_STEPS


def test_cloud_installs_every_component():
    assert names(settings("cloud")) == [s.name for s in kp.CATALOG]


def test_edge_and_none_apply_no_kubeflow_manifests():
    assert kp.plan(settings("edge")) == ()
    assert kp.plan(settings("dev", mode="none")) == ()


def test_sources_are_the_pinned_git_url_by_default():
    for planned in kp.plan(settings("cloud")):
        assert planned.source == f"https://github.com/kubeflow/manifests/{planned.step.path}?ref=26.03"
        if planned.overlay is None:
            assert planned.directory == planned.source
        else:
            assert planned.directory == f".build/kubeflow/cloud/{planned.step.name}"
            assert planned.overlay.resource == planned.source


@pytest.mark.parametrize("local", ["vendor/manifests", "/srv/kubeflow-manifests"])
def test_manifests_path_reads_a_local_checkout(local):
    for planned in kp.plan(settings("dev", manifestsPath=local)):
        assert planned.source == f"{local}/{planned.step.path}"
        if planned.overlay:
            # kustomize wants a relative path from the overlay to the checkout
            assert not planned.overlay.resource.startswith("/")
            resolved = (kp.PROJECT_ROOT / planned.directory / planned.overlay.resource).resolve()
            assert resolved == (kp.PROJECT_ROOT / local / planned.step.path).resolve()


def test_overlays_are_identical_on_every_run():
    first = {p.step.name: p.overlay.text() for p in kp.plan(settings("cloud")) if p.overlay}
    second = {p.step.name: p.overlay.text() for p in kp.plan(settings("cloud")) if p.overlay}
    assert first == second and first


def test_overlay_is_a_valid_kustomization_deleting_upstream_credentials():
    dex = next(p for p in kp.plan(settings("dev")) if p.step.name == "dex")
    doc = yaml.safe_load(dex.overlay.text())
    assert doc["kind"] == "Kustomization" and doc["resources"] == [dex.source]
    deleted = {(yaml.safe_load(p["patch"])["kind"], p["target"]["name"]) for p in doc["patches"]
               if "$patch: delete" in p["patch"]}
    assert {("Secret", "dex-passwords"), ("Secret", "dex-oidc-client"), ("Namespace", "auth")} <= deleted


def test_dex_gets_the_configured_admin_and_no_secret():
    s = settings("dev", adminEmail="ada@example.org")
    config = yaml.safe_load(kp.dex_config(s))
    assert config["staticPasswords"] == [
        {"email": "ada@example.org", "hashFromEnv": "DEX_USER_PASSWORD", "username": "ada", "userID": kp.dex_user_id("ada@example.org")}
    ]
    assert config["staticClients"][0]["secretEnv"] == "OIDC_CLIENT_SECRET"
    assert "user@example.com" not in kp.dex_config(s)


def test_gateway_serves_https_with_the_platform_certificate_and_redirects_http():
    servers = {s["port"]["protocol"]: s for s in kp.gateway_servers(settings("cloud"))}
    assert servers["HTTP"]["tls"] == {"httpsRedirect": True}
    assert servers["HTTPS"]["tls"] == {"mode": "SIMPLE", "credentialName": "kubeflow-gateway-tls"}
    assert servers["HTTPS"]["port"]["number"] == 443


def test_cloud_identity_is_the_public_https_url_and_laptop_keeps_upstreams():
    cloud, dev = settings("cloud"), settings("dev")
    assert kp.public_identity(cloud) and not kp.public_identity(dev)
    assert kp.dex_issuer(cloud) == "https://kubeflow.example.com/dex"
    assert kp.oauth2_redirect_url(cloud) == "https://kubeflow.example.com/oauth2/callback"
    assert yaml.safe_load(kp.dex_config(cloud))["issuer"] == kp.dex_issuer(cloud)
    assert {e["name"]: e["value"] for e in kp.oauth2_proxy_env(cloud)} == {
        "OAUTH2_PROXY_OIDC_ISSUER_URL": "https://kubeflow.example.com/dex",
        "OAUTH2_PROXY_REDIRECT_URL": "https://kubeflow.example.com/oauth2/callback",
        "OAUTH2_PROXY_RELATIVE_REDIRECT_URL": "false",
    }
    assert kp.dex_issuer(dev) == "http://dex.auth.svc.cluster.local:5556/dex" and kp.oauth2_proxy_env(dev) == []
    assert yaml.safe_load(kp.dex_config(dev))["staticClients"][0]["redirectURIs"] == ["/oauth2/callback"]
    # laptop's plan does not touch oauth2-proxy's identity or Istio's JWT rule
    [proxy] = [p for p in kp.plan(dev) if p.step.name == "oauth2-proxy"]
    assert {(p.kind, p.name) for p in proxy.overlay.patches} == {("Namespace", "oauth2-proxy"), ("Secret", "oauth2-proxy")}


def test_every_full_stack_forces_https_cookies():
    for stack in ("dev", "cloud"):
        [proxy] = [p for p in kp.plan(settings(stack)) if p.step.name == "oauth2-proxy"]
        assert [m.literals for m in proxy.overlay.config_map_merges] == [{"FORCE_HTTPS": "true"}]


def test_acme_exemption_only_with_letsencrypt_and_only_on_plain_http():
    exempt = kp.auth_operations(settings("cloud"))
    assert exempt == [
        {"operation": {"notPaths": ["/dex/*", "/dex/**", "/oauth2/*", "/.well-known/acme-challenge/*"]}},
        {"operation": {"paths": ["/.well-known/acme-challenge/*"], "notPorts": ["8080"]}},
    ]
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["tls"]["issuer"] = "selfsigned"
    assert kp.auth_operations(parse_settings(raw, "cloud")) == [{"operation": {"notPaths": ["/dex/*", "/dex/**", "/oauth2/*"]}}]


def test_access_note_says_plain_http_on_a_local_address_for_standalone_pipelines():
    note = kp.access_note(settings("dev", mode="pipelines"))
    assert note.startswith("plain HTTP on a local address") and "no login and no TLS" in note
    assert kp.access_note(settings("dev", mode="none")) == ""
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["gateway"] = {"serviceType": "LoadBalancer"}
    lb = parse_settings(raw, "cloud")
    assert kp.dashboard_url(lb) == "https://kubeflow.example.com/" and "node port" not in kp.access_note(lb)
    nodeport_laptop = parse_settings({**copy.deepcopy(stack_raw("dev")), "gateway": {"serviceType": "NodePort"}}, "dev")
    assert kp.dashboard_url(nodeport_laptop) == "https://kubeflow.localhost:30443/"


def test_every_fail_webhook_of_a_step_waits_for_its_serving_deployment():
    for planned in kp.plan(settings("cloud")):
        for kind, name, ns, deployment in planned.step.webhooks:
            patch = next(p for p in planned.overlay.patches if p.kind == kind and p.name == name)
            annotations = patch.merge["metadata"]["annotations"]
            assert annotations[kubeflow_overlay.DEPENDS_ON] == f"apps/namespaces/{ns}/Deployment/{deployment}"


def test_one_profile_per_user_with_quota():
    s = settings("cloud")
    admin, alice = kp.profiles(s)
    assert admin["name"] == kp.admin_namespace(s) == "admin" and admin["email"] == "admin@example.com"
    assert alice["name"] == "alice"
    assert kp.profile_spec(alice["email"], alice["quota"]) == {
        "owner": {"kind": "User", "name": "alice@example.com"},
        "resourceQuotaSpec": {"hard": {"requests.cpu": "8", "requests.memory": "32Gi", "requests.nvidia.com/gpu": "1"}},
    }


def test_without_users_the_admin_gets_a_profile():
    s = settings("dev", adminEmail="Ada.Lovelace@example.org")
    assert [p["name"] for p in kp.profiles(s)] == ["ada-lovelace"]
    assert kp.profile_spec("a@b.c", None) == {"owner": {"kind": "User", "name": "a@b.c"}}


# Component rules (stacks/kubeflow_components.py, applied by parse_settings) --------------------

def test_kserve_switches_knative_on():
    s = settings("dev", components={"kserve": True})
    assert s.kubeflow.components["knative"] is True
    assert "knative (needed by kserve)" in s.kubeflow.auto_enabled
    assert {"knative-serving", "kserve", "kserve-models-web-app"} <= set(names(s))


def test_every_rule_names_known_components():
    for comp, needs in kubeflow_components.REQUIRES.items():
        assert comp in profiles.KUBEFLOW_COMPONENTS
        assert all(n in profiles.KUBEFLOW_COMPONENTS for n, _ in needs)
    assert {s.component for s in kp.CATALOG} - {None} == set(profiles.KUBEFLOW_COMPONENTS)


def test_resolve_completes_transitively_and_reports_every_refusal():
    resolved, problems, auto = kubeflow_components.resolve({"notebooks": True}, explicit=(), mode="full")
    assert resolved["profiles"] and resolved["admissionWebhook"]
    assert sorted(auto) == ["admissionWebhook (needed by notebooks)", "profiles (needed by notebooks)"]
    _, problems, _ = kubeflow_components.resolve(
        {"notebooks": True, "kserve": True, "profiles": False, "knative": False},
        explicit=("profiles", "knative"), mode="full")
    assert {k for k, _ in problems} == {"kubeflow.components.profiles", "kubeflow.components.knative"}
    assert kubeflow_components.resolve({"kserve": True}, explicit=(), mode="pipelines")[2] == []
