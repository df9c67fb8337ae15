"""Istio planning: K3s CNI paths, Kubeflow's mesh settings, gateway exposure per profile, valid objects."""

from __future__ import annotations

import copy

import pytest

from components.istio import istio_plan as plan
from stacks import versions
from stacks.settings import parse_settings
from tests.harness import stack_raw


def settings(stack: str, **gateway):
    raw = copy.deepcopy(stack_raw(stack))
    if gateway:
        raw["gateway"] = gateway
    return parse_settings(raw, stack)


def test_cni_runs_chained_into_k3s_flannel_paths():
    values = plan.cni_values(settings("dev"))
    assert values["cniBinDir"] == "/var/lib/rancher/k3s/data/cni"
    assert values["cniConfDir"] == "/var/lib/rancher/k3s/agent/etc/cni/net.d"
    assert values["chained"] is True
    # Kubeflow's CNI DaemonSet lives in kube-system: istio-system enforces the restricted PSS.
    assert plan.CNI_NAMESPACE == "kube-system"


def test_istiod_uses_cni_native_sidecars_and_the_oauth2_proxy_provider():
    values = plan.istiod_values(settings("cloud"))
    assert values["cni"]["enabled"] is True
    assert values["env"]["ENABLE_NATIVE_SIDECARS"] == "true"
    providers = {p["name"]: p for p in values["meshConfig"]["extensionProviders"]}
    assert providers["oauth2-proxy"]["envoyExtAuthzHttp"]["service"] == "oauth2-proxy.oauth2-proxy.svc.cluster.local"


@pytest.mark.parametrize("key", ["istio-cni", "istio-istiod"])
def test_images_are_pinned_to_each_charts_own_version(key):
    values = plan.cni_values(settings("dev")) if key == "istio-cni" else plan.istiod_values(settings("dev"))
    assert values["global"]["tag"] == versions.CHARTS[key][2]
    assert values["global"]["hub"] == "gcr.io/istio-release"


def test_istiod_is_trimmed_on_small_profiles_only():
    assert plan.istiod_values(settings("dev"))["resources"]["requests"]["memory"] == "256Mi"
    assert "resources" not in plan.istiod_values(settings("cloud"))


@pytest.mark.parametrize("stack,service_type", [("dev", "LoadBalancer"), ("edge", "LoadBalancer"), ("cloud", "NodePort")])
def test_ingress_gateway_exposure_per_profile(stack, service_type):
    values = plan.ingress_gateway_values(settings(stack))
    assert values["service"]["type"] == service_type
    node_ports = [p.get("nodePort") for p in values["service"]["ports"] if p["name"] != "status-port"]
    assert (node_ports == [30080, 30443]) == (service_type == "NodePort")
    assert values["labels"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}


def test_node_ports_and_service_type_follow_the_settings():
    values = plan.ingress_gateway_values(settings("cloud", serviceType="NodePort", httpNodePort=31080, httpsNodePort=31443))
    assert [p.get("nodePort") for p in values["service"]["ports"]] == [None, 31080, 31443]
    values = plan.ingress_gateway_values(settings("cloud", serviceType="LoadBalancer"))
    assert values["service"]["type"] == "LoadBalancer"
    assert all("nodePort" not in p for p in values["service"]["ports"])


def test_local_gateway_stays_inside_the_cluster():
    values = plan.local_gateway_values(settings("dev"))
    assert values["service"]["type"] == "ClusterIP"
    assert plan.gateways() == {plan.LOCAL_GATEWAY: plan.gateways()[plan.LOCAL_GATEWAY]}


def test_gateway_pods_meet_the_restricted_pod_security_standard():
    assert plan.namespace_labels()["pod-security.kubernetes.io/enforce"] == "restricted"
    for values in (plan.ingress_gateway_values(settings("dev")), plan.local_gateway_values(settings("dev"))):
        assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert values["securityContext"]["runAsNonRoot"] is True
        # No low ports: the restricted standard forbids the chart's unprivileged-port sysctl workaround.
        assert all(p["targetPort"] >= 1024 for p in values["service"]["ports"])


def test_outside_traffic_reaches_the_ingress_gateway_ports():
    policy = plan.network_policies()["allow-outside-to-ingressgateway"]
    assert policy["podSelector"]["matchLabels"] == plan.INGRESS_LABELS
    ports = {p["port"] for p in policy["ingress"][0]["ports"]}
    targets = {p["targetPort"] for p in plan.ingress_gateway_values(settings("dev"))["service"]["ports"]}
    assert ports == targets and "from" not in policy["ingress"][0]


def test_gateway_certificate_names_the_host_and_the_secret_kubeflow_references():
    s = settings("cloud")
    spec = plan.gateway_certificate(s, "letsencrypt")
    assert spec["dnsNames"] == ["kubeflow.example.com"]
    assert spec["secretName"] == "kubeflow-gateway-tls"
    assert spec["issuerRef"] == {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_kubernetes_objects_are_valid_for_the_pinned_kubernetes():
    kv = pytest.importorskip("kubernetes_validate")
    version = versions.KUBERNETES_MINOR + ".0"
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.NAMESPACE, "labels": plan.namespace_labels()}},
               {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": plan.INGRESS_CLASS},
                "spec": {"controller": "istio.io/ingress-controller"}}]
    objects += [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": n, "namespace": plan.NAMESPACE}, "spec": spec}
                for n, spec in plan.network_policies().items()]
    for obj in objects:
        kv.validate(obj, version, strict=True)
    with pytest.raises(kv.ValidationError):  # the validator does reject a broken object
        kv.validate({**objects[-1], "spec": {"podSelector": {}, "ingres": []}}, version, strict=True)
