"""cert-manager planning: CRDs by the chart, a readiness hook, and the issuers of each profile."""

from __future__ import annotations

import copy

import pytest

from components.cert_manager import cert_manager_plan as plan
from components.istio import istio_plan
from stacks.settings import parse_settings
from tests.harness import stack_raw


def settings(stack: str, **tls):
    raw = copy.deepcopy(stack_raw(stack))
    if tls:
        raw["tls"] = tls
    return parse_settings(raw, stack)


@pytest.mark.parametrize("stack", ["dev", "edge", "cloud"])
def test_chart_installs_crds_and_waits_for_the_webhook(stack):
    values = plan.values(settings(stack))
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["startupapicheck"]["enabled"] is True
    assert "installCRDs" not in values  # deprecated spelling


def test_webhook_is_redundant_only_on_multi_node_cloud():
    assert plan.values(settings("cloud"))["webhook"]["replicaCount"] == 2
    assert "webhook" not in plan.values(settings("dev"))


@pytest.mark.parametrize("stack", ["dev", "edge"])
def test_laptop_and_edge_get_selfsigned_and_ca_and_the_ca_signs_the_gateway(stack):
    s = settings(stack)
    issuers = plan.cluster_issuers(s, istio_plan.INGRESS_CLASS)
    assert list(issuers) == ["selfsigned", "kubeflow-k3s-ca", "kubeflow-self-signing-issuer"]
    assert issuers["kubeflow-k3s-ca"] == {"ca": {"secretName": plan.CA_SECRET}}
    assert plan.gateway_issuer(s) == "kubeflow-k3s-ca"
    root = plan.ca_certificate_spec(s)
    assert root["isCA"] is True and root["secretName"] == plan.CA_SECRET
    assert root["issuerRef"]["name"] == "selfsigned"


def test_cloud_gets_an_acme_issuer_solving_through_the_istio_gateway():
    s = settings("cloud")
    issuers = plan.cluster_issuers(s, istio_plan.INGRESS_CLASS)
    acme = issuers["letsencrypt"]["acme"]
    assert acme["email"] == "ops@example.com"
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "istio", "serviceType": "ClusterIP"}}}]
    assert plan.gateway_issuer(s) == "letsencrypt"
    # Istio serves Ingresses of that class on the ingress gateway.
    mesh = istio_plan.mesh_config()
    assert mesh["ingressClass"] == "istio" and mesh["ingressService"] == istio_plan.INGRESS_GATEWAY


def test_cloud_with_selfsigned_issuer_has_no_acme():
    s = settings("cloud", host="kubeflow.example.com", issuer="selfsigned")
    assert "letsencrypt" not in plan.cluster_issuers(s, "istio")
    assert plan.gateway_issuer(s) == "kubeflow-k3s-ca"
