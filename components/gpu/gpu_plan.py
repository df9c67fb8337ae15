"""Pure planning for NVIDIA GPUs: which path a stack takes, the chart values of each, the K3s settings
GPU nodes and servers need. User-facing summary: docs/gpu.md.

- Nodes with `gpu: nvidia` (x86_64 or arm64 servers): the NVIDIA GPU operator, set up for K3s's
  containerd. Who brings the container toolkit is `gpu.toolkit`:
  - "operator": its toolkit installs the NVIDIA runtime into /usr/local/nvidia/toolkit and signals
    containerd, which on K3s restarts K3s on that node; K3s then finds the runtime there and adds its
    `nvidia` handler. Everything else in the stack waits for that restart (platform_layers.toolkit_restart).
  - "host": the host has the driver and NVIDIA's toolkit package (/usr/bin/nvidia-container-runtime);
    K3s registers the `nvidia` handler at its first start (pkg/agent/containerd/runtimes.go looks in
    /usr/local/nvidia/toolkit, then /usr/bin), the operator runs with `toolkit.enabled: false`
    (NVIDIA's "pre-installed driver and container toolkit" case), nothing restarts, nothing waits.
  One ClusterPolicy has one toolkit setting (and the device plugin's CDI hook path follows it), so
  the choice is per stack, not per node.
- Nodes with `gpu: jetson`: the operator does not support Jetson (integrated GPUs). JetPack's toolkit
  is in /usr/bin and K3s adds the `nvidia` handler at start; the node's default runtime is `nvidia`
  (K3s `default-runtime`), because the device plugin hands Tegra devices to a container through an
  environment variable only the NVIDIA runtime acts on; only the device plugin is installed.
- No GPU node: nothing.

K3s ships the `nvidia` RuntimeClass (its packaged runtimes.yaml); the program never creates one, and
keeps it when the operator goes (runtime_class_params).

Scheduling: GPU nodes of the cloud profile carry k3s_plan.GPU_TAINT. The API servers run Kubernetes'
ExtendedResourceToleration admission plugin, which gives every pod that requests `nvidia.com/gpu` a
toleration for `nvidia.com/gpu` (NoSchedule), so notebooks, pipeline steps, Katib trials and KServe
predictors need no toleration of their own, and pods without a GPU request stay off GPU nodes.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import yaml

from stacks.settings import Node, Settings

from components.k3s import k3s_plan

OPERATOR_NAMESPACE = "gpu-operator"
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
K3S_CONTAINERD_SOCKET = "/run/k3s/containerd/containerd.sock"
# Where the toolkit installs the runtime; K3s looks here (before /usr/bin) for nvidia-container-runtime.
TOOLKIT_INSTALL_DIR = "/usr/local/nvidia"
RUNTIME_CLASS = "nvidia"  # created by K3s (its packaged runtimes.yaml), not by this program
OPERATOR_DEPLOYMENT = "gpu-operator"  # the chart's Deployment (templates/operator.yaml)
OPERATOR_SELECTOR = "app=gpu-operator"  # its pods' label
GPU_RESOURCE = "nvidia.com/gpu"
# K3s passes `enable-admission-plugins=NodeRestriction` to kube-apiserver, and a `kube-apiserver-arg`
# of the same name replaces it (pkg/daemons/control/server.go: argsMap then config.GetArgs(argsMap,
# cfg.ExtraAPIArgs)), so K3s's own plugin is listed again. ExtendedResourceToleration
# (kubernetes plugin/pkg/admission/extendedresourcetoleration) adds, to every pod whose containers
# request an extended resource, `{key: <resource>, operator: Exists, effect: NoSchedule}`.
ADMISSION_PLUGINS = ("NodeRestriction", "ExtendedResourceToleration")
SHARING_CONFIG_NAME = "time-slicing-config"  # + "-<content hash>" (sharing_config_name)
SHARING_CONFIG_KEY = "any"
NODE_GPU_LABEL = "kubeflow-k3s/gpu"  # set on GPU nodes by k3s_plan.node_labels
WAIT_SECONDS = 1800  # a containerised driver build (gpu.installDriver) takes minutes per node


def operator_nodes(settings: Settings) -> list[str]:
    return [n.name for n in settings.nodes if n.gpu == "nvidia"]


def jetson_nodes(settings: Settings) -> list[str]:
    return [n.name for n in settings.nodes if n.gpu == "jetson"]


def toolkit_restarts_k3s(settings: Settings) -> bool:
    """Does installing this stack's GPU support restart K3s (the operator's toolkit on a GPU node)?"""
    return bool(operator_nodes(settings)) and settings.gpu.toolkit == "operator"


def extended_resource_toleration(settings: Settings) -> bool:
    """Whether the API servers run ExtendedResourceToleration: where GPU nodes are (or, on a profile
    that taints them, may later be) tainted. On for the whole cloud profile, so that adding a first
    GPU node later changes no server's config (and restarts no API server)."""
    if k3s_plan.taints_gpu_nodes(settings):
        return True
    return any(t.split(":")[0].split("=")[0] == GPU_RESOURCE for n in settings.nodes for t in n.taints)


def k3s_config(settings: Settings, node: Node) -> dict[str, Any]:
    """The config.yaml keys GPU support adds to a node (k3s_plan.node_config merges them)."""
    cfg: dict[str, Any] = {}
    if node.is_server and extended_resource_toleration(settings):
        cfg["kube-apiserver-arg"] = ["enable-admission-plugins=" + ",".join(ADMISSION_PLUGINS)]
    if node.gpu == "jetson":
        # K3s agent flag `default-runtime` ("Set the default runtime in containerd"): every pod on the
        # board runs under nvidia-container-runtime, which turns the device plugin's
        # NVIDIA_VISIBLE_DEVICES into Tegra device nodes; under runc a GPU pod would see none.
        cfg["default-runtime"] = RUNTIME_CLASS
    return cfg


def merge_apiserver_args(ours: list[str], theirs: Any) -> list[str]:
    """A user's `kube-apiserver-arg` added to ours; their `enable-admission-plugins` is merged with ours
    (a second one would replace ours in kube-apiserver's flag parsing)."""
    extra = [theirs] if isinstance(theirs, str) else [str(a) for a in theirs or []]
    plugins = [a.split("=", 1)[1] for a in ours if a.startswith("enable-admission-plugins=")]
    out = [a for a in ours if not a.startswith("enable-admission-plugins=")]
    names = [p for group in plugins for p in group.split(",") if p]
    for arg in extra:
        if arg.startswith("enable-admission-plugins="):
            names += [p for p in arg.split("=", 1)[1].split(",") if p and p not in names]
        else:
            out.append(arg)
    if names:
        out.insert(0, "enable-admission-plugins=" + ",".join(dict.fromkeys(names)))
    return out


def problems(settings: Settings) -> list[tuple[str, str]]:
    """(config key, message) for GPU settings that only make sense against the node list."""
    out: list[tuple[str, str]] = []
    for i, node in enumerate(settings.nodes):
        for j, taint in enumerate(node.taints):
            key, effect = taint.split(":")[0].split("=")[0], taint.rsplit(":", 1)[1]
            if key == GPU_RESOURCE and effect == "NoExecute":
                out.append((f"nodes[{i}].taints[{j}]", (
                    f"{taint!r}: GPU pods get a toleration for {GPU_RESOURCE} with effect NoSchedule only "
                    "(ExtendedResourceToleration), so NoExecute would evict them; use NoSchedule")))
        if node.gpu != "jetson":
            continue
        stack_wide = ("k3s.extraConfig", settings.k3s.extra_config) if node.is_server else (
            "k3s.agentExtraConfig", settings.k3s.agent_extra_config)
        for key, source in (stack_wide, (f"nodes[{i}].extraConfig", node.extra_config)):
            runtime = source.get("default-runtime")
            if runtime is not None and runtime != RUNTIME_CLASS:
                out.append((f"{key}.default-runtime", (
                    f"{runtime!r}: the default runtime of Jetson node {node.name} is {RUNTIME_CLASS!r} (GPU "
                    "pods see the device only under the NVIDIA runtime); remove the key")))
    return out


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


def sharing_config_name(settings: Settings) -> str | None:
    """The operator path's ConfigMap name, carrying a digest of its content.

    The operator does not watch the ConfigMap, and the plugin's config-manager sidecar reacts to the
    node's `nvidia.com/device-plugin.config` label, not to the file's content; NVIDIA's docs say to
    restart the plugin pods after editing it ("Updating a Time-Slicing Config Map"). The operator puts
    `devicePlugin.config.name` into the device plugin (and GFD, MPS) DaemonSets' pod template, as the
    name of a configMap volume and its mounts (controllers/object_controls.go handleDevicePluginConfig),
    so a new name is a new pod template: the DaemonSets roll, and the new pods read the new config."""
    config = sharing_config(settings)
    if config is None:
        return None
    return f"{SHARING_CONFIG_NAME}-{hashlib.sha256(config.encode()).hexdigest()[:10]}"


def operator_values(settings: Settings) -> dict[str, Any]:
    toolkit: dict[str, Any] = {"enabled": False}
    if settings.gpu.toolkit == "operator":
        toolkit = {
            "enabled": True,
            "installDir": TOOLKIT_INSTALL_DIR,
            # K3s runs its own containerd. With CDI (the default since operator v25.10) and K3s's
            # containerd 2.x (stacks/versions.py K3S_MIN_VERSIONS), the socket is all the toolkit needs:
            # K3s regenerates its containerd config on every start and picks the runtime up from
            # TOOLKIT_INSTALL_DIR itself.
            "env": [{"name": "CONTAINERD_SOCKET", "value": K3S_CONTAINERD_SOCKET}],
        }
    values: dict[str, Any] = {
        # Hosts bring their driver; the containerised one only when asked (gpu.installDriver).
        "driver": {"enabled": settings.gpu.install_driver},
        # gpu.toolkit: "host" -> the host's package, registered by K3s at start (no restart).
        "toolkit": toolkit,
        "cdi": {"enabled": True},
        # Operator pods run under K3s's RuntimeClass.
        "operator": {"runtimeClass": RUNTIME_CLASS},
    }
    config = sharing_config(settings)
    if config:
        # The chart creates the ConfigMap in the same release, so the first device plugin rollout
        # already uses it. Its name changes with its content, which rolls the plugin pods on a
        # change (sharing_config_name); Helm removes the ConfigMap of the old name.
        values["devicePlugin"] = {
            "config": {
                "create": True,
                "name": sharing_config_name(settings),
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
        # The chart annotates the plugin's pod template with `checksum/config` of this embedded map
        # (templates/_helpers.tpl nvidia-device-plugin.podAnnotations): a change rolls the pods.
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


def runtime_class_params(settings: Settings) -> dict[str, object]:
    """gpu-runtimeclass.sh: keeps K3s's `nvidia` RuntimeClass when the operator goes.

    The operator makes the ClusterPolicy the controller owner of the RuntimeClass named
    `operator.runtimeClass` and rewrites it on every reconcile (controllers/object_controls.go
    transformRuntimeClass: SetControllerReference, then Create or Update); there is no value that
    stops it, and another name would have no containerd handler on K3s. Deleting the ClusterPolicy
    would let the garbage collector delete K3s's RuntimeClass, breaking every pod that names it until
    a K3s server restarts. So, before the operator's release is deleted, this command's delete stops
    the operator and removes the owner reference; its create restores the RuntimeClass if an earlier
    failed run lost it."""
    return {
        "NODE_NAME": settings.first_server.name,
        "RUNTIME_CLASS": RUNTIME_CLASS,
        "OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
        "OPERATOR_DEPLOYMENT": OPERATOR_DEPLOYMENT,
        "OPERATOR_SELECTOR": OPERATOR_SELECTOR,
        "WAIT_SECONDS": 300,
    }


def toolkit_case(report: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """The `gpu-toolkit` line of a parsed preflight report (k3s_plan.parse_preflight_report) as fields:
    {"case": "host"|"operator"|"jetson"|"none", "runtime": path or "", ...}."""
    status, detail = report.get("gpu-toolkit", ("skip", "case=none"))
    fields = {"status": status}
    for part in detail.split(" "):  # the leading key=value fields; a message may follow
        if "=" not in part:
            break
        key, value = part.split("=", 1)
        fields[key] = value
    return fields
