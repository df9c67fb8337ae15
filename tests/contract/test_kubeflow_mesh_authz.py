"""Issue 9, who may call whom: the ingress gateway's identity against Kubeflow's AuthorizationPolicies.

- The principal the program gives the gateway (istio_plan.ingress_gateway_principal, set through the
  gateway chart's serviceAccount.name) is exactly the one upstream's rendered policies and the profiles
  controller's ISTIO_INGRESS_GATEWAY_PRINCIPAL admit.
- Mesh authorization: for every VirtualService route on the Kubeflow gateway, in what each stack
  applies (real kustomize over the generated overlays), the gateway's *actual* principal (namespace +
  serviceAccountName of the Deployment `helm template` renders from our values) is allowed by the
  AuthorizationPolicies selecting the destination workload, and another principal is not.

The model of Istio's evaluation (istio.io/latest/docs/concepts/security/#authorization-policies):
DENY policies first, then if any ALLOW policy selects the workload the request must match one; a
policy in the root namespace (istio-system) without selector applies to every workload; only
workloads with a sidecar enforce anything. Rule fields this model does not know fail the test.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from components.shared import helm
from components.istio import istio_plan
from components.kubeflow import kubeflow_plan as kp
from stacks import versions
from tests.contract import kubeflow_upstream as up
from tests.contract import kubeflow_variants as kv
from tests.contract import rendered_stack as rs
from tests.contract.test_charts import chart_dir

GATEWAY = "kubeflow/kubeflow-gateway"
ROOT_NAMESPACE = istio_plan.NAMESPACE
STACKS = ["dev", "cloud"]


# --- the identity, in one place, equal to upstream's ----------------------------------------------

def upstream_gateway_principals(upstream) -> set[str]:
    """Every principal of istio-system's ingress gateway that upstream's rendered objects admit."""
    found = set()
    for f in up.rendered_index(upstream / "rendered" / "kubeflow-26.03").values():
        for d in up.docs_of(f):
            if d["kind"] == "AuthorizationPolicy":
                for rule in (d.get("spec") or {}).get("rules") or []:
                    for src in rule.get("from") or []:
                        found |= {p for p in src["source"].get("principals") or [] if "/ns/istio-system/" in p}
            if d["kind"] == "Deployment":
                for c in d["spec"]["template"]["spec"]["containers"]:
                    for e in c.get("env") or []:
                        if e["name"] == "ISTIO_INGRESS_GATEWAY_PRINCIPAL":
                            found.add(e["value"])
    return found


def test_the_gateway_principal_is_the_one_upstream_authorizes(upstream):
    principals = upstream_gateway_principals(upstream)
    assert principals == {istio_plan.ingress_gateway_principal()}
    assert istio_plan.ingress_gateway_values(kv.run_settings("cloud"))["serviceAccount"]["name"] == \
        istio_plan.ingress_gateway_principal().rsplit("/", 1)[1]


# --- the gateway as helm renders it ---------------------------------------------------------------

def helm_template(upstream, release: str, key: str, values: dict, namespace: str, tmp_path) -> list[dict]:
    if not __import__("shutil").which("helm"):
        pytest.skip("no helm binary installed")
    values_file = tmp_path / f"{release}-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = subprocess.run(["helm", "template", release, str(chart_dir(upstream, key)), "-n", namespace,
                             "-f", str(values_file), "--kube-version", "1.34"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return up.load_yaml(result.stdout)


def gateway_principal_as_rendered(upstream, settings, tmp_path) -> tuple[str, dict]:
    docs = helm_template(upstream, istio_plan.INGRESS_GATEWAY, "istio-gateway",
                         istio_plan.ingress_gateway_values(settings), istio_plan.NAMESPACE, tmp_path)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == sa for d in docs)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return f"cluster.local/ns/{deployment['metadata']['namespace']}/sa/{sa}", labels


# --- a small model of Istio authorization -----------------------------------------------------------

def _source_ok(src: dict, req: dict) -> bool:
    known = {"principals", "notPrincipals", "namespaces", "notNamespaces", "requestPrincipals", "notRequestPrincipals"}
    assert set(src) <= known, src
    ns = req["principal"].split("/ns/")[1].split("/")[0]
    if "principals" in src and not any(p == "*" or p == req["principal"] for p in src["principals"]):
        return False
    if req["principal"] in src.get("notPrincipals", []):
        return False
    if "namespaces" in src and ns not in src["namespaces"]:
        return False
    if ns in src.get("notNamespaces", []):
        return False
    if "requestPrincipals" in src and not req["jwt"]:
        return False
    if "notRequestPrincipals" in src and req["jwt"]:
        return False
    return True


def _when_ok(cond: dict, req: dict) -> bool:
    k = cond["key"]
    assert k.startswith("request.headers["), cond
    value = req["headers"].get(k[len("request.headers["):-1])
    if "values" in cond:
        return value is not None and ("*" in cond["values"] or value in cond["values"])
    if "notValues" in cond:
        return value is None or ("*" not in cond["notValues"] and value not in cond["notValues"])
    raise AssertionError(cond)


def _to_ok(op: dict, req: dict) -> bool:
    assert set(op) <= {"paths", "notPaths", "methods", "ports", "notPorts"}, op
    if "paths" in op and not any(req["path"].startswith(p.rstrip("*")) for p in op["paths"]):
        return False
    if any(req["path"].startswith(p.rstrip("*")) for p in op.get("notPaths", [])):
        return False
    return "methods" not in op or req["method"] in op["methods"]


def rule_matches(rule: dict, req: dict) -> bool:
    return ((not rule.get("from") or any(_source_ok(f["source"], req) for f in rule["from"]))
            and (not rule.get("to") or any(_to_ok(t["operation"], req) for t in rule["to"]))
            and all(_when_ok(c, req) for c in rule.get("when") or []))


def allowed(policies: list[dict], pod_ns: str, pod_labels: dict, req: dict) -> bool:
    selecting = [p for p in policies if (p["metadata"]["namespace"] in (pod_ns, ROOT_NAMESPACE))
                 and (p["metadata"]["namespace"] == pod_ns or not (p.get("spec") or {}).get("selector"))
                 and up.selector_matches((p.get("spec") or {}).get("selector"), pod_labels)]
    for p in selecting:
        spec = p.get("spec") or {}
        if spec.get("action") == "DENY" and any(rule_matches(r, req) for r in spec.get("rules") or []):
            return False
    allows = [p.get("spec") or {} for p in selecting if (p.get("spec") or {}).get("action", "ALLOW") == "ALLOW"]
    return not allows or any(rule_matches(r, req) for s in allows for r in s.get("rules") or [])


def names_the_gateway(policies: list[dict], ns: str, labels: dict) -> bool:
    """Does a policy selecting this workload name an istio-system principal (upstream's intent to
    serve it through the ingress gateway)?"""
    for p in policies:
        if p["metadata"]["namespace"] == ns and up.selector_matches((p.get("spec") or {}).get("selector"), labels):
            for rule in (p.get("spec") or {}).get("rules") or []:
                for src in rule.get("from") or []:
                    if any("/ns/istio-system/" in x for x in src["source"].get("principals") or []):
                        return True
    return False


def injected(ns_labels: dict, pod_labels: dict, pod_annotations: dict) -> bool:
    flag = pod_labels.get("sidecar.istio.io/inject", pod_annotations.get("sidecar.istio.io/inject"))
    if flag == "false":
        return False
    return ns_labels.get("istio-injection") == "enabled" or flag == "true"


# --- the test ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def applied(upstream):
    return {name: (s, [d for docs in steps.values() for d in docs])
            for name, (s, steps) in rs.variants(upstream, STACKS).items()}


def program_policies() -> list[dict]:
    return [{"kind": "AuthorizationPolicy", "metadata": {"name": n, "namespace": istio_plan.NAMESPACE}, "spec": spec}
            for n, spec in istio_plan.authorization_policies().items()]


@pytest.mark.parametrize("name", STACKS)
def test_every_gateway_route_admits_the_gateway_and_no_one_else(applied, upstream, tmp_path, name):
    s, docs = applied[name]
    principal, gateway_labels = gateway_principal_as_rendered(upstream, s, tmp_path)
    [kf_gateway] = [d for d in docs if d["kind"] == "Gateway" and d["metadata"]["name"] == "kubeflow-gateway"]
    assert up.selector_matches({"matchLabels": kf_gateway["spec"]["selector"]}, gateway_labels)
    policies = [d for d in docs if d["kind"] == "AuthorizationPolicy"] + program_policies()
    namespaces = {d["metadata"]["name"]: d["metadata"].get("labels") or {} for d in docs if d["kind"] == "Namespace"}
    for ns, labels in kp.OWN_NAMESPACES.items():
        namespaces.setdefault(ns, labels)
    services = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Service"}
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    checked, internal, open_to_all = [], [], []
    for vs in (d for d in docs if d["kind"] == "VirtualService"):
        vs_ns = vs["metadata"]["namespace"]
        gateways = {g if "/" in g else f"{vs_ns}/{g}" for g in vs["spec"].get("gateways") or []}
        if GATEWAY not in gateways:
            continue
        for route in vs["spec"].get("http") or []:
            path = next((m["uri"]["prefix"] for m in route.get("match") or [] if "prefix" in m.get("uri", {})), "/")
            for dest in route.get("route") or []:
                host = dest["destination"]["host"]
                parts = host.split(".")
                svc_ns = parts[1] if len(parts) > 1 else vs_ns
                svc = services.get((svc_ns, parts[0]))
                assert svc is not None, f"{vs_ns}/{vs['metadata']['name']}: no Service {host}"
                pods = [w for w in workloads if w["metadata"]["namespace"] == svc_ns and svc["spec"].get("selector")
                        and up.selector_matches({"matchLabels": svc["spec"]["selector"]},
                                                w["spec"]["template"]["metadata"].get("labels") or {})]
                assert pods, f"no workload behind {host}"
                for w in pods:
                    meta = w["spec"]["template"]["metadata"]
                    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
                    if not injected(namespaces.get(svc_ns, {}), labels, annotations):
                        continue  # no sidecar: nothing enforces a policy (Dex, oauth2-proxy)
                    req = {"principal": principal, "jwt": True, "path": path, "method": "GET",
                           "headers": {"authorization": "Bearer token", "kubeflow-userid": s.kubeflow.admin_email}}
                    other = dict(req, principal=f"cluster.local/ns/{istio_plan.NAMESPACE}/sa/{istio_plan.INGRESS_GATEWAY}")
                    if names_the_gateway(policies, svc_ns, labels):
                        assert allowed(policies, svc_ns, labels, req), f"gateway denied on {host}{path}"
                        assert not allowed(policies, svc_ns, labels, other), f"{host}{path} admits any principal"
                        checked.append(f"{host}{path}")
                    elif allowed(policies, svc_ns, labels, other):
                        # upstream admits every principal here (Model Registry's API): so the gateway too
                        assert allowed(policies, svc_ns, labels, req)
                        open_to_all.append(f"{host}{path}")
                    else:
                        # upstream keeps it internal (KFAM: only the dashboard may call it)
                        assert not allowed(policies, svc_ns, labels, req)
                        internal.append(f"{host}{path}")
    # the dashboard, notebooks, volumes, pipelines UI at least
    assert {"centraldashboard", "jupyter-web-app-service", "volumes-web-app-service", "ml-pipeline-ui"} <= \
        {c.split(".")[0] for c in checked}
    assert {c.split(".")[0] for c in internal} <= {"profiles-kfam"}
    assert {c.split(".")[0] for c in open_to_all} <= {"model-registry-service"}


def test_the_release_name_alone_would_be_denied(applied, upstream, tmp_path):
    """What issue 9 found: without serviceAccount.name the chart names the account after the release."""
    s, docs = applied["cloud"]
    values = istio_plan.ingress_gateway_values(s)
    del values["serviceAccount"]
    docs_gw = helm_template(upstream, istio_plan.INGRESS_GATEWAY, "istio-gateway", values, istio_plan.NAMESPACE, tmp_path)
    [deployment] = [d for d in docs_gw if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == istio_plan.INGRESS_GATEWAY
    assert f"cluster.local/ns/istio-system/sa/{istio_plan.INGRESS_GATEWAY}" not in upstream_gateway_principals(upstream)
    assert helm.chart("istio-gateway").version == versions.CHARTS["istio-gateway"][2]
