"""What the API server's admission and the scheduler decide for a pod, on the nodes a stack's plan describes.

A small model of the upstream code paths that decide whether a GPU pod runs, to test behaviour rather than
settings:
- API defaulting (kubernetes pkg/apis/core/v1/defaults.go SetDefaults_Pod): a container's requests default
  to its limits for every resource it limits but does not request.
- ExtendedResourceToleration admission (kubernetes plugin/pkg/admission/extendedresourcetoleration/
  admission.go): for every extended resource (a name with a domain outside kubernetes.io, not
  `requests.`-prefixed) that a container or init container requests, the pod gets
  `{key: <name>, operator: Exists, effect: NoSchedule}`, when the plugin is enabled.
- The scheduler's filters (kubernetes pkg/scheduler/framework/plugins): NodeUnschedulable aside,
  TaintToleration (every NoSchedule/NoExecute taint tolerated, component-helpers ToleratesTaint),
  NodeAffinity's nodeSelector (every label equal), NodeResourcesFit (requests of the largest of the
  init containers or the sum of the containers, against allocatable; an extended resource a node does not
  advertise has allocatable 0).

Nodes come from the plan: labels (k3s_plan.node_labels), taints (k3s_plan.node_taints), admission plugins
of the API servers (the `enable-admission-plugins` of the first server's config.yaml), and the GPUs the
device plugin advertises (one GPU per GPU node, times gpu.timeSlicing replicas).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from components.k3s import k3s_plan
from stacks.settings import Node, Settings

HARD_EFFECTS = ("NoSchedule", "NoExecute")


@dataclass
class NodeModel:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, str]]
    allocatable: dict[str, int] = field(default_factory=dict)


def parse_taint(text: str) -> dict[str, str]:
    key_value, effect = text.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    return {"key": key, "value": value, "effect": effect}


def node_model(settings: Settings, node: Node, gpus_per_node: int = 1) -> NodeModel:
    labels = dict(label.split("=", 1) for label in k3s_plan.node_labels(settings, node))
    labels.update({"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": node.arch})
    allocatable = {"cpu": 64_000, "memory": 512 * 1024}
    if node.gpu != "none":
        allocatable["nvidia.com/gpu"] = gpus_per_node * max(1, settings.gpu.time_slicing)
    return NodeModel(node.name, labels, [parse_taint(t) for t in k3s_plan.node_taints(settings, node)], allocatable)


def admission_plugins(settings: Settings) -> set[str]:
    """The admission plugins the plan enables beyond kube-apiserver's defaults (ExtendedResourceToleration
    is not a default plugin)."""
    cfg = k3s_plan.node_config(settings, settings.first_server)
    args = cfg.get("kube-apiserver-arg") or []
    args = [args] if isinstance(args, str) else args
    out: set[str] = set()
    for arg in args:
        if arg.startswith("enable-admission-plugins="):
            out |= set(arg.split("=", 1)[1].split(","))
    return out


def is_extended_resource(name: str) -> bool:
    """k8s.io/kubernetes pkg/apis/core/helper IsExtendedResourceName."""
    if name.startswith("requests.") or "/" not in name:
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def admit(pod: dict[str, Any], plugins: set[str]) -> dict[str, Any]:
    """The pod as stored after defaulting and (when enabled) ExtendedResourceToleration."""
    pod = copy.deepcopy(pod)
    for c in _containers(pod):
        resources = c.setdefault("resources", {})
        requests = resources.setdefault("requests", {})
        for name, value in (resources.get("limits") or {}).items():
            requests.setdefault(name, value)
    if "ExtendedResourceToleration" in plugins:
        names = sorted({n for c in _containers(pod) for n in c["resources"]["requests"] if is_extended_resource(n)})
        tolerations = pod["spec"].setdefault("tolerations", [])
        for name in names:
            toleration = {"key": name, "operator": "Exists", "effect": "NoSchedule"}
            if toleration not in tolerations:
                tolerations.append(toleration)
    return pod


def tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """k8s.io/component-helpers scheduling/corev1 Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def _quantity(name: str, value: Any) -> int:
    """cpu in millicores, memory in MiB, anything else as a count."""
    text = str(value)
    if name == "cpu":
        return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)
    if name == "memory":
        for suffix, factor in (("Gi", 1024), ("Mi", 1), ("Ki", 1 / 1024)):
            if text.endswith(suffix):
                return int(float(text[: -len(suffix)]) * factor)
        return int(text) // (1024 * 1024)
    return int(text)


def requested(pod: dict[str, Any]) -> dict[str, int]:
    """NodeResourcesFit: max(sum of containers, each init container), per resource (cpu in milli)."""
    def of(c: dict[str, Any]) -> dict[str, int]:
        out = {}
        for name, value in ((c.get("resources") or {}).get("requests") or {}).items():
            out[name] = _quantity(name, value)
        return out

    total: dict[str, int] = {}
    for c in pod["spec"].get("containers") or []:
        for name, value in of(c).items():
            total[name] = total.get(name, 0) + value
    for c in pod["spec"].get("initContainers") or []:
        for name, value in of(c).items():
            total[name] = max(total.get(name, 0), value)
    return total


def why_not(pod: dict[str, Any], node: NodeModel) -> str | None:
    """None when the (admitted) pod fits the node, else the scheduler's reason."""
    tolerations = pod["spec"].get("tolerations") or []
    for taint in node.taints:
        if taint["effect"] in HARD_EFFECTS and not any(tolerates(t, taint) for t in tolerations):
            return f"untolerated taint {taint}"
    for key, value in (pod["spec"].get("nodeSelector") or {}).items():
        if node.labels.get(key) != value:
            return f"node selector {key}={value} does not match"
    for name, amount in requested(pod).items():
        if amount > node.allocatable.get(name, 0):
            return f"insufficient {name}"
    return None


def feasible_nodes(settings: Settings, pod: dict[str, Any], nodes: list[NodeModel] | None = None) -> list[str]:
    admitted = admit(pod, admission_plugins(settings))
    nodes = nodes if nodes is not None else [node_model(settings, n) for n in settings.nodes]
    return [n.name for n in nodes if why_not(admitted, n) is None]
