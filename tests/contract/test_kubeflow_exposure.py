"""Issue 6, Exposure and Pod Security, over what each step really applies (the rendered 26.03 objects
with the program's overlays, tests/kustomize_lite.py; real kustomize over the 26.03 tree where a
binary is installed) and over the stacks' resources:

- ACME HTTP-01: Let's Encrypt's plain-HTTP fetch of /.well-known/acme-challenge/<token> passes both
  ingress-gateway auth policies and is routed to cert-manager's solver, not redirected; the same path
  over HTTPS still needs a login.
- cloud: Dex's issuer, the issuer oauth2-proxy and Istio expect, and the redirect URL are the public
  HTTPS URL of tls.host; oauth2-proxy still redeems codes and reads keys from in-cluster Dex.
- laptop keeps upstream's in-cluster issuer; both say how they are reached (`kubeflowAccess`).
- Pod Security: every system namespace keeps upstream's `restricted` label.
"""

from __future__ import annotations

import copy
import re
import subprocess

import pytest
import yaml

from components.cert_manager import cert_manager_plan
from components.istio import istio_plan
from components.kubeflow import kubeflow_plan as kp
from stacks.settings import parse_settings
from tests.contract import kubeflow_upstream as up
from tests.kustomize_lite import apply
from tests.harness import stack_raw

OAUTH2 = "istio-ingressgateway-oauth2-proxy"
REQUIRE_JWT = "istio-ingressgateway-require-jwt"
TOKEN_PATH = "/.well-known/acme-challenge/0123456789abcdef"


def settings(stack: str, **tls):
    raw = copy.deepcopy(stack_raw(stack))
    if tls:
        raw.setdefault("tls", {}).update(tls)
    return parse_settings(raw, stack)


@pytest.fixture(scope="module")
def rendered(upstream):
    return upstream / "rendered" / "kubeflow-26.03"


def applied(rendered, s, step: str) -> list[dict]:
    planned = next(p for p in kp.plan(s) if p.step.name == step)
    docs = list(up.docs_of(up.rendered_file(rendered, planned.step.path)))
    return apply(docs, planned.overlay) if planned.overlay else docs


