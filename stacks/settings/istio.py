"""Gateway settings: the `gateway` section (how the Istio ingress gateway is exposed).

Read by the Istio layer (components/istio/): the ingress gateway's Service type and node ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import profiles
from .common import Reader

SECTIONS = ("gateway",)

GATEWAY_SERVICE_TYPES = ("LoadBalancer", "NodePort")


@dataclass(frozen=True)
class GatewaySettings:
    service_type: str
    http_node_port: int | None = None
    https_node_port: int | None = None


def parse_gateway(r: Reader, value: Any, prof: profiles.Profile) -> GatewaySettings:
    gd = r.obj(value, "gateway", {"serviceType", "httpNodePort", "httpsNodePort"})
    return GatewaySettings(
        service_type=r.choice(gd, "serviceType", "gateway.serviceType", GATEWAY_SERVICE_TYPES, prof.gateway_service_type),
        http_node_port=r.integer(gd, "httpNodePort", "gateway.httpNodePort", 30080, 30000, 32767),
        https_node_port=r.integer(gd, "httpsNodePort", "gateway.httpsNodePort", 30443, 30000, 32767),
    )


def check_node_ports(r: Reader, gateway: GatewaySettings) -> None:
    """One port cannot serve both listeners."""
    if gateway.service_type == "NodePort" and gateway.http_node_port == gateway.https_node_port:
        r.fail("gateway.httpsNodePort", f"must differ from gateway.httpNodePort (both {gateway.http_node_port})")


def ignored(r: Reader, raw: Mapping[str, Any], gateway: GatewaySettings, kubeflow_mode: str) -> None:
    """`gateway` without a gateway, and node ports on a LoadBalancer, are accepted and ignored: say so."""
    if kubeflow_mode == "pipelines" and raw.get("gateway"):
        r.warn("gateway", "is ignored with kubeflow.mode: pipelines (no Istio gateway, no certificate)")
    gd = raw.get("gateway") or {}
    if isinstance(gd, Mapping) and gateway.service_type != "NodePort":
        for key in ("httpNodePort", "httpsNodePort"):
            if gd.get(key) is not None:
                r.warn(f"gateway.{key}", f"is ignored with gateway.serviceType: {gateway.service_type}")
