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


def test_letsencrypt_staging_is_the_same_acme_issuer_against_the_staging_directory():
    """tls.issuer letsencrypt-staging: Let's Encrypt's staging directory (letsencrypt.org/docs/staging-environment),
    its own ClusterIssuer and account key (ACME accounts are per environment); everything else as production."""
    s = settings("cloud", host="kubeflow.example.com", issuer="letsencrypt-staging", email="ops@example.com")
    issuers = plan.cluster_issuers(s, istio_plan.INGRESS_CLASS)
    assert list(issuers) == ["selfsigned", "kubeflow-k3s-ca", "kubeflow-self-signing-issuer", "letsencrypt-staging"]
    acme = issuers["letsencrypt-staging"]["acme"]
    assert acme["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert acme["privateKeySecretRef"] == {"name": "letsencrypt-staging-account-key"}
    production = plan.cluster_issuers(settings("cloud"), istio_plan.INGRESS_CLASS)["letsencrypt"]["acme"]
    assert {k: v for k, v in acme.items() if k not in ("server", "privateKeySecretRef")} == \
        {k: v for k, v in production.items() if k not in ("server", "privateKeySecretRef")}
    assert production["privateKeySecretRef"] != acme["privateKeySecretRef"]
    assert plan.gateway_issuer(s) == "letsencrypt-staging"
    # ACME (the HTTP-01 exemption, the solver's ingress class) but no publicly trusted certificate.
    assert plan.acme_enabled(s) and not plan.publicly_trusted(s)
    assert plan.publicly_trusted(settings("cloud")) and not plan.publicly_trusted(settings("dev"))


def test_a_staging_stack_wires_the_staging_issuer_and_its_smoke_step_trusts_the_issued_chain():
    """The whole cloud program with tls.issuer letsencrypt-staging: one ACME ClusterIssuer (staging), the
    gateway certificate from it after the ingress gateway (HTTP-01), and a smoke step that still waits
    for the certificate but verifies it with the Secret's chain, not the system's CAs."""
    from tests import harness

    tls = {"host": "kubeflow.example.com", "issuer": "letsencrypt-staging", "email": "ops@example.com"}
    run = harness.run_stack("cloud", overrides={"tls": tls})
    issuers = {r.inputs["metadata"]["name"]: r for r in run.registrations if r.inputs.get("kind") == "ClusterIssuer"}
    assert set(issuers) == {"selfsigned", "kubeflow-k3s-ca", "kubeflow-self-signing-issuer", "letsencrypt-staging"}
    assert issuers["letsencrypt-staging"].inputs["spec"]["acme"]["server"] == plan.ACME_STAGING_SERVER
    certificate = run.get("istio-gateway-certificate")
    assert certificate.inputs["spec"]["issuerRef"]["name"] == "letsencrypt-staging"
    assert run.depends_on("istio-gateway-certificate", "cert-manager-issuer-letsencrypt-staging")
    assert run.depends_on("istio-gateway-certificate", "istio-ingressgateway")
    script = harness.script(run.get("smoke-check").inputs["create"])
    assert "PUBLIC_CA=false\n" in script and "CA_KEY=tls.crt\n" in script
    assert "Let's Encrypt's staging environment" in run.exports["kubeflowAccess"]