def one(docs, kind: str, name: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind and (d["metadata"]["name"] == name or (
        kind in ("ConfigMap", "Secret") and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", d["metadata"]["name"])))]
    return doc


# A small model of Istio's AuthorizationPolicy matching (istio.io/latest/docs/reference/config/security/
# authorization-policy): a rule matches when one `from`, one `to` and every `when` match; paths match
# exactly, by prefix (`/a/*`) or suffix (`*.js`); ports are the workload's ports (istio/api#3075).

def _path(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern.rstrip("*"))
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def _operation(op: dict, req: dict) -> bool:
    if "paths" in op and not any(_path(p, req["path"]) for p in op["paths"]):
        return False
    if any(_path(p, req["path"]) for p in op.get("notPaths", [])):
        return False
    if "ports" in op and str(req["port"]) not in op["ports"]:
        return False
    if str(req["port"]) in op.get("notPorts", []):
        return False
    assert set(op) <= {"paths", "notPaths", "ports", "notPorts"}, op
    return True


def _source(src: dict, req: dict) -> bool:
    assert set(src) == {"notRequestPrincipals"} and src["notRequestPrincipals"] == ["*"], src
    return not req.get("jwt")


def _condition(cond: dict, req: dict) -> bool:
    assert cond == {"key": "request.headers[authorization]", "notValues": ["*"]}, cond
    return not req.get("authorization")


def policy_applies(policy: dict, req: dict) -> bool:
    for rule in policy["spec"]["rules"]:
        if ("from" not in rule or any(_source(f["source"], req) for f in rule["from"])) and (
            "to" not in rule or any(_operation(t["operation"], req) for t in rule["to"])
        ) and all(_condition(c, req) for c in rule.get("when", [])):
            return True
    return False


def needs_login(policies: dict[str, dict], req: dict) -> bool:
    """The request goes to oauth2-proxy (CUSTOM) or is denied for lack of a JWT (DENY)."""
    return policy_applies(policies[OAUTH2], req) or policy_applies(policies[REQUIRE_JWT], req)


def gateway_policies(docs) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "AuthorizationPolicy"
            and d["metadata"]["namespace"] == kp.GATEWAY_NAMESPACE}


# ACME HTTP-01 ---------------------------------------------------------------------------------------

def test_upstream_policies_exempt_only_dex_and_oauth2(rendered):
    """What the program builds on: upstream's rules, found in the oauth2-proxy step's rendered objects."""
    policies = gateway_policies(up.docs_of(up.rendered_file(rendered, kp.CATALOG_BY_NAME["oauth2-proxy"].path)))
    assert set(policies) == {OAUTH2, REQUIRE_JWT}
    for policy in policies.values():
        [rule] = policy["spec"]["rules"]
        assert rule["to"] == [{"operation": {"notPaths": list(kp.AUTH_EXEMPT_PATHS)}}]
    http = kp.gateway_http_port(settings("cloud"))
    assert needs_login(policies, {"path": TOKEN_PATH, "port": http})  # upstream would block the check


def test_with_acme_the_challenge_passes_both_policies_on_plain_http_only(rendered):
    s = settings("cloud")
    assert cert_manager_plan.acme_enabled(s)
    upstream = gateway_policies(up.docs_of(up.rendered_file(rendered, kp.CATALOG_BY_NAME["oauth2-proxy"].path)))
    policies = gateway_policies(applied(rendered, s, "oauth2-proxy"))
    http, https = kp.gateway_http_port(s), 8443
    assert http == 8080
    # Let's Encrypt (and cert-manager's self-check): no cookie, no token, plain HTTP.
    assert not needs_login(policies, {"path": TOKEN_PATH, "port": http})
    # The same path over HTTPS, and everything else, as upstream.
    for req in ({"path": TOKEN_PATH, "port": https}, {"path": "/", "port": http}, {"path": "/", "port": https},
                {"path": "/pipeline/apis/v2beta1/runs", "port": https},
                {"path": "/.well-known/openid-configuration", "port": http},
                {"path": "/dex/auth", "port": https}, {"path": "/oauth2/callback", "port": https},
                {"path": "/", "port": https, "authorization": True, "jwt": True},
                {"path": "/", "port": https, "authorization": True}):
        assert needs_login(policies, req) == needs_login(upstream, req), req
    # Everything but the rules is upstream's (action, provider, selector).
    for name, policy in policies.items():
        assert {k: v for k, v in policy["spec"].items() if k != "rules"} == \
               {k: v for k, v in upstream[name]["spec"].items() if k != "rules"}


@pytest.mark.parametrize("stack,tls", [("dev", {}), ("cloud", {"issuer": "selfsigned"})])
def test_without_acme_the_policies_stay_upstreams(rendered, stack, tls):
    s = settings(stack, **tls)
    assert not cert_manager_plan.acme_enabled(s)
    upstream = gateway_policies(up.docs_of(up.rendered_file(rendered, kp.CATALOG_BY_NAME["oauth2-proxy"].path)))
    assert gateway_policies(applied(rendered, s, "oauth2-proxy")) == upstream


def test_the_solver_route_is_served_by_the_gateway_and_not_redirected(runs, rendered):
    """cert-manager's HTTP-01 solver creates an Ingress of the issuer's class in the Certificate's
    namespace (istio-system), host tls.host, path /.well-known/acme-challenge/<token>. Istio turns
    Ingresses of its class into a port-80 route for that host on the gateway its mesh config selects.
    Envoy picks the most specific virtual host, so kubeflow-gateway's redirect (hosts '*') does not
    catch the exact host of the solver's route: the token is served over plain HTTP."""
    run = runs["cloud"]
    [issuer] = [r for r in run.by_type("kubernetes:cert-manager.io/v1:ClusterIssuer")
                if r.inputs["metadata"]["name"] == cert_manager_plan.ACME_ISSUER]
    [solver] = issuer.inputs["spec"]["acme"]["solvers"]
    ingress_class = solver["http01"]["ingress"]["ingressClassName"]
    # the class exists and is Istio's (STRICT mode ignores Ingresses of unknown classes)
    [cls] = run.by_type("kubernetes:networking.k8s.io/v1:IngressClass")
    assert cls.inputs["metadata"]["name"] == ingress_class
    assert cls.inputs["spec"]["controller"] == "istio.io/ingress-controller"
    mesh = istio_plan.mesh_config()
    assert mesh["ingressClass"] == ingress_class and mesh["ingressControllerMode"] == "STRICT"
    assert istio_plan.INGRESS_LABELS["istio"] == mesh["ingressSelector"]
    # the Certificate is for tls.host, in istio-system, issued by letsencrypt
    [cert] = [r for r in run.by_type("kubernetes:cert-manager.io/v1:Certificate")
              if r.inputs["spec"]["secretName"] == kp.GATEWAY_TLS_SECRET]
    assert cert.inputs["metadata"]["namespace"] == kp.GATEWAY_NAMESPACE
    assert cert.inputs["spec"]["issuerRef"]["name"] == cert_manager_plan.ACME_ISSUER
    assert cert.inputs["spec"]["dnsNames"] == ["kubeflow.example.com"]
    # the HTTP redirect is a wildcard-host server, never one for tls.host itself
    [gateway] = [d for d in applied(rendered, settings("cloud"), "kubeflow-istio-resources") if d["kind"] == "Gateway"]
    [http] = [srv for srv in gateway["spec"]["servers"] if srv["port"]["protocol"] == "HTTP"]
    assert http["tls"] == {"httpsRedirect": True} and http["hosts"] == ["*"] and http["port"]["number"] == 80
    # port 80 of the gateway Service is the port the policies call plain HTTP
    ports = istio_plan.ingress_gateway_values(settings("cloud"))["service"]["ports"]
    assert {p["port"]: p["targetPort"] for p in ports}[80] == kp.gateway_http_port(settings("cloud"))


# Public HTTPS identity on cloud ----------------------------------------------------------------------

def oauth2_proxy_settings(docs) -> dict[str, str]:
    """oauth2-proxy's effective settings: its config file, overridden by OAUTH2_PROXY_* env values."""
    cfg = one(docs, "ConfigMap", "oauth2-proxy")["data"]["oauth2_proxy.cfg"]
    out = {}
    for line in cfg.splitlines():
        m = re.fullmatch(r'\s*([a-z_]+)\s*=\s*"?([^"\[]*?)"?\s*', line)
        if m:
            out[m.group(1)] = m.group(2)
    [container] = one(docs, "Deployment", "oauth2-proxy")["spec"]["template"]["spec"]["containers"]
    for e in container.get("env", []):
        if "value" in e and e["name"].startswith("OAUTH2_PROXY_"):
            out[e["name"].removeprefix("OAUTH2_PROXY_").lower()] = e["value"]
    return out


def identity(rendered, s) -> dict:
    proxy_docs, dex_docs = applied(rendered, s, "oauth2-proxy"), applied(rendered, s, "dex")
    dex = yaml.safe_load(one(dex_docs, "ConfigMap", "dex")["data"]["config.yaml"])
    [rule] = one(proxy_docs, "RequestAuthentication", "dex-jwt")["spec"]["jwtRules"]
    return {"dex": dex, "proxy": oauth2_proxy_settings(proxy_docs), "jwt": rule}


def test_cloud_dex_oauth2_proxy_and_istio_agree_on_the_public_https_issuer(rendered):
    s = settings("cloud")
    got = identity(rendered, s)
    dex, proxy, jwt = got["dex"], got["proxy"], got["jwt"]
    assert dex["issuer"] == proxy["oidc_issuer_url"] == jwt["issuer"] == "https://kubeflow.example.com/dex"
    assert proxy["redirect_url"] == "https://kubeflow.example.com/oauth2/callback"
    assert proxy["relative_redirect_url"] == "false"
    assert dex["staticClients"][0]["redirectURIs"] == [proxy["redirect_url"]]
    # Token redemption, keys and discovery stay in-cluster: nothing inside reaches the public name.
    assert proxy["skip_oidc_discovery"] == "true"
    assert proxy["redeem_url"] == f"{kp.DEX_IN_CLUSTER}/token" and proxy["oidc_jwks_url"] == f"{kp.DEX_IN_CLUSTER}/keys"
    assert jwt["jwksUri"] == f"{kp.DEX_IN_CLUSTER}/keys"
    assert proxy["login_url"] == "/dex/auth"  # relative: the browser's host
    # Dex serves under the issuer's path, which is the in-cluster URLs' path too.
    assert dex["issuer"].endswith("/dex") and kp.DEX_IN_CLUSTER.endswith("/dex")
    # The cookie is Secure.
    assert one(applied(rendered, s, "oauth2-proxy"), "ConfigMap", "oauth2-proxy-parameters")["data"]["FORCE_HTTPS"] == "true"


def test_cloud_jwt_rule_is_upstreams_but_for_issuer_and_keys(rendered):
    upstream = one(up.docs_of(up.rendered_file(rendered, kp.CATALOG_BY_NAME["oauth2-proxy"].path)),
                   "RequestAuthentication", "dex-jwt")
    [up_rule] = upstream["spec"]["jwtRules"]
    [rule] = kp.dex_jwt_rules(settings("cloud"))
    assert {k: v for k, v in rule.items() if k not in ("issuer", "jwksUri")} == \
           {k: v for k, v in up_rule.items() if k != "issuer"}
    assert up_rule["issuer"] == kp.DEX_IN_CLUSTER


def test_laptop_keeps_upstreams_in_cluster_issuer_and_relative_redirect(rendered):
    s = settings("dev")
    got = identity(rendered, s)
    dex, proxy, jwt = got["dex"], got["proxy"], got["jwt"]
    assert dex["issuer"] == proxy["oidc_issuer_url"] == jwt["issuer"] == kp.DEX_IN_CLUSTER
    assert proxy["redirect_url"] == "/oauth2/callback" and proxy["relative_redirect_url"] == "true"
    assert dex["staticClients"][0]["redirectURIs"] == ["/oauth2/callback"]
    assert one(applied(rendered, s, "oauth2-proxy"), "ConfigMap", "oauth2-proxy-parameters")["data"]["FORCE_HTTPS"] == "true"


def test_outputs_say_how_each_stack_is_reached(runs):
    cloud, dev, edge = (runs[s].exports for s in ("cloud", "dev", "edge"))
    assert cloud["kubeflowDashboardUrl"] == "https://kubeflow.example.com/"
    assert cloud["kubeflowAccess"].startswith("public HTTPS only: https://kubeflow.example.com/")
    assert "issuer https://kubeflow.example.com/dex" in cloud["kubeflowAccess"]
    assert "forward 443 to node port 30443 and 80 to node port 30080" in cloud["kubeflowAccess"]
    assert dev["kubeflowAccess"].startswith("local address: https://kubeflow.localhost/")
    assert f"plain HTTP inside the cluster (Dex issuer {kp.DEX_IN_CLUSTER}" in dev["kubeflowAccess"]
    assert edge["kubeflowAccess"].startswith("plain HTTP on a local address")
    assert "http://localhost:8080/" in edge["kubeflowAccess"]


# Real kustomize over the 26.03 tree ------------------------------------------------------------------



@pytest.mark.parametrize("step", ["oauth2-proxy", "dex"])
def test_real_kustomize_renders_the_public_identity_and_acme_policies_as_modelled(upstream, rendered, step):
    cmd = up.kustomize_cmd()
    if cmd is None:
        pytest.skip("no kustomize or kubectl binary installed")
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["kubeflow"]["manifestsPath"] = str(upstream / "kubeflow-manifests-26.03")
    s = parse_settings(raw, "kustomize-check")
    planned = next(p for p in kp.plan(s) if p.step.name == step)
    directory = kp.PROJECT_ROOT / planned.directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(planned.overlay.text())
    result = subprocess.run([*cmd, str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    real = up.load_yaml(result.stdout)
    model = applied(rendered, settings("cloud"), step)
    if step == "oauth2-proxy":
        assert gateway_policies(real) == gateway_policies(model)
        assert one(real, "RequestAuthentication", "dex-jwt") == one(model, "RequestAuthentication", "dex-jwt")
        assert oauth2_proxy_settings(real) == oauth2_proxy_settings(model)
        assert not needs_login(gateway_policies(real), {"path": TOKEN_PATH, "port": kp.gateway_http_port(s)})
    else:
        config = yaml.safe_load(one(real, "ConfigMap", "dex")["data"]["config.yaml"])
        assert config == yaml.safe_load(one(model, "ConfigMap", "dex")["data"]["config.yaml"])
        assert config["issuer"] == "https://kubeflow.example.com/dex"


# Pod Security Standards ------------------------------------------------------------------------------

def test_every_system_namespace_keeps_upstreams_restricted_label(runs, rendered, upstream):
    """Upstream labels cert-manager, istio-system, auth, oauth2-proxy, knative-serving, kubeflow and
    kubeflow-system `restricted`. Each reaches the cloud stack with that label: created by the program
    with it, or applied by a step whose overlay leaves the Namespace alone."""
    restricted = {}
    for f in sorted(rendered.glob("[0-9][0-9]-*.yaml")):
        for name, labels in up.provided(up.docs_of(f)).namespaces.items():
            if labels.get("pod-security.kubernetes.io/enforce") == "restricted":
                restricted[name] = labels
    assert set(restricted) == {"cert-manager", "istio-system", "auth", "oauth2-proxy", "knative-serving",
                               "kubeflow", "kubeflow-system"}
    created = {r.inputs["metadata"]["name"]: r.inputs["metadata"].get("labels") or {}
               for r in runs["cloud"].by_type("kubernetes:core/v1:Namespace")}
    s = settings("cloud")
    from_steps = {}
    for planned in kp.plan(s):
        f = up.rendered_file(rendered, planned.step.path)
        if f:
            from_steps.update(up.provided(applied(rendered, s, planned.step.name)).namespaces)
    for ns in restricted:
        labels = created.get(ns) or from_steps.get(ns)
        assert labels is not None, f"{ns} is neither created by the program nor applied by a step"
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", ns
        assert not (ns in created and ns in from_steps), f"{ns} created twice"
    # Namespaces the platform creates for a Helm release exist, labelled, before the release's pods.
    for stack, run in runs.items():
        if "cert-manager-chart" not in run.names():
            continue  # (edge: no cert-manager)
        assert run.depends_on("cert-manager-chart", "cert-manager-namespace"), stack
        assert run.get("cert-manager-chart").inputs["createNamespace"] is False
