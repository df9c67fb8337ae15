"""NVIDIA planning: the operator set up for K3s's containerd, Jetson's device plugin, sharing options."""

from __future__ import annotations

import copy

import pytest
import yaml

from components import gpu_plan as plan
from components import k3s_plan
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests.stacks.test_settings import stack_raw


def cloud(**gpu):
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["gpu"] = gpu
    return parse_settings(raw, "cloud")


def jetson_edge(**gpu):
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0].update(gpu="jetson", arch="arm64")
    raw["kubeflow"] = {"images": kfp_arm64_images()}  # KFP on an arm64-only cluster needs them
    raw["gpu"] = gpu
    return parse_settings(raw, "edge")


def test_paths_per_node_kind():
    assert plan.operator_nodes(cloud()) == ["gpu-1"] and plan.jetson_nodes(cloud()) == []
    assert plan.operator_nodes(jetson_edge()) == [] and plan.jetson_nodes(jetson_edge()) == ["edge-1"]
    dev = parse_settings(stack_raw("dev"), "dev")
    assert plan.operator_nodes(dev) == plan.jetson_nodes(dev) == []


def test_operator_uses_k3s_containerd_and_keeps_the_host_driver():
    values = plan.operator_values(cloud())
    assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in values["toolkit"]["env"]
    # K3s looks for nvidia-container-runtime under /usr/local/nvidia/toolkit.
    assert values["toolkit"]["installDir"] == "/usr/local/nvidia"
    assert values["driver"]["enabled"] is False
    assert values["operator"]["runtimeClass"] == "nvidia"
    assert plan.operator_values(cloud(installDriver=True))["driver"]["enabled"] is True


def test_time_slicing_config_is_created_by_the_chart():
    values = plan.operator_values(cloud(timeSlicing=4))
    config = values["devicePlugin"]["config"]
    assert config["create"] is True and config["default"] == plan.SHARING_CONFIG_KEY
    parsed = yaml.safe_load(config["data"][plan.SHARING_CONFIG_KEY])
    assert parsed["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert parsed["flags"]["migStrategy"] == "none"


def test_no_sharing_config_without_time_slicing_or_mig():
    values = plan.operator_values(cloud(timeSlicing=0))
    assert "devicePlugin" not in values and "mig" not in values


@pytest.mark.parametrize("strategy", ["single", "mixed"])
def test_mig_strategy(strategy):
    values = plan.operator_values(cloud(mig=strategy))
    assert values["mig"] == {"strategy": strategy}
    parsed = yaml.safe_load(values["devicePlugin"]["config"]["data"][plan.SHARING_CONFIG_KEY])
    assert parsed["flags"]["migStrategy"] == strategy and "sharing" not in parsed


def test_jetson_device_plugin_runs_under_k3s_nvidia_runtime_on_jetson_nodes_only():
    s = jetson_edge(timeSlicing=2)
    values = plan.device_plugin_values(s)
    assert values["runtimeClassName"] == "nvidia"
    assert values["deviceDiscoveryStrategy"] == "tegra"
    label, value = next(iter(values["nodeSelector"].items()))
    assert f"{label}={value}" in k3s_plan.node_labels(s, s.node("edge-1"))
    parsed = yaml.safe_load(values["config"]["map"][values["config"]["default"]])
    assert parsed["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 2


def test_gpu_nodes_are_labelled_for_the_charts_and_tainted_on_cloud():
    s = cloud()
    gpu = s.node("gpu-1")
    # The device plugin / operator operands select nvidia.com/gpu.present=true when NFD has not run yet.
    assert "nvidia.com/gpu.present=true" in k3s_plan.node_labels(s, gpu)
    assert "nvidia.com/gpu=true:NoSchedule" in k3s_plan.node_taints(s, gpu)
    assert k3s_plan.node_taints(jetson_edge(), jetson_edge().node("edge-1")) == []


def test_wait_covers_every_gpu_node():
    assert plan.wait_params(cloud())["GPU_NODES"] == "gpu-1"
    assert plan.wait_params(jetson_edge())["GPU_NODES"] == "edge-1"


def test_jetson_nodes_are_kept_out_of_the_operators_reach():
    # A stack with both kinds: the operator's operands select nvidia.com/gpu.present=true, which
    # Jetson nodes carry for the device plugin; this label makes the operator skip them.
    s = jetson_edge()
    assert "nvidia.com/gpu.deploy.operands=false" in k3s_plan.node_labels(s, s.node("edge-1"))
    assert not any(l.startswith("nvidia.com/gpu.deploy") for l in k3s_plan.node_labels(cloud(), cloud().node("gpu-1")))
