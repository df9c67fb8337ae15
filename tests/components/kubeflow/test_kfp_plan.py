"""Standalone KFP for edge: sources, the trim, and the credentials overlay."""

from __future__ import annotations

import copy

from components.kubeflow import kfp_plan
from stacks.settings import parse_settings
from tests.harness import stack_raw


def edge(**kubeflow):
    raw = copy.deepcopy(stack_raw("edge"))
    raw.setdefault("kubeflow", {}).update(kubeflow)
    return parse_settings(raw, "edge")


def test_sources_are_kfp_2_16_0():
    plan = kfp_plan.plan(edge())
    assert plan.cluster_scoped == "https://github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=2.16.0"
    assert plan.overlay.resource == "https://github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=2.16.0"
    assert plan.env_directory == ".build/kubeflow/edge/kfp"


def test_local_checkout_uses_the_kfp_copy_inside_kubeflow_manifests():
    plan = kfp_plan.plan(edge(manifestsPath="vendor/manifests"))
    assert plan.cluster_scoped == "vendor/manifests/applications/pipeline/upstream/cluster-scoped-resources"
    assert plan.overlay.resource == "../../../../vendor/manifests/applications/pipeline/upstream/env/platform-agnostic"


def test_trim_fits_a_small_device_and_limits_are_above_requests():
    cpu, mem = kfp_plan.trimmed_totals()
    assert cpu <= kfp_plan.MAX_CPU_M == 500
    assert mem <= kfp_plan.MAX_MEMORY_MI == 1536
    for key, (c, m, cl, ml) in kfp_plan.TRIM.items():
        assert 0 < c <= cl and 0 < m <= ml, key


def test_overlay_removes_upstream_credentials_and_sets_a_mysql_root_password():
    overlay = kfp_plan.plan(edge()).overlay
    deleted = {(p.kind, p.name) for p in overlay.patches if p.delete}
    assert deleted == {("Secret", "mlpipeline-minio-artifact"), ("Secret", "mysql-secret")}
    [mysql] = [p for p in overlay.patches if p.name == "mysql"]
    [container] = mysql.merge["spec"]["template"]["spec"]["containers"]
    assert {"name": "MYSQL_ALLOW_EMPTY_PASSWORD", "$patch": "delete"} in container["env"]
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "1024Mi"}  # >= upstream's 800Mi request
    assert "minio123" not in overlay.text()
