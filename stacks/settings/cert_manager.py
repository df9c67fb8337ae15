"""Certificate settings: the `tls` section (the gateway's host name, the issuer, the ACME contact).

Read by the cert-manager layer (components/cert_manager/): the ClusterIssuer and the gateway's
Certificate. Kubeflow Pipelines alone (`kubeflow.mode: pipelines`) has no gateway and no certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import profiles
from .common import EMAIL_RE, Reader, is_ip

SECTIONS = ("tls",)

ISSUERS = ("selfsigned", "letsencrypt", "letsencrypt-staging")
# Issuers that get their certificate from Let's Encrypt over ACME HTTP-01: an account contact and a
# public DNS name. `letsencrypt-staging` is Let's Encrypt's staging environment (untrusted certificates,
# far higher limits): for stacks that are destroyed and re-created often.
ACME_ISSUERS = ("letsencrypt", "letsencrypt-staging")


@dataclass(frozen=True)
class TlsSettings:
    host: str
    issuer: str
    email: str | None = None


def parse_tls(r: Reader, value: Any, prof: profiles.Profile, api_endpoint: str | None) -> TlsSettings:
    """`api_endpoint`: the K3s API's address; a host name there gives the default `kubeflow.<name>`."""
    td = r.obj(value, "tls", {"host", "issuer", "email"})
    tls = TlsSettings(
        host=r.host(td, "host", "tls.host", f"kubeflow.{api_endpoint}" if api_endpoint and not is_ip(api_endpoint) else "kubeflow.localhost"),
        issuer=r.choice(td, "issuer", "tls.issuer", ISSUERS, prof.issuer),
        email=r.string(td, "email", "tls.email", None),
    )
    if tls.email and not EMAIL_RE.match(tls.email):
        r.fail("tls.email", f"{tls.email!r} is not an email address")
    if tls.issuer in ACME_ISSUERS and not tls.email:
        r.fail("tls.email", f"is required with tls.issuer: {tls.issuer} (ACME account contact)")
    if tls.issuer in ACME_ISSUERS and tls.host and (is_ip(tls.host) or tls.host.endswith(".localhost")):
        r.fail("tls.host", f"{tls.issuer} needs a public DNS name, not an IP address or *.localhost")
    return tls


def ignored(r: Reader, raw: Mapping[str, Any], tls: TlsSettings, kubeflow_mode: str) -> None:
    """`tls` without a gateway, and an ACME contact without ACME, are accepted and ignored: say so."""
    if kubeflow_mode == "pipelines" and raw.get("tls"):
        r.warn("tls", "is ignored with kubeflow.mode: pipelines (no Istio gateway, no certificate)")
    if tls.issuer not in ACME_ISSUERS and isinstance(raw.get("tls"), Mapping) and raw["tls"].get("email"):
        r.warn("tls.email", f"is ignored with tls.issuer: {tls.issuer} (it is the ACME account contact)")
