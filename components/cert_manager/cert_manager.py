"""CertManager: the jetstack chart and the stack's ClusterIssuers (plan: cert_manager_plan.py)."""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from stacks.settings import Settings

from components.cert_manager import cert_manager_plan as plan
from components.shared import helm
from components.istio import istio_plan
from components.k3s.k3s_cluster import K3sCluster

TIMEOUT_SECONDS = 600


class CertManager(pulumi.ComponentResource):
    """cert-manager with its webhook serving, and the ClusterIssuers.

    `ready`: the Helm release; it completes only after the startupapicheck hook saw the webhook admit
    an Issuer, so anything that creates a Certificate or Issuer waits for it (or for `issuers`).
    """

    ready: pulumi.Resource
    issuers: list[pulumi.Resource]
    gateway_issuer: str

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:platform:CertManager", name, {}, opts)
        # Created here, not by Helm, to carry Kubeflow's Pod Security label (restricted) before any
        # pod starts; the chart's pods all meet the restricted standard.
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": plan.NAMESPACE, "labels": plan.namespace_labels()},
            opts=cluster.k8s_options(self, depends_on=after),
        )
        self.ready = helm.release(
            f"{name}-chart",
            "cert-manager",
            release_name="cert-manager",
            namespace=plan.NAMESPACE,
            values=plan.values(settings),
            create_namespace=False,
            timeout_seconds=TIMEOUT_SECONDS,
            wait_for_jobs=True,
            opts=cluster.k8s_options(self, depends_on=[*after, namespace]),
        )
        self.issuers = []
        specs = plan.cluster_issuers(settings, istio_plan.INGRESS_CLASS)
        selfsigned = self._issuer(name, plan.SELFSIGNED_ISSUER, specs[plan.SELFSIGNED_ISSUER], cluster, [self.ready])
        ca_root = k8s.apiextensions.CustomResource(
            f"{name}-ca-root",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": plan.CA_SECRET, "namespace": plan.NAMESPACE},
            spec=plan.ca_certificate_spec(settings),
            opts=cluster.k8s_options(self, depends_on=[selfsigned]),
        )
        self._issuer(name, plan.CA_ISSUER, specs[plan.CA_ISSUER], cluster, [ca_root])
        self._issuer(name, plan.KUBEFLOW_ISSUER, specs[plan.KUBEFLOW_ISSUER], cluster, [self.ready])
        for acme in plan.ACME_DIRECTORIES:
            if acme in specs:
                self._issuer(name, acme, specs[acme], cluster, [self.ready])
        for policy, spec in plan.network_policies().items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{policy}",
                metadata={"name": policy, "namespace": plan.NAMESPACE},
                spec=spec,
                opts=cluster.k8s_options(self, depends_on=[self.ready]),
            )
        self.gateway_issuer = plan.gateway_issuer(settings)
        self.register_outputs(
            {"release": "cert-manager", "issuers": list(specs), "gatewayIssuer": self.gateway_issuer}
        )

    def _issuer(self, name: str, issuer: str, spec: dict, cluster: K3sCluster,
                depends_on: list[pulumi.Resource]) -> pulumi.Resource:
        resource = k8s.apiextensions.CustomResource(
            f"{name}-issuer-{issuer}",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": issuer},
            spec=spec,
            opts=cluster.k8s_options(self, depends_on=depends_on),
        )
        self.issuers.append(resource)
        return resource
