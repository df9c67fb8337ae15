"""The footprint guard: a read-only command on the first server that stops `pulumi up` before any
Kubeflow object exists when the nodes' allocatable CPU or memory cannot hold the selected components.
"""

from __future__ import annotations

from typing import Sequence

import pulumi

from stacks.settings import Settings

from components.kubeflow import footprint
from components.k3s import k3s_plan, scripts
from components.k3s.connection import node_shell
from components.k3s.k3s_cluster import K3sCluster


def params(settings: Settings) -> dict[str, object]:
    fp = footprint.footprint(settings)
    return {
        "NODE_NAME": settings.first_server.name,
        "NEED_CPU_M": fp.cpu_m,
        "NEED_MEMORY_MI": fp.memory_mi,
        "ADVICE": fp.advice(),
        "K3S_BIN": f"{k3s_plan.BIN_DIR}/k3s",
    }


def script(settings: Settings) -> str:
    return scripts.render("kubeflow-capacity.sh", params(settings))


def guard(
    name: str,
    settings: Settings,
    cluster: K3sCluster,
    ssh_private_key: pulumi.Input[str] | None,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource] = (),
) -> pulumi.CustomResource:
    """`after`: what must be over first (the GPU toolkit's K3s restart, platform_layers.toolkit_restart).
    Every Kubernetes object of the Kubeflow layer waits for the guard, so for `after` too."""
    shell = node_shell(settings, settings.first_server, ssh_private_key)
    # Re-runs whenever the figures change (they are part of the command text).
    return shell.command(
        name,
        script(settings),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[cluster.ready, *after]),
    )
