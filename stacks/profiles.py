"""Per-profile defaults: what `profile: laptop | edge | cloud` means when a key is not set.

A profile is a bundle of defaults, not a mode switch: every value here can be overridden in the stack
file, except the few safety floors marked `require_*`, which validation enforces on that profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Kubeflow components the program can switch, in the order of kubeflow/manifests'
# example/kustomization.yaml. Keys are the `kubeflow.components` config keys.
KUBEFLOW_COMPONENTS = (
    "pipelines",
    "katib",
    "centralDashboard",
    "admissionWebhook",
    "notebooks",
    "profiles",
    "pvcViewer",
    "volumes",
    "tensorboards",
    "knative",
    "kserve",
    "trainer",
    "spark",
    "modelRegistry",
)

_SINGLE_DEVELOPER = {
    "pipelines": True, "katib": False, "centralDashboard": True, "admissionWebhook": True,
    "notebooks": True, "profiles": True, "pvcViewer": True, "volumes": True, "tensorboards": False,
    "knative": False, "kserve": False, "trainer": False, "spark": False, "modelRegistry": False,
}
_EVERYTHING = {k: True for k in KUBEFLOW_COMPONENTS}
_PIPELINES_ONLY = {k: k == "pipelines" for k in KUBEFLOW_COMPONENTS}


@dataclass(frozen=True)
class Profile:
    name: str
    # Preflight floors per node. laptop: the single-developer Kubeflow set needs ~7.6 GiB (footprint.py) plus
    # K3s and the desktop, so a 16 GB machine (MemTotal ~15 GiB) passes and an 8 GB one is stopped early;
    # edge: K3s (~0.5 GiB) plus trimmed KFP (<=1.5 GiB) fits a 4 GB board (MemTotal ~3.7 GiB);
    # cloud: a general node of an HA cluster running the full platform.
    min_memory_mib: int
    min_disk_gib: int
    storage: str
    issuer: str
    gateway_service_type: str
    kubeflow_mode: str
    components: Mapping[str, bool] = field(default_factory=dict)
    secrets_encryption: bool = False
    require_secrets_encryption: bool = False
    require_host_keys: bool = False
    # kubelet refuses to start when kernel tunables differ from what it expects, instead of changing them.
    protect_kernel_defaults: bool = False
    # Who provides the NVIDIA container toolkit on `gpu: nvidia` nodes (gpu.toolkit, docs/gpu.md):
    # "operator" needs only the host driver but the toolkit restarts K3s on each GPU node once;
    # "host" expects the driver and NVIDIA's toolkit package on the host (as cloud GPU images ship them),
    # K3s registers the runtime at start and nothing restarts.
    gpu_toolkit: str = "operator"
    # images.prePull default. Off on edge: a 20 GiB SD card or eMMC shared with K3s; pulling the whole
    # list while K3s and KFP start competes for the same slow disk and memory (docs/images.md).
    pre_pull_images: bool = True


PROFILES = {
    "laptop": Profile(
        name="laptop", min_memory_mib=11264, min_disk_gib=30, storage="local-path", issuer="selfsigned",
        gateway_service_type="LoadBalancer", kubeflow_mode="full", components=_SINGLE_DEVELOPER,
    ),
    "edge": Profile(
        name="edge", min_memory_mib=3584, min_disk_gib=20, storage="local-path", issuer="selfsigned",
        gateway_service_type="LoadBalancer", kubeflow_mode="pipelines", components=_PIPELINES_ONLY,
        pre_pull_images=False,
    ),
    "cloud": Profile(
        name="cloud", min_memory_mib=15360, min_disk_gib=80, storage="longhorn", issuer="letsencrypt",
        gateway_service_type="NodePort", kubeflow_mode="full", components=_EVERYTHING,
        secrets_encryption=True, require_secrets_encryption=True, require_host_keys=True,
        protect_kernel_defaults=True, gpu_toolkit="host",
    ),
}
