"""Contracts with the upstream charts and with Kubeflow's Istio configuration (../shared/upstream).

- Every pinned chart has its upstream folder `<key>-<version>` and, where Chart.yaml carries a real
  version, the same version.
- Every value path the program sets exists in that chart's values.yaml (or its values.schema.json),
  and values validate against the schema where the chart ships one.
- The K3s-specific values are set (CNI paths from Istio's own K3s profile, containerd socket, ...).
- What Kubeflow depends on from Istio is there: mesh config with the oauth2-proxy provider, native
  sidecars, CNI, the gateway labels its Gateways select, the cluster-local gateway, its policies.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from components.istio import istio_plan
from stacks import versions
from tests import harness
from tests.arm64 import kfp_arm64_images

# Maps whose keys are free-form by design, though values.yaml shows only examples.
OPEN_MAPS = {
    "istio-istiod": {
        "meshConfig": "the MeshConfig API (istio.io/docs/reference/config/istio.mesh.v1alpha1)",
    },
    "istio-gateway": {"labels": "labels applied to every resource of the release"},
}


# --------------------------------------------------------------------------------------------------
# Collecting what the program sends to Helm
# --------------------------------------------------------------------------------------------------

# Settings variants beyond the checked-in stacks, so that every optional value is exercised.
VARIANTS = [
    ("cloud", {"gpu": {"timeSlicing": 4, "mig": "mixed", "installDriver": True},
               "storage": {"default": "longhorn", "nfs": {"server": "10.0.0.5", "path": "/exports/k8s"}},
               "gateway": {"serviceType": "LoadBalancer"}}),
    ("edge", {"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64", "gpu": "jetson"}],
              "kubeflow": {"images": kfp_arm64_images()},
              "gpu": {"timeSlicing": 2}, "storage": {"default": "longhorn"}}),
]

CHART_KEYS = {(repo, chart): key for key, (repo, chart, _) in versions.CHARTS.items()}


def releases(run: harness.Run) -> Iterator[tuple[str, dict[str, Any], harness.Registration]]:
    for r in run.by_type("kubernetes:helm.sh/v3:Release"):
        key = CHART_KEYS[(r.inputs["repositoryOpts"]["repo"], r.inputs["chart"])]
        yield key, r.inputs.get("values") or {}, r


@pytest.fixture(scope="module")
def all_releases(runs) -> list[tuple[str, str, dict[str, Any], harness.Registration]]:
    out = [(stack, *rel) for stack, run in runs.items() for rel in releases(run)]
    for stack, overrides in VARIANTS:
        out += [(f"{stack}+variant", *rel) for rel in releases(harness.run_stack(stack, overrides=overrides))]
    return out


def chart_dir(upstream: Path, key: str) -> Path:
    return upstream / "charts" / f"{key}-{versions.CHARTS[key][2]}"


def upstream_values(upstream: Path, key: str) -> dict[str, Any]:
    doc = yaml.safe_load((chart_dir(upstream, key) / "values.yaml").read_text()) or {}
    # Istio charts keep their defaults under this key and merge user values over it.
    return doc.get("_internal_defaults_do_not_set", doc) | {k: v for k, v in doc.items() if k != "_internal_defaults_do_not_set"}


def schema(upstream: Path, key: str) -> dict[str, Any] | None:
    path = chart_dir(upstream, key) / "values.schema.json"
    return json.loads(path.read_text()) if path.exists() else None


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths to every value set; a list or an empty map is a value of its own."""
    if isinstance(values, dict) and values:
        for k, v in values.items():
            yield from leaf_paths(v, prefix + (k,))
    else:
        yield prefix


def path_in_values(defaults: Any, path: tuple[str, ...], open_maps: dict[str, str]) -> bool:
    node = defaults
    for i, part in enumerate(path):
        if ".".join(path[:i]) in open_maps:
            return True
        if isinstance(node, dict) and not node and i > 0:
            return True  # an empty map in values.yaml: free-form keys (env, nodeSelector, data ...)
        if node is None and i > 0:
            return True  # `~`: a documented key whose default is unset
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def path_in_schema(sch: dict[str, Any] | None, path: tuple[str, ...]) -> bool:
    if sch is None:
        return False
    defs = sch.get("$defs", {})

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        return node

    node = resolve(sch)
    for part in path:
        props = node.get("properties", {})
        if part in props:
            node = resolve(props[part])
        elif node.get("additionalProperties") not in (None, False) or node.get("type") == "object" and not props:
            return True
        else:
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(versions.CHARTS))
def test_every_pinned_chart_matches_its_upstream_folder(key, upstream):
    repo, chart, version = versions.CHARTS[key]
    folder = chart_dir(upstream, key)
    assert folder.is_dir(), f"no upstream data for {key} {version}: expected {folder.name}/"
    chart_yaml = next(folder.glob("Chart*.yaml"))
    meta = yaml.safe_load(chart_yaml.read_text())
    assert meta["name"] == chart
    placeholder = meta["version"] in ("1.0.0", "v0.0.0") or "devel" in str(meta["version"])
    if not placeholder:  # Istio, cert-manager and the operator stamp the version only at release time
        assert str(meta["version"]) == version
    assert repo.startswith("https://")


def test_istio_charts_share_one_version_and_it_is_kubeflows():
    istio = {versions.CHARTS[k][2] for k in versions.CHARTS if k.startswith("istio-")}
    assert istio == {"1.29.0"}  # kubeflow/manifests 26.03 README
    assert versions.CHARTS["cert-manager"][2] == "v1.19.4"


def test_every_release_is_pinned_with_a_timeout(all_releases):
    for stack, key, _, r in all_releases:
        assert r.inputs["version"] == versions.CHARTS[key][2], (stack, r.name)
        # Atomic, except the GPU operator: uninstalling a failed first install would delete the
        # ClusterPolicy and with it K3s's `nvidia` RuntimeClass (components/gpu/gpu.py).
        assert r.inputs["timeout"] > 0 and r.inputs.get("atomic") is (key != "gpu-operator"), (stack, r.name)
        assert not r.inputs.get("skipAwait"), (stack, r.name)


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


def test_every_value_path_exists_upstream(all_releases, upstream):
    missing = []
    for stack, key, values, r in all_releases:
        defaults = upstream_values(upstream, key)
        sch = schema(upstream, key)
        for path in leaf_paths(values):
            if not (path_in_values(defaults, path, OPEN_MAPS.get(key, {})) or path_in_schema(sch, path)):
                missing.append(f"{stack} {r.name} ({key}): {'.'.join(path)}")
    assert not missing, "value paths not in the upstream chart:\n" + "\n".join(sorted(set(missing)))


def test_the_path_check_catches_a_typo(upstream):
    # Guard against a checker that accepts everything.
    assert not path_in_values(upstream_values(upstream, "istio-cni"), ("cniBinDirr",), {})
    assert not path_in_values(upstream_values(upstream, "longhorn"), ("persistence", "defaultClas"), {})
    assert not path_in_schema(schema(upstream, "cert-manager"), ("crds", "enable"))
    assert path_in_values(upstream_values(upstream, "istio-istiod"), ("env", "ANY_ENV_VAR"), {})


def test_values_validate_against_the_chart_schemas(all_releases, upstream):
    jsonschema = pytest.importorskip("jsonschema")
    checked = set()
    for stack, key, values, r in all_releases:
        sch = schema(upstream, key)
        if sch is None:
            continue
        errors = sorted(jsonschema.Draft7Validator(sch).iter_errors(values), key=str)
        assert not errors, f"{stack} {r.name}: " + "; ".join(e.message for e in errors[:5])
        checked.add(key)
    assert {"cert-manager", "istio-gateway"} <= checked


def values_of(all_releases, key: str, stack: str | None = None) -> list[dict[str, Any]]:
    return [v for s, k, v, _ in all_releases if k == key and (stack is None or s == stack)]


def test_istio_cni_uses_the_k3s_paths_of_istios_own_k3s_profile(all_releases, upstream):
    profile = yaml.safe_load((upstream / "charts" / "istio-profiles-1.29.0" / "platform-k3s.yaml").read_text())
    assert values_of(all_releases, "istio-cni")
    for values in values_of(all_releases, "istio-cni"):
        assert values["cniBinDir"] == profile["cni"]["cniBinDir"] == "/var/lib/rancher/k3s/data/cni"
        assert values["cniConfDir"] == profile["cni"]["cniConfDir"] == "/var/lib/rancher/k3s/agent/etc/cni/net.d"
        assert values["global"]["tag"] == versions.CHARTS["istio-cni"][2]


def test_gpu_operator_is_set_for_k3s_containerd(all_releases):
    operator = values_of(all_releases, "gpu-operator")
    assert operator, "no GPU operator release in any stack"
    for values in operator:
        if values["toolkit"]["enabled"]:  # the operator's toolkit (gpu.toolkit: operator)
            assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in values["toolkit"]["env"]
        assert values["operator"]["runtimeClass"] == "nvidia"
    assert {v["driver"]["enabled"] for v in operator} == {False, True}  # host driver, or asked to install
    assert {v["toolkit"]["enabled"] for v in operator} == {False, True}  # host toolkit, or the operator's


