"""Gpu: NVIDIA GPU support for the stack's GPU nodes (paths and values: gpu_plan.py).

Built before the other platform layers. When the operator's toolkit is used (`gpu.toolkit: operator`)
it restarts K3s on each GPU node once, so `settled` (every GPU node advertises nvidia.com/gpu and is
Ready again) is what every other Kubernetes object of the stack waits for
(platform_layers.toolkit_restart), and no other install is in flight during the restart. With the
host's toolkit, or on Jetson, nothing restarts and nothing waits.
"""

from __future__ import annotations

import pulumi

from stacks.settings import Settings

from components.gpu import gpu_plan as plan
from components.shared import helm
from components.k3s import scripts
from components.k3s.k3s_cluster import K3sCluster

OPERATOR_TIMEOUT_SECONDS = 1200
WAIT_TIMEOUTS = pulumi.CustomTimeouts(create="35m", update="35m")


class Gpu(pulumi.ComponentResource):
    """`settled`: GPUs are schedulable on every GPU node and the toolkit's K3s restart is over.
    `restarts_k3s`: whether this stack's GPU path restarts K3s (the operator's toolkit)."""

    settled: pulumi.Resource
    restarts_k3s: bool

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:platform:Gpu", name, {}, opts)
        charts: list[pulumi.Resource] = []
        self.restarts_k3s = plan.toolkit_restarts_k3s(settings)
        if plan.operator_nodes(settings):
            operator = helm.release(
                f"{name}-operator",
                "gpu-operator",
                release_name="gpu-operator",
                namespace=plan.OPERATOR_NAMESPACE,
                values=plan.operator_values(settings),
                timeout_seconds=OPERATOR_TIMEOUT_SECONDS,
                # A failed first install is not uninstalled: deleting the ClusterPolicy would take
                # K3s's `nvidia` RuntimeClass with it (gpu_plan.runtime_class_params), and the
                # runtime-class command below does not exist yet to prevent that. The next `up`
                # upgrades the failed release.
                atomic=False,
                opts=cluster.k8s_options(self),
            )
            charts.append(operator)
            # Deleted before the release (it depends on it): releases K3s's RuntimeClass from the
            # operator's ownership so the garbage collector keeps it. Off the install's critical path:
            # nothing waits for it (its create retries across the toolkit's K3s restart).
            keep = scripts.render("gpu-runtimeclass.sh", {**plan.runtime_class_params(settings), "ACTION": "keep"})
            cluster.first_shell.command(
                f"{name}-runtimeclass",
                scripts.render("gpu-runtimeclass.sh", {**plan.runtime_class_params(settings), "ACTION": "ensure"}),
                delete=keep,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[operator], deleted_with=cluster.cluster_identity
                ),
            )
        if plan.jetson_nodes(settings):
            charts.append(
                helm.release(
                    f"{name}-device-plugin",
                    "nvidia-device-plugin",
                    release_name="nvidia-device-plugin",
                    namespace=plan.DEVICE_PLUGIN_NAMESPACE,
                    values=plan.device_plugin_values(settings),
                    opts=cluster.k8s_options(self),
                )
            )
        # The operator creates the toolkit and device plugin DaemonSets itself after its release is
        # done, so Helm's wait does not cover them: this command does.
        self.settled = cluster.first_shell.command(
            f"{name}-settled",
            scripts.render("wait-gpu.sh", plan.wait_params(settings)),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=charts, custom_timeouts=WAIT_TIMEOUTS, deleted_with=cluster.cluster_identity
            ),
        )
        self.register_outputs(
            {
                "operatorNodes": plan.operator_nodes(settings),
                "jetsonNodes": plan.jetson_nodes(settings),
                "restartsK3s": self.restarts_k3s,
                "toolkit": settings.gpu.toolkit if plan.operator_nodes(settings) else None,
            }
        )
