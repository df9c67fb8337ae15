"""The GPU releases as Helm really renders them (tests/helm_render.py), and what a settings change does to them.

The operator's own behaviour on what Helm renders is taken from its source at v26.7.0 (cited in
components/gpu/gpu_plan.py): `devicePlugin.config.name` is the name of a configMap volume in the device plugin
DaemonSet's pod template (handleDevicePluginConfig), the DaemonSets update with `daemonsets.updateStrategy`,
and the operands run with `spec.daemonsets.tolerations`.
"""

from __future__ import annotations


import pytest
import yaml

from components.gpu import gpu_plan
from components.k3s import k3s_plan
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests import harness, scheduling
from tests.helm_render import one, render
from tests.stackdiff import HELM_TYPES, evaluate_change, stack_config

JETSON_EDGE = {"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64", "gpu": "jetson"}],
               "kubeflow": {"images": kfp_arm64_images()}}  # KFP on an arm64-only cluster needs them (issue 9)
CLOUD_OPERATOR_TOOLKIT = {"gpu": {**stack_config("cloud").get("gpu", {}), "toolkit": "operator"}}


def release(run: harness.Run, name: str) -> harness.Registration:
    return run.get(name, "kubernetes:helm.sh/v3:Release")


@pytest.fixture(scope="module")
def cloud_operator_toolkit() -> harness.Run:
    return harness.run_stack("cloud", overrides=CLOUD_OPERATOR_TOOLKIT)


@pytest.fixture(scope="module")
def jetson_edge() -> harness.Run:
    return harness.run_stack("edge", overrides={**JETSON_EDGE, "gpu": {"timeSlicing": 2}})


def cluster_policy(docs) -> dict:
    return one(docs, "ClusterPolicy")["spec"]


def test_operator_release_renders_with_the_operators_toolkit_for_k3s(upstream, tmp_path, cloud_operator_toolkit):
    docs = render(upstream, release(cloud_operator_toolkit, "gpu-operator"), tmp_path)
    spec = cluster_policy(docs)
    assert spec["toolkit"]["enabled"] is True
    assert {"name": "CONTAINERD_SOCKET", "value": gpu_plan.K3S_CONTAINERD_SOCKET} in spec["toolkit"]["env"]
    assert spec["toolkit"]["installDir"] == gpu_plan.TOOLKIT_INSTALL_DIR
    assert spec["operator"]["runtimeClass"] == gpu_plan.RUNTIME_CLASS
    assert spec["driver"]["enabled"] is False


def test_operator_release_renders_without_a_toolkit_on_the_hosts_toolkit(upstream, tmp_path, runs):
    spec = cluster_policy(render(upstream, release(runs["cloud"], "gpu-operator"), tmp_path))
    assert spec["toolkit"]["enabled"] is False
    assert spec["devicePlugin"]["enabled"] is True and spec["cdi"]["enabled"] is True


def test_time_slicing_config_name_is_the_configmap_helm_creates(upstream, tmp_path, runs):
    docs = render(upstream, release(runs["cloud"], "gpu-operator"), tmp_path)
    name = cluster_policy(docs)["devicePlugin"]["config"]["name"]
    config = yaml.safe_load(one(docs, "ConfigMap", name)["data"][gpu_plan.SHARING_CONFIG_KEY])
    replicas = stack_config("cloud")["gpu"]["timeSlicing"]
    assert config["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": replicas}]
    assert cluster_policy(docs)["devicePlugin"]["config"]["default"] == gpu_plan.SHARING_CONFIG_KEY


def test_runtime_class_command_finds_the_operator_it_stops(upstream, tmp_path, runs):
    docs = render(upstream, release(runs["cloud"], "gpu-operator"), tmp_path)
    deployment = one(docs, "Deployment", gpu_plan.OPERATOR_DEPLOYMENT)
    assert deployment["metadata"]["namespace"] == gpu_plan.OPERATOR_NAMESPACE
    key, value = gpu_plan.OPERATOR_SELECTOR.split("=")
    assert deployment["spec"]["template"]["metadata"]["labels"][key] == value
    # And the runtime-class command is deleted before the release: it depends on it.
    run = runs["cloud"]
    assert run.depends_on("gpu-runtimeclass", "gpu-operator")
    command = run.get("gpu-runtimeclass")
    assert "ACTION=keep" in command.inputs["delete"] and "ACTION=ensure" in command.inputs["create"]
    assert release(run, "gpu-operator").inputs["atomic"] is False  # a failed first install keeps the RuntimeClass


def test_operator_operands_tolerate_the_gpu_nodes_taint(upstream, tmp_path, runs):
    spec = cluster_policy(render(upstream, release(runs["cloud"], "gpu-operator"), tmp_path))
    s = parse_settings(stack_config("cloud"), "cloud")
    gpu = scheduling.node_model(s, s.node("gpu-1"))
    pod = {"spec": {"containers": [{"name": "device-plugin"}], "tolerations": spec["daemonsets"]["tolerations"]}}
    assert scheduling.why_not(scheduling.admit(pod, set()), gpu) is None


