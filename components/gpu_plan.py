"""Pure planning for NVIDIA GPUs: which path a stack takes and the chart values of each.

- A node with `gpu: nvidia` (x86_64 or arm64 server, driver on the host): the NVIDIA GPU operator,
  set up for K3s's containerd. The operator's container toolkit installs the NVIDIA runtime into
  /usr/local/nvidia/toolkit and signals containerd, which on K3s restarts K3s on that node; K3s then
  finds the runtime there and adds its `nvidia` handler. K3s already ships the `nvidia` RuntimeClass,
  so the program never creates one (it would clash with K3s's).
- A node with `gpu: jetson`: the operator does not support Jetson (integrated GPUs). JetPack's toolkit
  is in /usr/bin, K3s adds the `nvidia` handler at start, and only the device plugin is installed,
  running under `runtimeClassName: nvidia`.
- No GPU node: nothing.

The GPU nodes' labels and cloud taint come from the node settings (k3s_plan.node_labels/node_taints).
"""

from __future__ import annotations

from typing import Any

import yaml

from stacks.settings import Settings

OPERATOR_NAMESPACE = "gpu-operator"
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
K3S_CONTAINERD_SOCKET = "/run/k3s/containerd/containerd.sock"
# Where the toolkit installs the runtime; K3s looks here (before /usr/bin) for nvidia-container-runtime.
TOOLKIT_INSTALL_DIR = "/usr/local/nvidia"
RUNTIME_CLASS = "nvidia"  # created by K3s (its packaged runtimes.yaml), not by this program
SHARING_CONFIG_NAME = "time-slicing-config"
SHARING_CONFIG_KEY = "any"
NODE_GPU_LABEL = "kubeflow-k3s/gpu"  # set on GPU nodes by k3s_plan.node_labels
WAIT_SECONDS = 1800  # a containerised driver build (gpu.installDriver) takes minutes per node


def operator_nodes(settings: Settings) -> list[str]:
    return [n.name for n in settings.nodes if n.gpu == "nvidia"]


def jetson_nodes(settings: Settings) -> list[str]:
    return [n.name for n in settings.nodes if n.gpu == "jetson"]


def sharing_config(settings: Settings) -> str | None:
    """The device plugin's config file (time-slicing and MIG strategy), or None for the defaults."""
    gpu = settings.gpu
    if not gpu.time_slicing and not gpu.mig:
        return None
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": gpu.mig or "none"}}
    if gpu.time_slicing:
        config["sharing"] = {
            "timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": gpu.time_slicing}]}
        }
    return yaml.safe_dump(config, sort_keys=True)


def operator_values(settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = {
        # Hosts bring their driver; the containerised one only when asked (gpu.installDriver).
        "driver": {"enabled": settings.gpu.install_driver},
        "toolkit": {
            "enabled": True,
            "installDir": TOOLKIT_INSTALL_DIR,
            # K3s runs its own containerd. With CDI (the default since operator v25.10) and K3s's
            # containerd 2.x, the socket is all the toolkit needs: K3s regenerates its containerd
            # config on every start and picks the runtime up from TOOLKIT_INSTALL_DIR itself.
            "env": [{"name": "CONTAINERD_SOCKET", "value": K3S_CONTAINERD_SOCKET}],
        },
        "cdi": {"enabled": True},
        # Operator pods run under K3s's RuntimeClass.
        "operator": {"runtimeClass": RUNTIME_CLASS},
    }
    config = sharing_config(settings)
    if config:
        # The chart creates the ConfigMap in the same release, so the first device plugin rollout
        # already uses it. The operator does not watch it: a later change restarts the plugin pods
        # through the release upgrade.
        values["devicePlugin"] = {
            "config": {
                "create": True,
                "name": SHARING_CONFIG_NAME,
                "default": SHARING_CONFIG_KEY,
                "data": {SHARING_CONFIG_KEY: config},
            }
        }
    if settings.gpu.mig:
        values["mig"] = {"strategy": settings.gpu.mig}
    return values


def device_plugin_values(settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = {
        # K3s does not make nvidia the default runtime: the plugin (and GPU pods) ask for it.
        "runtimeClassName": RUNTIME_CLASS,
        # Jetson has no NVML-visible PCI GPU; auto-detection misreads some boards (k8s-device-plugin#1963).
        "deviceDiscoveryStrategy": "tegra",
        # Only the Jetson nodes: discrete-GPU nodes belong to the operator.
        "nodeSelector": {NODE_GPU_LABEL: "jetson"},
    }
    config = sharing_config(settings)
    if config:
        values["config"] = {"map": {SHARING_CONFIG_KEY: config}, "default": SHARING_CONFIG_KEY}
    return values


def wait_params(settings: Settings) -> dict[str, object]:
    """wait-gpu.sh: every GPU node advertises nvidia.com/gpu (the toolkit, its K3s restart and the
    device plugin are done) and is Ready again."""
    return {
        "NODE_NAME": settings.first_server.name,
        "GPU_NODES": " ".join(operator_nodes(settings) + jetson_nodes(settings)),
        "WAIT_SECONDS": WAIT_SECONDS,
    }
