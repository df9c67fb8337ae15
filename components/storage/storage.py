"""Storage: the stack's StorageClasses (plan and the one-default rule: storage_plan.py).

local-path is K3s's packaged provisioner, configured in the servers' config.yaml (host path, and
disabled when it is not the default), so it has no resource here. Longhorn and the NFS provisioner
are Helm releases.
"""

from __future__ import annotations

from typing import Sequence

import pulumi

from stacks.settings import Settings

from components.shared import helm
from components.storage import storage_plan as plan
from components.k3s.k3s_cluster import K3sCluster

LONGHORN_TIMEOUT_SECONDS = 1200  # engine and instance-manager images on every node


class Storage(pulumi.ComponentResource):
    """`ready`: the default StorageClass exists (claims without a class bind to it).
    `default_class`: its name."""

    ready: pulumi.Resource
    default_class: str
    classes: dict[str, bool]

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:platform:Storage", name, {}, opts)
        self.default_class = plan.default_class(settings)
        self.classes = plan.storage_classes(settings)
        # local-path comes with K3s: it is there once the nodes are Ready.
        releases: dict[str, pulumi.Resource] = {}
        if plan.longhorn_enabled(settings):
            releases["longhorn"] = helm.release(
                f"{name}-longhorn",
                "longhorn",
                release_name="longhorn",
                namespace=plan.NAMESPACE_LONGHORN,
                values=plan.longhorn_values(settings),
                timeout_seconds=LONGHORN_TIMEOUT_SECONDS,
                opts=cluster.k8s_options(self, depends_on=after),
            )
        if plan.nfs_enabled(settings):
            releases["nfs"] = helm.release(
                f"{name}-nfs",
                "nfs-subdir-external-provisioner",
                release_name="nfs-subdir-external-provisioner",
                namespace=plan.NAMESPACE_NFS,
                values=plan.nfs_values(settings),
                opts=cluster.k8s_options(self, depends_on=after),
            )
        self.ready = releases.get(settings.storage.default, cluster.ready)
        self.register_outputs({"defaultClass": self.default_class, "classes": self.classes})