def test_jetson_device_plugin_uses_the_nvidia_runtime_class(all_releases):
    plugin = values_of(all_releases, "nvidia-device-plugin")
    assert plugin and all(v["runtimeClassName"] == "nvidia" for v in plugin)


# --------------------------------------------------------------------------------------------------
# What Kubeflow 26.03 depends on from Istio
# --------------------------------------------------------------------------------------------------

KF = Path("kubeflow-manifests-26.03/common")


def kf_docs(upstream: Path, rel: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((upstream / KF / rel).read_text()) if d]


def test_mesh_config_contains_kubeflows_oauth2_proxy_mesh_config(upstream):
    cm = kf_docs(upstream, "oauth2-proxy/components/istio-external-auth-patches/patches/cm.enable-oauth2-proxy.yaml")[0]
    kubeflow_mesh = yaml.safe_load(cm["data"]["mesh"])
    ours = istio_plan.mesh_config()
    for key, value in kubeflow_mesh.items():
        assert ours[key] == value, key
    assert ours["extensionProviders"][0]["name"] == "oauth2-proxy"


def test_istiod_has_kubeflows_env_and_cni(upstream):
    env = istio_plan.istiod_values(harness_settings("cloud"))["env"]
    jwt = kf_docs(upstream, "oauth2-proxy/components/istio-external-auth-patches/patches/deployment.jwt-refresh-interval.yaml")[0]
    debug = kf_docs(upstream, "istio/istio-install/base/patches/disable-debugging.yaml")[0]
    for patch in (jwt, debug):
        for e in patch["spec"]["template"]["spec"]["containers"][0]["env"]:
            assert env[e["name"]] == e["value"]
    install = (upstream / KF / "istio/istio-install/base/install.yaml").read_text()
    assert "ENABLE_NATIVE_SIDECARS" in install and env["ENABLE_NATIVE_SIDECARS"] == "true"
    injector = kf_docs(upstream, "istio/istio-install/base/patches/istio-sidecar-injector-patch.yaml")[0]
    kf_values = json.loads(injector["data"]["values"])
    ours = istio_plan.istiod_values(harness_settings("cloud"))
    assert kf_values["pilot"]["cni"]["enabled"] is True and ours["cni"]["enabled"] is True
    assert ours["global"]["proxy"]["resources"] == kf_values["global"]["proxy"]["resources"]
    assert ours["gateways"]["seccompProfile"] == kf_values["gateways"]["seccompProfile"]


def test_kubeflow_gateways_select_our_gateway_pods(upstream):
    kf_gateway = kf_docs(upstream, "istio/kubeflow-istio-resources/base/kf-istio-resources.yaml")
    selector = next(d for d in kf_gateway if d["kind"] == "Gateway")["spec"]["selector"]
    assert selector.items() <= istio_plan.INGRESS_LABELS.items()
    local = kf_docs(upstream, "istio/cluster-local-gateway/base/gateway.yaml")[0]
    assert local["spec"]["selector"].items() <= istio_plan.LOCAL_LABELS.items()
    assert istio_plan.gateways()[istio_plan.LOCAL_GATEWAY] == local["spec"]
    # The gateway chart derives `istio: ingressgateway` from this release name (trims "istio-").
    assert istio_plan.INGRESS_GATEWAY == "istio-ingressgateway" and istio_plan.NAMESPACE == "istio-system"


