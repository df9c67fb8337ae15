"""GPU pods schedule on tainted GPU nodes without a toleration of their own; other pods stay off them.

Each test takes the pod a user's tool creates, admits it as the plan's API servers would (defaulting, then
ExtendedResourceToleration when the plan enables it) and asks, as the scheduler would, which of the
plan's nodes it fits (tests/scheduling.py).
"""

from __future__ import annotations

import copy

import pytest

from components.k3s import k3s_plan
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests import scheduling
from tests.harness import stack_raw
from tests.stacks.settings.raw import settings


def notebook_pod(gpus: int = 1) -> dict:
    """A Kubeflow notebook's pod: the spawner's GPU field becomes a limit on the notebook container
    (jupyter-web-app: `limits[vendor] = num`); the Istio sidecar is an init container (native sidecars)."""
    resources: dict = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    if gpus:
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
    return {"spec": {
        "initContainers": [{"name": "istio-proxy", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
        "containers": [{"name": "notebook", "resources": resources}],
    }}


def kfp_step_pod(gpus: int = 1) -> dict:
    """A KFP v2 step: `task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(n)` puts a limit
    on the main container; the launcher init container requests nothing extended."""
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {"spec": {
        "initContainers": [{"name": "kfp-launcher", "resources": {"requests": {"cpu": "100m"}}}],
        "containers": [{"name": "main", "resources": {"limits": limits, "requests": {"cpu": "1", "memory": "1Gi"}}}],
    }}


@pytest.mark.parametrize("pod", [notebook_pod(), kfp_step_pod()], ids=["notebook", "kfp-step"])
def test_gpu_pods_run_on_the_tainted_gpu_node_of_cloud(pod):
    s = settings("cloud")
    gpu = s.node("gpu-1")
    assert "nvidia.com/gpu=true:NoSchedule" in k3s_plan.node_taints(s, gpu)  # the node is tainted
    assert "tolerations" not in pod["spec"]  # and the user wrote no toleration
    assert scheduling.feasible_nodes(s, pod) == ["gpu-1"]


@pytest.mark.parametrize("pod", [notebook_pod(gpus=0), kfp_step_pod(gpus=0)], ids=["notebook", "kfp-step"])
def test_pods_without_a_gpu_request_stay_off_gpu_nodes(pod):
    s = settings("cloud")
    admitted = scheduling.admit(pod, scheduling.admission_plugins(s))
    assert not admitted["spec"].get("tolerations")
    assert "gpu-1" not in scheduling.feasible_nodes(s, pod)
    assert set(scheduling.feasible_nodes(s, pod)) == {"server-1", "server-2", "server-3", "agent-1"}


def test_without_the_admission_plugin_the_gpu_pod_would_fit_nowhere():
    # Why the plan enables it: with K3s's default plugins the same pod is not schedulable at all.
    s = settings("cloud")
    admitted = scheduling.admit(notebook_pod(), set())
    nodes = [scheduling.node_model(s, n) for n in s.nodes]
    assert [n.name for n in nodes if scheduling.why_not(admitted, n) is None] == []
    assert "untolerated taint" in scheduling.why_not(admitted, next(n for n in nodes if n.name == "gpu-1"))


def test_a_gpu_node_added_later_takes_gpu_pods_with_no_server_change():
    raw = copy.deepcopy(stack_raw("cloud"))
    without_gpu = parse_settings({**raw, "nodes": [n for n in raw["nodes"] if n.get("gpu") != "nvidia"]}, "cloud")
    assert scheduling.feasible_nodes(without_gpu, notebook_pod()) == []
    assert "ExtendedResourceToleration" in scheduling.admission_plugins(without_gpu)  # already on
    assert scheduling.feasible_nodes(parse_settings(raw, "cloud"), notebook_pod()) == ["gpu-1"]


def test_time_sliced_gpus_hold_several_gpu_pods_requests():
    s = settings("cloud", gpu={"timeSlicing": 4})
    assert scheduling.feasible_nodes(s, kfp_step_pod(gpus=4)) == ["gpu-1"]
    assert scheduling.feasible_nodes(s, kfp_step_pod(gpus=5)) == []


def test_a_users_own_gpu_taint_is_tolerated_too():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["nodes"][4]["taints"] = ["nvidia.com/gpu=h100:NoSchedule"]
    s = parse_settings(raw, "cloud")
    assert scheduling.feasible_nodes(s, notebook_pod()) == ["gpu-1"]
    assert "gpu-1" not in scheduling.feasible_nodes(s, notebook_pod(gpus=0))


def test_jetson_gpu_pods_schedule_and_run_under_the_nvidia_runtime():
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0].update(gpu="jetson", arch="arm64")
    raw["kubeflow"] = {"images": kfp_arm64_images()}  # KFP on an arm64-only cluster needs them (issue 9)
    s = parse_settings(raw, "edge")
    assert scheduling.feasible_nodes(s, kfp_step_pod()) == ["edge-1"]
    # No runtimeClassName in the pod: the node's default runtime is the NVIDIA runtime.
    assert k3s_plan.node_config(s, s.node("edge-1"))["default-runtime"] == "nvidia"


def test_the_model_follows_the_schedulers_toleration_rules():
    taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    assert scheduling.tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert scheduling.tolerates({"operator": "Exists"}, taint)
    assert not scheduling.tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert not scheduling.tolerates({"key": "nvidia.com/gpu", "value": "false", "effect": "NoSchedule"}, taint)
    assert scheduling.tolerates({"key": "nvidia.com/gpu", "value": "true"}, taint)
    assert not scheduling.is_extended_resource("cpu") and not scheduling.is_extended_resource("requests.nvidia.com/gpu")
    assert scheduling.is_extended_resource("nvidia.com/gpu")
    assert not scheduling.is_extended_resource("hugepages.kubernetes.io/x")
