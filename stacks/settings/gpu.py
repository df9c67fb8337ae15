"""GPU settings: the `gpu` section and the GPU kinds a node may name (`nodes[i].gpu`).

Read by the GPU layer (components/gpu/): the NVIDIA device plugin or GPU operator, time-slicing, MIG,
and who provides the container toolkit. docs/gpu.md explains each choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import profiles
from .common import ARCHES, Reader

SECTIONS = ("gpu",)

GPU_KINDS = ("none", "nvidia", "jetson")
# Which architectures each GPU path supports. The GPU operator runs on x86_64 and arm64 servers with
# a host driver; Jetson (Tegra) boards are arm64 only and are not supported by the operator.
GPU_ARCHES = {"none": ARCHES, "nvidia": ("amd64", "arm64"), "jetson": ("arm64",)}
MIG_STRATEGIES = ("single", "mixed")
GPU_TOOLKITS = ("host", "operator")


@dataclass(frozen=True)
class GpuSettings:
    time_slicing: int = 0
    mig: str | None = None
    install_driver: bool = False
    # Who provides the NVIDIA container toolkit on `gpu: nvidia` nodes: "host" (installed on the host,
    # K3s registers the runtime at start) or "operator" (the GPU operator installs it and restarts K3s).
    toolkit: str = "operator"


def parse_gpu(r: Reader, value: Any, prof: profiles.Profile) -> GpuSettings:
    gd = r.obj(value, "gpu", {"timeSlicing", "mig", "installDriver", "toolkit"})
    install_driver = r.boolean(gd, "installDriver", "gpu.installDriver", False)
    # The operator's containerised driver lives under /run/nvidia/driver, which only the operator's own
    # toolkit is set up for: with installDriver the toolkit defaults to (and must be) the operator's.
    gpu = GpuSettings(
        time_slicing=r.integer(gd, "timeSlicing", "gpu.timeSlicing", 0, 0, 64),
        mig=r.choice(gd, "mig", "gpu.mig", MIG_STRATEGIES, None),
        install_driver=install_driver,
        toolkit=r.choice(gd, "toolkit", "gpu.toolkit", GPU_TOOLKITS,
                         "operator" if install_driver else prof.gpu_toolkit) or prof.gpu_toolkit,
    )
    if gpu.install_driver and gpu.toolkit == "host":
        r.fail(
            "gpu.toolkit",
            "'host' cannot be used with gpu.installDriver: true (the operator's driver container is only "
            "wired to the operator's toolkit); use toolkit: operator, or install the driver on the hosts",
        )
    return gpu


def ignored(r: Reader, raw: Mapping[str, Any], gpu_nodes: int) -> None:
    """`gpu` set on a stack without GPU nodes is accepted and ignored: say so."""
    if raw.get("gpu") and not gpu_nodes:
        r.warn("gpu", "is ignored: no node has gpu: nvidia or gpu: jetson")
