"""NVIDIA planning: the operator set up for K3s's containerd, Jetson's device plugin, sharing options."""

from __future__ import annotations

import copy

import pytest
import yaml

from components.gpu import gpu_plan as plan
from components.k3s import k3s_plan
from stacks.settings import ConfigError, parse_settings
from tests.arm64 import kfp_arm64_images
from tests.harness import stack_raw


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
    values = plan.operator_values(cloud(toolkit="operator"))
    assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in values["toolkit"]["env"]
    # K3s looks for nvidia-container-runtime under /usr/local/nvidia/toolkit.
    assert values["toolkit"]["installDir"] == "/usr/local/nvidia"
    assert values["driver"]["enabled"] is False
    assert values["operator"]["runtimeClass"] == "nvidia"
    assert plan.operator_values(cloud(installDriver=True))["driver"]["enabled"] is True


def test_the_hosts_toolkit_means_no_operator_toolkit_and_no_restart():
    s = cloud()  # the cloud profile expects the host's toolkit (GPU images ship it)
    assert s.gpu.toolkit == "host"
    assert plan.operator_values(s)["toolkit"] == {"enabled": False}
    assert not plan.toolkit_restarts_k3s(s)
    assert plan.toolkit_restarts_k3s(cloud(toolkit="operator"))
    # The containerised driver is only wired to the operator's toolkit: it picks that by default.
    assert cloud(installDriver=True).gpu.toolkit == "operator"
    assert plan.toolkit_restarts_k3s(cloud(installDriver=True))
    # Jetson never restarts K3s.
    assert not plan.toolkit_restarts_k3s(jetson_edge())


def test_time_slicing_change_renames_the_config_the_operator_mounts():
    name2 = plan.operator_values(cloud(timeSlicing=2))["devicePlugin"]["config"]["name"]
    name4 = plan.operator_values(cloud(timeSlicing=4))["devicePlugin"]["config"]["name"]
    assert name2 != name4 and name2.startswith(plan.SHARING_CONFIG_NAME)
    assert plan.operator_values(cloud(timeSlicing=4))["devicePlugin"]["config"]["name"] == name4  # deterministic


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


def test_jetson_nodes_default_to_the_nvidia_runtime_and_others_do_not():
    s = jetson_edge()
    cfg = k3s_plan.node_config(s, s.node("edge-1"))
    assert cfg["default-runtime"] == "nvidia"
    c = cloud()
    for node in c.nodes:
        assert "default-runtime" not in k3s_plan.node_config(c, node)


def test_jetson_default_runtime_cannot_be_overridden():
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0].update(gpu="jetson", arch="arm64", extraConfig={"default-runtime": "runc"})
    raw["kubeflow"] = {"images": kfp_arm64_images()}
    s = parse_settings(raw, "edge")
    assert "nodes[0].extraConfig.default-runtime" in dict(plan.problems(s))
    raw["nodes"][0]["extraConfig"] = {}
    raw["k3s"] = {"extraConfig": {"default-runtime": "crun"}}
    assert "k3s.extraConfig.default-runtime" in dict(plan.problems(parse_settings(raw, "edge")))


def test_problems_reach_the_user_before_anything_is_created():
    from components import platform_layers

    raw = copy.deepcopy(stack_raw("cloud"))
    raw["nodes"][4]["taints"] = ["nvidia.com/gpu:NoExecute"]
    with pytest.raises(ConfigError) as err:
        platform_layers.validate(parse_settings(raw, "cloud"))
    assert "nodes[4].taints[0]" in str(err.value)


def test_servers_of_a_gpu_tainting_profile_run_extended_resource_toleration():
    c = cloud()
    for node in c.nodes:
        args = k3s_plan.node_config(c, node).get("kube-apiserver-arg")
        if node.is_server:
            # K3s's own NodeRestriction stays (a kube-apiserver-arg replaces K3s's value).
            assert args == ["enable-admission-plugins=NodeRestriction,ExtendedResourceToleration"]
        else:
            assert args is None
    # No taint anywhere: the API server keeps K3s's defaults.
    dev = parse_settings(stack_raw("dev"), "dev")
    assert "kube-apiserver-arg" not in k3s_plan.node_config(dev, dev.first_server)
    # A user's own GPU taint on another profile turns it on too.
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0].update(gpu="nvidia", taints=["nvidia.com/gpu=present:NoSchedule"])
    e = parse_settings(raw, "edge")
    assert "ExtendedResourceToleration" in k3s_plan.node_config(e, e.first_server)["kube-apiserver-arg"][0]


def test_adding_a_first_gpu_node_changes_no_server_config():
    raw = copy.deepcopy(stack_raw("cloud"))
    without = parse_settings({**raw, "nodes": [n for n in raw["nodes"] if n.get("gpu") != "nvidia"]}, "cloud")
    with_gpu = parse_settings(raw, "cloud")
    for node in without.servers:
        assert k3s_plan.node_config(without, node) == k3s_plan.node_config(with_gpu, with_gpu.node(node.name))


def test_users_apiserver_args_are_merged_not_dropped():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["k3s"]["extraConfig"] = {"kube-apiserver-arg": ["enable-admission-plugins=PodNodeSelector", "v=2"]}
    s = parse_settings(raw, "cloud")
    args = k3s_plan.node_config(s, s.first_server)["kube-apiserver-arg"]
    assert args == ["enable-admission-plugins=NodeRestriction,ExtendedResourceToleration,PodNodeSelector", "v=2"]
    raw["k3s"]["extraConfig"] = {"kube-apiserver-arg+": "enable-admission-plugins=PodNodeSelector"}
    cfg = k3s_plan.node_config(parse_settings(raw, "cloud"), s.first_server)
    assert cfg["kube-apiserver-arg"] == ["enable-admission-plugins=NodeRestriction,ExtendedResourceToleration,PodNodeSelector"]
    assert "kube-apiserver-arg+" not in cfg


def test_gpu_taints_that_evict_gpu_pods_are_refused():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["nodes"][4]["taints"] = ["nvidia.com/gpu=true:NoExecute"]
    s = parse_settings(raw, "cloud")
    assert "nodes[4].taints[0]" in dict(plan.problems(s))


def test_k3s_uses_the_flag_names_of_upstream(upstream):
    names = set((upstream / "k3s" / "server-flags.txt").read_text().split()) & set(
        (upstream / "k3s" / "agent-flags.txt").read_text().split())
    assert "default-runtime" in names  # server and agent (a Jetson node may be either)
    assert "kube-apiserver-arg" in set((upstream / "k3s" / "server-flags.txt").read_text().split())


def test_preflight_gpu_toolkit_line_parses():
    report = k3s_plan.parse_preflight_report(
        "gpu\tok\tNVIDIA device nodes present\n"
        "gpu-toolkit\tfail\tcase=host runtime=none - gpu.toolkit is host but ...\nresult\tfail\tx\n")
    assert plan.toolkit_case(report) == {"status": "fail", "case": "host", "runtime": "none"}
    assert plan.toolkit_case({"result": ("ok", "")})["case"] == "none"
