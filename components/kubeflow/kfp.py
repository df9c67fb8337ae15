"""KfpStandalone: Kubeflow Pipelines 2.16.0 alone (edge), trimmed, with generated credentials.

cluster-scoped resources (CRDs, kubeflow namespace) ─> generated Secrets ─> env/platform-agnostic overlay.
No Istio, Dex or dashboard: the UI is reached with `kubectl port-forward` (exported).
"""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from stacks.settings import Settings

from components.kubeflow import credentials_plan, footprint_guard, kfp_plan, kubeflow_overlay, kubeflow_plan
from components.k3s.k3s_cluster import K3sCluster
from components.kubeflow.kubeflow_credentials import KubeflowCredentials, needed_values

SECRETS = ("mlpipeline-minio-artifact", "mysql-secret")


class KfpStandalone(pulumi.ComponentResource):
    cluster_scoped: k8s.kustomize.v2.Directory
    pipelines: k8s.kustomize.v2.Directory

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        *,
        ssh_private_key: pulumi.Input[str] | None,
        storage_ready: Sequence[pulumi.Resource] = (),
        gpu_restart: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:kubeflow:KfpStandalone", name, {}, opts)
        plan = kfp_plan.plan(settings)
        credentials = KubeflowCredentials(
            f"{name}-credentials", needed_values(SECRETS), None, with_admin=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        guard = footprint_guard.guard(f"{name}-footprint", settings, cluster, ssh_private_key, self, after=gpu_restart)
        # Pulumi awaits each CRD until Established, so the second Directory finds its kinds.
        self.cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=plan.cluster_scoped,
            opts=cluster.k8s_options(self, depends_on=[guard]),
        )
        secrets = [
            credentials.secret(f"{name}-secret-{s}", credentials_plan.SECRETS[s], cluster, self, [self.cluster_scoped])
            for s in SECRETS
        ]
        kubeflow_overlay.write(plan.env_directory, plan.overlay, kubeflow_plan.PROJECT_ROOT)
        self.pipelines = k8s.kustomize.v2.Directory(
            f"{name}-platform-agnostic",
            directory=plan.env_directory,
            opts=cluster.k8s_options(self, depends_on=[self.cluster_scoped, *secrets, *storage_ready]),
        )
        self.outputs = {
            "kubeflowPipelinesEndpoint": "http://localhost:8080/",
            "kubeflowPortForward": kfp_plan.port_forward(8080),
        }
        self.register_outputs({"clusterScoped": plan.cluster_scoped, "overlay": plan.env_directory})
