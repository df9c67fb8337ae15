"""stacks/settings/gpu.py: the `gpu` section and the GPU kind a node names."""

from __future__ import annotations

import pytest

from stacks import profiles
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests.stacks.settings.raw import SSH_NODE, edge, problems, settings, stack


def test_jetson_needs_arm64():
    raw = edge(nodes=[dict(SSH_NODE, gpu="jetson", arch="amd64")])
    msg = problems(raw)["nodes[0].gpu"]
    assert "'jetson' cannot run on arch 'amd64'" in msg and "arm64" in msg


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_nvidia_runs_on_both_arches(arch):
    assert parse_settings(edge(nodes=[dict(SSH_NODE, gpu="nvidia", arch=arch)],
                               kubeflow={"images": kfp_arm64_images()})).gpu_nodes


def test_unknown_gpu_kind():
    assert "none, nvidia, jetson" in problems(edge(nodes=[dict(SSH_NODE, gpu="amd")]))["nodes[0].gpu"]


def test_host_toolkit_with_the_operators_driver_is_refused():
    found = problems(stack("cloud", gpu={"installDriver": True, "toolkit": "host"}), "cloud")
    assert "operator's toolkit" in found["gpu.toolkit"]


def test_the_toolkit_follows_the_profile_unless_the_operator_installs_the_driver():
    for name, profile in (("dev", "laptop"), ("edge", "edge"), ("cloud", "cloud")):
        assert settings(name).gpu.toolkit == profiles.PROFILES[profile].gpu_toolkit
    # The operator's driver container is wired to the operator's toolkit only: it becomes the default.
    assert settings("cloud", gpu={"installDriver": True}).gpu.toolkit == "operator"


@pytest.mark.parametrize("gpu,key", [({"timeSlicing": 65}, "gpu.timeSlicing"), ({"timeSlicing": -1}, "gpu.timeSlicing"),
                                     ({"mig": "all"}, "gpu.mig"), ({"toolkit": "container"}, "gpu.toolkit"),
                                     ({"installDriver": "yes"}, "gpu.installDriver"), ({"timeslicing": 2}, "gpu.timeslicing")])
def test_bad_gpu_values_name_their_key(gpu, key):
    assert key in problems(stack("cloud", gpu=gpu), "cloud")


def test_gpu_settings_without_a_gpu_node_are_a_warning_not_an_error():
    assert any("kubeflow-k3s:gpu is ignored" in w for w in settings("dev", gpu={"timeSlicing": 2}).warnings())
    assert not any("kubeflow-k3s:gpu " in w for w in settings("cloud").warnings())