def test_gateway_services_keep_kubeflows_port_layout(upstream):
    install = kf_docs(upstream, "istio/istio-install/base/install.yaml")
    svc = next(d for d in install if d["kind"] == "Service" and d["metadata"]["name"] == "istio-ingressgateway")
    kf_ports = {(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    ours = istio_plan.ingress_gateway_values(harness_settings("dev"))["service"]["ports"]
    assert {(p["name"], p["port"], p["targetPort"]) for p in ours} == kf_ports
    local = next(d for d in kf_docs(upstream, "istio/cluster-local-gateway/base/cluster-local-gateway.yaml")
                 if d["kind"] == "Service")
    ours = istio_plan.local_gateway_values(harness_settings("dev"))["service"]["ports"]
    assert {(p["name"], p["port"], p["targetPort"]) for p in ours} == {
        (p["name"], p["port"], p["targetPort"]) for p in local["spec"]["ports"]}


def test_istio_system_policies_are_kubeflows(upstream):
    ns_docs = [d for f in sorted((upstream / KF / "istio/istio-namespace/base").glob("*.yaml"))
               if f.name != "kustomization.yaml" for d in kf_docs(upstream, f"istio/istio-namespace/base/{f.name}")]
    kf_netpols = {d["metadata"]["name"]: d["spec"] for d in ns_docs if d["kind"] == "NetworkPolicy"}
    ours = istio_plan.network_policies()
    for name, spec in kf_netpols.items():
        assert name in ours, name
        assert json.dumps(ours[name], sort_keys=True) == json.dumps(_normalise(spec), sort_keys=True), name
    ns = next(d for d in ns_docs if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == istio_plan.namespace_labels()[
        "pod-security.kubernetes.io/enforce"]
    # Deliberate difference: injection stays possible, the gateway charts' pods get their proxy by injection.
    assert "istio-injection" not in istio_plan.namespace_labels()

    deny = kf_docs(upstream, "istio/istio-install/base/deny_all_authorizationpolicy.yaml")[0]
    allow = kf_docs(upstream, "istio/istio-install/base/gateway_authorizationpolicy.yaml")[0]
    policies = istio_plan.authorization_policies()
    assert policies["global-deny-all"] == deny["spec"] and policies["istio-ingressgateway"] == allow["spec"]
    sidecar = next(d for d in kf_docs(upstream, "istio/istio-install/base/sidecar-prune-egress.yaml")
                   if d["metadata"]["namespace"] == "istio-system")
    assert istio_plan.default_sidecar() == sidecar["spec"]


def _normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """Kubeflow writes one podSelector as matchExpressions `app In [istiod]`; ours as matchLabels."""
    spec = copy.deepcopy(spec)
    sel = spec.get("podSelector", {})
    exprs = sel.get("matchExpressions", [])
    if len(exprs) == 1 and exprs[0]["operator"] == "In" and len(exprs[0]["values"]) == 1:
        spec["podSelector"] = {"matchLabels": {exprs[0]["key"]: exprs[0]["values"][0]}}
    return spec


def harness_settings(stack: str):
    from stacks.settings import parse_settings
    from tests.harness import stack_raw

    return parse_settings(stack_raw(stack), stack)


def test_cert_manager_has_kubeflows_issuer_and_policies(upstream):
    from components.cert_manager import cert_manager_plan

    overlay = "cert-manager/overlays/kubeflow"
    docs = [d for f in sorted((upstream / KF / overlay).glob("*.yaml")) if f.name != "kustomization.yaml"
            for d in kf_docs(upstream, f"{overlay}/{f.name}")]
    issuer = next(d for d in docs if d["kind"] == "ClusterIssuer")
    ours = cert_manager_plan.cluster_issuers(harness_settings("dev"), "istio")
    assert ours[issuer["metadata"]["name"]] == issuer["spec"]
    kf_policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert cert_manager_plan.network_policies() == kf_policies


def test_acme_solver_fields_exist_in_cert_managers_crd(upstream):
    """The ClusterIssuer fields the program sets exist in cert-manager 1.19's CRD (Kubeflow's rendered copy)."""
    import yaml

    from components.cert_manager import cert_manager_plan
    from stacks.settings import parse_settings
    from tests.harness import stack_raw

    rendered = upstream / "rendered" / "kubeflow-26.03" / "01-common_cert-manager_overlays_kubeflow.yaml"
    crd = next(d for d in yaml.safe_load_all(rendered.read_text())
               if d and d.get("kind") == "CustomResourceDefinition" and d["metadata"]["name"] == "clusterissuers.cert-manager.io")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def check(value, node, path):
        props = node.get("properties")
        if isinstance(value, dict) and props is not None:
            for key, sub in value.items():
                assert key in props, f"{path}.{key} is not a ClusterIssuer field"
                check(sub, props[key], f"{path}.{key}")
        elif isinstance(value, list) and "items" in node:
            for item in value:
                check(item, node["items"], f"{path}[]")

    issuers = cert_manager_plan.cluster_issuers(parse_settings(stack_raw("cloud"), "cloud"), "istio")
    assert "letsencrypt" in issuers or any("acme" in spec for spec in issuers.values())
    for name, spec in issuers.items():
        check(spec, schema, f"{name}.spec")
    acme = next(spec["acme"] for spec in issuers.values() if "acme" in spec)
    assert acme["solvers"][0]["http01"]["ingress"]["serviceType"] in ("ClusterIP", "NodePort")
