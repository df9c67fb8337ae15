"""Istio: base, CNI, istiod and two gateways from the Istio Helm charts, configured as Kubeflow's
`common/istio` (plan and reasons: istio_plan.py), plus the gateway's HTTPS certificate.

Order: namespace -> base (CRDs, validation webhook) and CNI (node plugin) -> istiod -> gateways (their
proxy image comes from istiod's injector) -> Istio objects. The charts do not wait for cert-manager;
only the gateway Certificate does.
"""

from __future__ import annotations

from typing import Any, Sequence

import pulumi
import pulumi_kubernetes as k8s

from stacks.settings import Settings

from components.cert_manager import cert_manager_plan
from components.shared import helm
from components.istio import istio_plan as plan
from components.cert_manager.cert_manager import CertManager
from components.k3s.k3s_cluster import K3sCluster

TIMEOUT_SECONDS = 600


class Istio(pulumi.ComponentResource):
    """`ready`: istiod serves (CRDs installed, sidecar injector and validation webhook answering).
    `gateway`: the ingress gateway release. `certificate`: the Certificate whose secret
    `tls_secret_name` (in istio-system) a Gateway's HTTPS server names as credentialName."""

    ready: pulumi.Resource
    gateway: pulumi.Resource
    certificate: pulumi.Resource
    tls_secret_name: str = plan.TLS_SECRET
    namespace: str = plan.NAMESPACE

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        cert_manager: CertManager,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:platform:Istio", name, {}, opts)

        def options(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return cluster.k8s_options(self, depends_on=[*after, *deps])

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": plan.NAMESPACE, "labels": plan.namespace_labels()},
            opts=options(),
        )

        def release(suffix: str, key: str, release_name: str, values: dict[str, Any], *deps: pulumi.Resource,
                    namespace_name: str = plan.NAMESPACE) -> k8s.helm.v3.Release:
            return helm.release(
                f"{name}-{suffix}",
                key,
                release_name=release_name,
                namespace=namespace_name,
                values=values,
                create_namespace=False,
                timeout_seconds=TIMEOUT_SECONDS,
                opts=options(*deps),
            )

        base = release("base", "istio-base", "istio-base", plan.base_values(settings), namespace)
        cni = release("cni", "istio-cni", "istio-cni", plan.cni_values(settings), namespace_name=plan.CNI_NAMESPACE)
        # istiod with cni.enabled expects the node plugin: injected pods have no init container to set
        # up their redirection, so the CNI DaemonSet must be running first.
        istiod = release("istiod", "istio-istiod", "istiod", plan.istiod_values(settings), base, cni)
        self.gateway = release("ingressgateway", "istio-gateway", plan.INGRESS_GATEWAY,
                               plan.ingress_gateway_values(settings), istiod)
        local_gateway = release("local-gateway", "istio-gateway", plan.LOCAL_GATEWAY,
                                plan.local_gateway_values(settings), istiod)
        self.ready = istiod

        # Istio objects are admitted by istiod's validation webhook: after istiod.
        def istio_object(kind: str, api: str, obj_name: str, spec: dict, *deps: pulumi.Resource) -> pulumi.Resource:
            return k8s.apiextensions.CustomResource(
                f"{name}-{kind.lower()}-{obj_name}",
                api_version=api,
                kind=kind,
                metadata={"name": obj_name, "namespace": plan.NAMESPACE},
                spec=spec,
                opts=options(istiod, *deps),
            )

        for policy, spec in plan.network_policies().items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{policy}",
                metadata={"name": policy, "namespace": plan.NAMESPACE},
                spec=spec,
                opts=options(namespace),
            )
        for gw, spec in plan.gateways().items():
            istio_object("Gateway", "networking.istio.io/v1", gw, spec)
        for policy, spec in plan.authorization_policies().items():
            # The gateways' ALLOW policies exist before the mesh-wide deny takes effect on anything.
            istio_object("AuthorizationPolicy", "security.istio.io/v1", policy, spec,
                         *([self.gateway, local_gateway] if policy == "global-deny-all" else []))
        istio_object("Sidecar", "networking.istio.io/v1", "default", plan.default_sidecar())

        certificate_deps: list[pulumi.Resource] = [namespace, *cert_manager.issuers]
        if cert_manager_plan.acme_enabled(settings):
            # HTTP-01 is answered through the ingress gateway, via an Ingress of this class.
            ingress_class = k8s.networking.v1.IngressClass(
                f"{name}-ingress-class",
                metadata={"name": plan.INGRESS_CLASS},
                spec={"controller": "istio.io/ingress-controller"},
                opts=options(istiod),
            )
            certificate_deps += [self.gateway, ingress_class]
        self.certificate = k8s.apiextensions.CustomResource(
            f"{name}-gateway-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": plan.TLS_SECRET, "namespace": plan.NAMESPACE},
            spec=plan.gateway_certificate(settings, cert_manager.gateway_issuer),
            opts=options(*certificate_deps),
        )
        self.register_outputs(
            {
                "version": plan.version(),
                "gatewayServiceType": settings.gateway.service_type,
                "tlsSecret": plan.TLS_SECRET,
                "tlsHost": settings.tls.host,
            }
        )
