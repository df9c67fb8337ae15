"""Pure planning for cert-manager: chart values and the ClusterIssuers of a stack.

Issuers:
- `selfsigned` and `kubeflow-k3s-ca` (a CA whose root is issued by `selfsigned`) on every stack: the CA
  signs the gateway certificate on laptop and edge, and is there for in-cluster certificates anywhere.
- `letsencrypt` when `tls.issuer: letsencrypt` (cloud default; validation requires `tls.email` and a
  public `tls.host`): ACME HTTP-01, answered through the Istio ingress gateway, which serves Kubernetes
  Ingresses of class `istio` (istio_plan.INGRESS_CLASS).
- `letsencrypt-staging` when `tls.issuer: letsencrypt-staging` (same rules): the same ACME HTTP-01
  issuer against Let's Encrypt's staging environment, whose certificates are not publicly trusted
  and whose limits suit stacks that are destroyed and re-created often (production allows 5
  certificates for the same names per week).
"""

from __future__ import annotations

from typing import Any

from stacks.settings import ACME_ISSUERS, Settings

NAMESPACE = "cert-manager"
SELFSIGNED_ISSUER = "selfsigned"
CA_ISSUER = "kubeflow-k3s-ca"
CA_SECRET = "kubeflow-k3s-ca"  # in NAMESPACE: a CA ClusterIssuer reads its key from the cluster resource namespace
# Kubeflow's own self-signed ClusterIssuer (common/cert-manager/overlays/kubeflow, which the Kubeflow
# layer does not apply because cert-manager comes from this layer).
KUBEFLOW_ISSUER = "kubeflow-self-signing-issuer"
ACME_ISSUER = "letsencrypt"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
ACME_ACCOUNT_SECRET = "letsencrypt-account-key"
# Let's Encrypt's staging environment: "The ACME URL for our ACME v2 staging environment is
# https://acme-staging-v02.api.letsencrypt.org/directory" (https://letsencrypt.org/docs/staging-environment/);
# its certificates chain to "(STAGING)" roots that no trust store holds. "ACME accounts are scoped to
# each environment" (same page): the staging account gets its own key Secret.
ACME_STAGING_ISSUER = "letsencrypt-staging"
ACME_STAGING_SERVER = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_STAGING_ACCOUNT_SECRET = "letsencrypt-staging-account-key"
# ClusterIssuer name (= the tls.issuer value) -> (ACME directory URL, account key Secret).
ACME_DIRECTORIES = {
    ACME_ISSUER: (ACME_SERVER, ACME_ACCOUNT_SECRET),
    ACME_STAGING_ISSUER: (ACME_STAGING_SERVER, ACME_STAGING_ACCOUNT_SECRET),
}
assert set(ACME_DIRECTORIES) == set(ACME_ISSUERS)
CA_DURATION = "87600h"  # ten years: the CA's root is trusted by hand, so it should rarely change


def namespace_labels() -> dict[str, str]:
    """Kubeflow's cert-manager namespace label (common/cert-manager/overlays/kubeflow): restricted PSS.
    The chart's controller, webhook, cainjector and startupapicheck pods meet it by default, and so do
    the ACME HTTP-01 solver pods cert-manager creates (cert-manager#5259)."""
    return {"pod-security.kubernetes.io/enforce": "restricted"}


def values(settings: Settings) -> dict[str, Any]:
    vals: dict[str, Any] = {
        # The chart installs and upgrades the CRDs; `keep` leaves them (and every Certificate) on uninstall.
        "crds": {"enabled": True, "keep": True},
        # The post-install hook job succeeds only once the webhook admits a dry-run Issuer: the release
        # finishing means Issuers and Certificates can be created (cert-manager#5004 for the race).
        "startupapicheck": {"enabled": True, "timeout": "5m"},
        # Secrets of deleted Certificates go with them instead of lingering.
        "enableCertificateOwnerRef": True,
    }
    if settings.profile == "cloud" and len(settings.nodes) > 1:
        # Several nodes: a webhook outage blocks every Certificate write, so keep two of it.
        vals["webhook"] = {"replicaCount": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
    return vals


def acme_enabled(settings: Settings) -> bool:
    """The gateway certificate comes from Let's Encrypt (production or staging) over ACME HTTP-01."""
    return settings.tls.issuer in ACME_DIRECTORIES and bool(settings.tls.email)


def publicly_trusted(settings: Settings) -> bool:
    """The gateway certificate chains to a root in the system's trust store: Let's Encrypt production
    only (staging's roots are untrusted; the stack's own CA is trusted by hand)."""
    return acme_enabled(settings) and settings.tls.issuer == ACME_ISSUER


def gateway_issuer(settings: Settings) -> str:
    """The ClusterIssuer that signs the ingress gateway's certificate."""
    return settings.tls.issuer if acme_enabled(settings) else CA_ISSUER


def cluster_issuers(settings: Settings, ingress_class: str) -> dict[str, dict[str, Any]]:
    """{name: spec} of the ClusterIssuers, in creation order (the CA needs its root certificate first)."""
    issuers: dict[str, dict[str, Any]] = {
        SELFSIGNED_ISSUER: {"selfSigned": {}},
        CA_ISSUER: {"ca": {"secretName": CA_SECRET}},
        KUBEFLOW_ISSUER: {"selfSigned": {}},
    }
    if acme_enabled(settings):
        server, account_secret = ACME_DIRECTORIES[settings.tls.issuer]
        issuers[settings.tls.issuer] = {
            "acme": {
                "server": server,
                "email": settings.tls.email,
                "privateKeySecretRef": {"name": account_secret},
                # The gateway reaches the solver inside the cluster: its Service needs no node port
                # (cert-manager's default is NodePort, which would open a port on every node).
                "solvers": [{"http01": {"ingress": {"ingressClassName": ingress_class, "serviceType": "ClusterIP"}}}],
            }
        }
    return issuers


def network_policies() -> dict[str, dict[str, Any]]:
    """{name: spec} in cert-manager: Kubeflow's overlay policies (same-namespace traffic, and the API
    server to the webhook's port)."""
    return {
        "default-allow-same-namespace-cert-manager": {
            "podSelector": {},
            "ingress": [{"from": [{"podSelector": {}}]}],
            "policyTypes": ["Ingress"],
        },
        "cert-manager-webhook": {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": ["webhook"]},
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["webhook"]},
                ]
            },
            "ingress": [{"ports": [{"protocol": "TCP", "port": 10250}]}],
            "policyTypes": ["Ingress"],
        },
    }


def ca_certificate_spec(settings: Settings) -> dict[str, Any]:
    """The CA's root: a self-signed certificate whose secret the CA ClusterIssuer signs with."""
    return {
        "isCA": True,
        "commonName": f"kubeflow-k3s {settings.stack_name} CA",
        "secretName": CA_SECRET,
        "duration": CA_DURATION,
        "privateKey": {"algorithm": "ECDSA", "size": 256},
        "issuerRef": {"name": SELFSIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }
