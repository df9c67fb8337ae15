"""Edge's Kubeflow Pipelines: the trim applied to the rendered KFP 2.16.0 standalone manifests gives every
container requests and limits and requests at most 0.5 CPU and 1.5 GiB in total (upstream: 0.64 CPU,
2.9 GiB, seven containers unbounded)."""

from __future__ import annotations

import copy
import re

import pytest

from components.kubeflow import kfp_plan
from stacks.settings import parse_settings
from tests.kustomize_lite import apply, load
from tests.harness import stack_raw

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def cpu_m(q: str) -> float:
    return float(q[:-1]) if q.endswith("m") else float(q) * 1000


def mem_mi(q: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q)
    return float(m.group(1)) * units.get(m.group(2), 1 / 2**20)


def containers(docs):
    for d in docs:
        if d["kind"] in WORKLOADS:
            spec = d["spec"]["template"]["spec"]
            replicas = d["spec"].get("replicas", 1)
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                yield d["metadata"]["name"], c, replicas


def totals(docs) -> tuple[float, float]:
    cpu = mem = 0.0
    for _, c, replicas in containers(docs):
        requests = (c.get("resources") or {}).get("requests") or {}
        cpu += replicas * cpu_m(requests.get("cpu", "0"))
        mem += replicas * mem_mi(requests.get("memory", "0"))
    return cpu, mem


@pytest.fixture(scope="module")
def rendered(upstream):
    return load(upstream / "rendered" / "kubeflow-pipelines-2.16.0" / "env_platform-agnostic.yaml")


@pytest.fixture(scope="module")
def trimmed(rendered):
    return apply(rendered, kfp_plan.plan(parse_settings(copy.deepcopy(stack_raw("edge")), "edge")).overlay)


def test_upstream_is_what_the_issue_says(rendered):
    cpu, mem = totals(rendered)
    assert cpu == 642 and round(mem / 1024, 1) == 2.9
    no_requests = [n for n, c, _ in containers(rendered) if not (c.get("resources") or {}).get("requests")]
    no_limits = [n for n, c, _ in containers(rendered) if not (c.get("resources") or {}).get("limits")]
    assert len(no_requests) == 7
    assert len(no_limits) == len(list(containers(rendered))) == 14


def test_the_trim_covers_exactly_the_kfp_containers(rendered):
    assert {(n, c["name"]) for n, c, _ in containers(rendered)} == set(kfp_plan.TRIM)


def test_every_container_gets_requests_and_limits(trimmed):
    for name, c, _ in containers(trimmed):
        resources = c.get("resources") or {}
        for part in ("requests", "limits"):
            assert set(resources.get(part) or {}) >= {"cpu", "memory"}, (name, c["name"], part)


def test_the_whole_install_requests_at_most_half_a_cpu_and_1_5_gib(trimmed):
    cpu, mem = totals(trimmed)
    assert cpu <= 500 and mem <= 1536
    assert (cpu, mem) == kfp_plan.trimmed_totals()  # the figure the footprint guard uses
