"""Wire the platform layers between K3s and Kubeflow: storage, cert-manager, Istio, NVIDIA GPUs.

Who waits for what (each edge is something the later step cannot work without):
- every layer: the cluster's nodes Ready and its identity check (K3sCluster.k8s_options).
- GPU operator path with the operator's toolkit (`gpu.toolkit: operator`): every other Kubernetes
  object waits for `gpu.settled` (toolkit_restart), because the toolkit restarts K3s on the GPU nodes
  and nothing should be installing then: storage, cert-manager and Istio here, the Kubeflow layer
  through its footprint guard (kubeflow_layer). With the host's toolkit (`gpu.toolkit: host`) and on
  the Jetson path nothing restarts, so nothing waits for the GPU layer.
- Istio's charts: nothing else. Its gateway Certificate: cert-manager's issuers (and, with ACME, the
  ingress gateway that answers the challenge).
- Storage and GPU never wait for Istio or cert-manager.
- The nodes' labels and taints (NodePatch, K3sCluster.patch_nodes): the toolkit's restart too.
- cert-manager and Istio exist only where something uses them: not with `kubeflow.mode: pipelines`
  (standalone KFP on a small device needs neither, and together they request over a GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.settings import ConfigError, Settings

from components.gpu import gpu_plan
from components.storage import storage_plan
from components.cert_manager.cert_manager import CertManager
from components.gpu.gpu import Gpu
from components.istio.istio import Istio
from components.k3s.k3s_cluster import K3sCluster
from components.storage.storage import Storage


@dataclass
class Layers:
    storage: Storage
    cert_manager: CertManager | None
    istio: Istio | None
    gpu: Gpu | None


def validate(settings: Settings) -> None:
    """Settings checks that need the node list and the layers' rules; raises before any resource exists."""
    problems = storage_plan.problems(settings) + gpu_plan.problems(settings)
    if problems:
        raise ConfigError(problems)


def needs_mesh(settings: Settings) -> bool:
    """cert-manager and Istio: for full Kubeflow, and for a bare platform (`mode: none`) to build on."""
    return settings.kubeflow.mode != "pipelines"


def toolkit_restart(gpu: Gpu | None) -> list[pulumi.Resource]:
    """What a layer's Kubernetes objects wait for so that none is applied while the GPU toolkit restarts
    K3s: `gpu.settled` when this stack's GPU path restarts K3s, else nothing."""
    return [gpu.settled] if gpu is not None and gpu.restarts_k3s else []


def build_layers(settings: Settings, cluster: K3sCluster) -> Layers:
    gpu = Gpu("gpu", settings, cluster) if settings.gpu_nodes else None
    after = toolkit_restart(gpu)
    cluster.patch_nodes(after=after)
    storage = Storage("storage", settings, cluster, after=after)
    if not needs_mesh(settings):
        return Layers(storage=storage, cert_manager=None, istio=None, gpu=gpu)
    cert_manager = CertManager("cert-manager", settings, cluster, after=after)
    istio = Istio("istio", settings, cluster, cert_manager, after=after)
    return Layers(storage=storage, cert_manager=cert_manager, istio=istio, gpu=gpu)