def test_jetson_device_plugin_renders_for_the_jetson_node(upstream, tmp_path, jetson_edge):
    docs = render(upstream, release(jetson_edge, "gpu-device-plugin"), tmp_path)
    daemonset = one(docs, "DaemonSet", "nvidia-device-plugin")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == gpu_plan.RUNTIME_CLASS
    s = parse_settings({**stack_config("edge"), **JETSON_EDGE}, "edge")
    labels = dict(label.split("=", 1) for label in k3s_plan.node_labels(s, s.node("edge-1")))
    assert all(labels.get(k) == v for k, v in pod["nodeSelector"].items())


# A time-slicing change rolls the device plugin ---------------------------------------------------------

def test_time_slicing_change_rolls_the_operators_device_plugin(upstream, tmp_path, runs):
    change = evaluate_change("cloud", {"gpu.timeSlicing": 2}, before=runs["cloud"])
    names = {change.registration(u).name for u in change.changed}
    assert names == {"gpu-operator"}, change.describe()
    assert not change.added and not change.removed
    before = render(upstream, release(change.before, "gpu-operator"), tmp_path)
    (tmp_path / "after").mkdir()
    after = render(upstream, release(change.after, "gpu-operator"), tmp_path / "after")
    old, new = (cluster_policy(d)["devicePlugin"]["config"]["name"] for d in (before, after))
    # The operator puts this name into the device plugin DaemonSet's pod template (a configMap volume):
    # a new name is a new template, which its RollingUpdate strategy rolls out node by node.
    assert old != new
    assert cluster_policy(after)["daemonsets"]["updateStrategy"] == "RollingUpdate"
    assert yaml.safe_load(one(after, "ConfigMap", new)["data"]["any"])["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 2
    assert not [d for d in after if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == old]


def test_time_slicing_change_rolls_the_jetson_device_plugin(upstream, tmp_path, jetson_edge):
    after_run = harness.run_stack("edge", overrides={**JETSON_EDGE, "gpu": {"timeSlicing": 3}})
    before = render(upstream, release(jetson_edge, "gpu-device-plugin"), tmp_path)
    (tmp_path / "after").mkdir()
    after = render(upstream, release(after_run, "gpu-device-plugin"), tmp_path / "after")

    def template(docs):
        return one(docs, "DaemonSet", "nvidia-device-plugin")["spec"]["template"]["metadata"]["annotations"]

    assert template(before)["checksum/config"] != template(after)["checksum/config"]


def test_the_diff_of_a_time_slicing_change_is_only_the_gpu_release(runs):
    change = evaluate_change("cloud", {"gpu.timeSlicing": 8}, before=runs["cloud"])
    assert all(change.registration(u).type in HELM_TYPES for u in change.touched), change.describe()


def test_adding_a_first_gpu_node_to_cloud_touches_no_server_and_not_longhorn(runs):
    # The admission plugin and Longhorn's GPU toleration are there before any GPU node.
    raw_nodes = stack_config("cloud")["nodes"]
    before = harness.run_stack("cloud", overrides={"nodes": [n for n in raw_nodes if n.get("gpu") != "nvidia"]})
    change = evaluate_change("cloud", {}, before=before)
    changed = {change.registration(u).name for u in change.changed}
    # A server's pre-pull list may grow by the operator's DaemonSet images (a leaf: it restarts nothing).
    assert not {n for n in changed if n.startswith("k3s-server-") and not n.endswith("-prepull")}, change.describe()
    assert "storage-longhorn" not in changed, change.describe()
    added = {change.registration(u).name for u in change.added}
    assert {"gpu-operator", "gpu-settled", "gpu-runtimeclass", "k3s-gpu-1-install"} <= added


def test_jetson_device_plugin_reaches_a_tainted_jetson_node_on_cloud(upstream, tmp_path):
    # A cloud Jetson agent carries the GPU taint too; the rendered plugin pod must still fit it.
    nodes = [*stack_config("cloud")["nodes"], {"name": "jetson-1", "host": "192.0.2.41", "role": "agent", "arch": "arm64",
             "gpu": "jetson", "hostKey": stack_config("cloud")["nodes"][0]["hostKey"]}]
    run = harness.run_stack("cloud", overrides={"nodes": nodes})
    docs = render(upstream, release(run, "gpu-device-plugin"), tmp_path)
    pod = {"spec": one(docs, "DaemonSet", "nvidia-device-plugin")["spec"]["template"]["spec"]}
    s = parse_settings({**stack_config("cloud"), "nodes": nodes}, "cloud")
    fits = [n.name for n in s.nodes if scheduling.why_not(scheduling.admit(pod, set()), scheduling.node_model(s, n)) is None]
    assert fits == ["jetson-1"]
