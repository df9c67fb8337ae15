"""The GPU checks of preflight.sh, run for real in a user+mount namespace that fakes the host's GPU state.

The sandbox (unshare --user --map-root-user --mount) lays an overlay over /usr/bin and /etc, a tmpfs over
/dev (with the real /dev/null bound back) and a directory over /sys/bus/pci/devices, then runs the
rendered script with `sh`, stdin closed, as pulumi-command would. Nothing outside the namespace changes.
"""

from __future__ import annotations

import copy
import platform
import shutil
import subprocess

import pytest

from components.gpu import gpu_plan
from components.k3s import k3s_plan, scripts
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests.harness import stack_raw

SETUP = r"""
set -e
T=$SANDBOX
mkdir -p "$T/bin-up" "$T/bin-work" "$T/etc-up" "$T/etc-work" "$T/dev" "$T/pci"
mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$T/bin-up,workdir=$T/bin-work" /usr/bin
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-up,workdir=$T/etc-work" /etc
mount --bind "$T/pci" /sys/bus/pci/devices
touch "$T/null"; mount --bind /dev/null "$T/null"
mount -t tmpfs none /dev; touch /dev/null; mount --bind "$T/null" /dev/null
if [ "$FAKE_PCI" = 1 ]; then mkdir -p "$T/pci/0000:01:00.0"; echo 0x10de > "$T/pci/0000:01:00.0/vendor"; fi
if [ "$FAKE_DEV" = 1 ]; then touch /dev/nvidia0 /dev/nvidiactl; fi
if [ "$FAKE_TEGRA" = 1 ]; then touch /etc/nv_tegra_release; fi
if [ "$FAKE_RUNTIME" = 1 ]; then printf '#!/bin/sh\n' > /usr/bin/nvidia-container-runtime; chmod +x /usr/bin/nvidia-container-runtime; fi
exec sh -c "$SCRIPT" </dev/null
"""


def sandbox_available() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not sandbox_available(), reason="user+mount namespaces (unshare) are not available")


def settings(gpu: str, **gpu_settings):
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0]["gpu"] = gpu
    raw["gpu"] = gpu_settings
    return parse_settings(raw, "edge")


def preflight(tmp_path, s, *, pci=False, dev=False, tegra=False, runtime=False):
    arch = "amd64" if platform.machine() in ("x86_64", "amd64") else "arm64"
    params = {**k3s_plan.preflight_params(s, s.nodes[0]), "MIN_MEMORY_MIB": 256, "MIN_DISK_GIB": 1, "EXPECT_ARCH": arch}
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SANDBOX": str(tmp_path), "SCRIPT": scripts.render("preflight.sh", params),
           "FAKE_PCI": str(int(pci)), "FAKE_DEV": str(int(dev)), "FAKE_TEGRA": str(int(tegra)),
           "FAKE_RUNTIME": str(int(runtime))}
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SETUP],
                            env=env, capture_output=True, text=True, timeout=60)
    return k3s_plan.parse_preflight_report(result.stdout), result


def test_install_driver_needs_only_the_pci_device(tmp_path):
    report, _ = preflight(tmp_path, settings("nvidia", installDriver=True), pci=True)
    assert report["gpu"][0] == "ok", report["gpu"]
    assert gpu_plan.toolkit_case(report) == {"status": "ok", "case": "operator", "runtime": "none"}


def test_without_install_driver_the_host_driver_is_required(tmp_path):
    report, result = preflight(tmp_path, settings("nvidia"), pci=True)
    assert report["gpu"][0] == "fail" and "gpu.installDriver" in report["gpu"][1]
    assert result.returncode == 1
    report, _ = preflight(tmp_path / "b", settings("nvidia"), pci=True, dev=True)
    assert report["gpu"][0] == "ok"


def test_host_toolkit_case_is_reported_and_required_when_configured(tmp_path):
    report, _ = preflight(tmp_path, settings("nvidia", toolkit="host"), pci=True, dev=True, runtime=True)
    assert gpu_plan.toolkit_case(report) == {"status": "ok", "case": "host", "runtime": "/usr/bin/nvidia-container-runtime"}
    report, result = preflight(tmp_path / "b", settings("nvidia", toolkit="host"), pci=True, dev=True)
    case = gpu_plan.toolkit_case(report)
    assert case["status"] == "fail" and case["case"] == "host"
    assert "gpu.toolkit: operator" in report["gpu-toolkit"][1] and "gpu-toolkit" in result.stderr


def test_operator_case_reports_a_host_runtime_it_could_use(tmp_path):
    report, _ = preflight(tmp_path, settings("nvidia", toolkit="operator"), pci=True, dev=True, runtime=True)
    assert gpu_plan.toolkit_case(report) == {"status": "ok", "case": "operator", "runtime": "/usr/bin/nvidia-container-runtime"}


def test_jetson_needs_jetpacks_container_runtime(tmp_path):
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"][0].update(gpu="jetson", arch="arm64")
    raw["kubeflow"] = {"images": kfp_arm64_images()}  # KFP on an arm64-only cluster needs them (issue 9)
    s = parse_settings(raw, "edge")
    report, result = preflight(tmp_path, s, tegra=True)
    assert report["gpu"][0] == "ok"
    case = gpu_plan.toolkit_case(report)
    assert case["status"] == "fail" and case["case"] == "jetson" and "nvidia-container" in report["gpu-toolkit"][1]
    report, _ = preflight(tmp_path / "b", s, tegra=True, runtime=True)
    assert gpu_plan.toolkit_case(report)["status"] == "ok"


def test_no_gpu_node_reports_the_none_case(tmp_path):
    raw = copy.deepcopy(stack_raw("edge"))
    s = parse_settings(raw, "edge")
    report, _ = preflight(tmp_path, s)
    assert gpu_plan.toolkit_case(report)["case"] == "none" and report["gpu"][0] == "skip"
