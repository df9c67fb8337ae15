"""Footprint figures per stack, the guard's message, and the guard script run for real."""

from __future__ import annotations

import copy
import os
import pathlib
import stat
import subprocess

import pytest

from components.kubeflow import footprint, footprint_guard, kfp_plan
from stacks.settings import parse_settings
from tests.harness import stack_raw


def settings(stack: str, **kubeflow):
    raw = copy.deepcopy(stack_raw(stack))
    raw.setdefault("kubeflow", {}).update(kubeflow)
    return parse_settings(raw, stack)


def test_full_install_counts_every_selected_component_its_sidecars_and_the_platform():
    fp = footprint.footprint(settings("dev"))
    names = [n.name for n in fp.needs]
    assert "Istio (platform layer)" in names and "Kubeflow Pipelines" in names and "Katib" not in names
    kfp = footprint.COMPONENTS["pipelines"]
    assert kfp.total_cpu_m == 970 + 12 * footprint.SIDECAR_CPU_M
    assert fp.cpu_m == sum(n.total_cpu_m for n in fp.needs)


def test_cloud_needs_more_than_laptop_and_edge_is_the_trimmed_kfp():
    assert footprint.footprint(settings("cloud")).memory_mi > footprint.footprint(settings("dev")).memory_mi
    edge = footprint.footprint(settings("edge"))
    assert (edge.cpu_m, edge.memory_mi) == kfp_plan.trimmed_totals()
    assert footprint.footprint(settings("dev", mode="none")).needs == ()


def test_check_passes_when_it_fits_and_names_the_biggest_switches_otherwise():
    fp = footprint.footprint(settings("cloud"))
    assert footprint.check(fp, fp.cpu_m, fp.memory_mi) is None
    msg = footprint.check(fp, 4000, 8192)
    assert msg.startswith("the selected Kubeflow components do not fit the nodes: ")
    assert f"{fp.cpu_m}m CPU needed, 4000m allocatable" in msg
    assert f"{fp.memory_mi}Mi memory needed, 8192Mi allocatable" in msg
    # the biggest memory users first, each as the config key that switches it off
    assert "kubeflow.components.pipelines (1090m CPU, 4032Mi)" in msg
    assert msg.index("kubeflow.components.pipelines") < msg.index("kubeflow.components.modelRegistry")


def fake_k3s(tmp_path, nodes: str):
    """A `k3s` that answers `kubectl get nodes -o jsonpath=...` with the given allocatable lines."""
    path = tmp_path / "k3s"
    path.write_text(f"#!/bin/sh\nprintf '{nodes}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def run_guard(tmp_path, stack: str, nodes: str) -> subprocess.CompletedProcess:
    s = settings(stack)
    text = footprint_guard.script(s).replace("/usr/local/bin/k3s", str(fake_k3s(tmp_path, nodes)))
    # as_root would use sudo when the test does not run as root
    text = text.replace('as_root "$K3S_BIN"', '"$K3S_BIN"')
    return subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True, env={**os.environ})


def test_guard_script_passes_on_big_enough_nodes(tmp_path):
    result = run_guard(tmp_path, "dev", "16 65536Mi\\n")
    assert result.returncode == 0, result.stderr
    assert "fits the nodes (16000m / 65536Mi allocatable)" in result.stderr


@pytest.mark.parametrize("nodes,cpu,mem", [("3500m 8145560Ki\\n", 3500, 7954), ("2 4Gi\\n1500m 4194304Ki\\n", 3500, 8192)])
def test_guard_script_stops_with_the_components_to_switch_off(tmp_path, nodes, cpu, mem):
    result = run_guard(tmp_path, "cloud", nodes)
    assert result.returncode == 1
    fp = footprint.footprint(settings("cloud"))
    # the same message as footprint.check, summed over the nodes
    assert f"ERROR: {footprint.check(fp, cpu, mem)}" in result.stderr


def test_footprint_script_prints_every_stack_with_its_total():
    import sys

    script = pathlib.Path(footprint.__file__).resolve().parents[2] / "scripts" / "kubeflow_footprint.py"
    result = subprocess.run([sys.executable, str(script)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for stack in ("dev", "edge", "cloud"):
        fp = footprint.footprint(settings(stack))
        section = result.stdout.split(f"== {stack} ")[1].split("\n\n")[0]
        assert f"{'total':40} {fp.cpu_m:>8} {fp.memory_mi:>12}" in section
        for need in fp.needs:
            assert need.name in section
