"""Build the whole platform of a stack from its settings: the one place that wires the layers."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.config import Secrets
from stacks.settings import Settings

from . import k3s_plan
from .k3s_cluster import K3sCluster


@dataclass
class Platform:
    cluster: K3sCluster
    outputs: dict[str, object]


def build(settings: Settings, secrets: Secrets) -> Platform:
    for warning in settings.warnings():
        pulumi.log.warn(warning)
    cluster = K3sCluster("k3s", settings, secrets.ssh_private_key, secrets.k3s_token)
    outputs: dict[str, object] = {
        "kubeconfig": cluster.kubeconfig,
        "apiEndpoint": k3s_plan.api_url(settings),
        "k3sVersion": settings.k3s.version,
        "profile": settings.profile,
        "nodes": {n.name: {"role": n.role, "host": n.host or "local", "gpu": n.gpu} for n in settings.nodes},
    }
    return Platform(cluster=cluster, outputs=outputs)
