"""Wire the platform layers between K3s and Kubeflow: storage, cert-manager, Istio, NVIDIA GPUs.

Who waits for what (each edge is something the later step cannot work without):
- every layer: the cluster's nodes Ready (K3sCluster.k8s_options).
- GPU operator path: storage, cert-manager and Istio also wait for `gpu.settled`, because the
  operator's toolkit restarts K3s on the GPU node and nothing else should be installing then.
  The Jetson path restarts nothing, so nothing waits for it.
- Istio's charts: nothing else. Its gateway Certificate: cert-manager's issuers (and, with ACME, the
  ingress gateway that answers the challenge).
- Storage and GPU never wait for Istio or cert-manager.
- cert-manager and Istio exist only where something uses them: not with `kubeflow.mode: pipelines`
  (standalone KFP on a small device needs neither, and together they request over a GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.settings import ConfigError, Settings

from . import storage_plan
from .cert_manager import CertManager
from .gpu import Gpu
from .istio import Istio
from .k3s_cluster import K3sCluster
from .storage import Storage


@dataclass
class Layers:
    storage: Storage
    cert_manager: CertManager | None
    istio: Istio | None
    gpu: Gpu | None


def validate(settings: Settings) -> None:
    """Settings checks that need the node list and the layers' rules; raises before any resource exists."""
    problems = storage_plan.problems(settings)
    if problems:
        raise ConfigError(problems)


def needs_mesh(settings: Settings) -> bool:
    """cert-manager and Istio: for full Kubeflow, and for a bare platform (`mode: none`) to build on."""
    return settings.kubeflow.mode != "pipelines"


def build_layers(settings: Settings, cluster: K3sCluster) -> Layers:
    gpu = Gpu("gpu", settings, cluster) if settings.gpu_nodes else None
    after: list[pulumi.Resource] = [gpu.settled] if gpu and gpu.restarts_k3s else []
    storage = Storage("storage", settings, cluster, after=after)
    if not needs_mesh(settings):
        return Layers(storage=storage, cert_manager=None, istio=None, gpu=gpu)
    cert_manager = CertManager("cert-manager", settings, cluster, after=after)
    istio = Istio("istio", settings, cluster, cert_manager, after=after)
    return Layers(storage=storage, cert_manager=cert_manager, istio=istio, gpu=gpu)
