"""Every upstream path the program applies exists at the pinned tags, the catalog follows the example's
order, and the figures the program carries (README table, sidecars, namespace labels) are upstream's."""

from __future__ import annotations

import filecmp
import re

import pytest
import yaml

from components.kubeflow import footprint, kfp_plan, kubeflow_plan as kp
from tests.contract import kubeflow_upstream as up


@pytest.fixture(scope="module")
def manifests(upstream):
    return upstream / "kubeflow-manifests-26.03"


@pytest.fixture(scope="module")
def kfp_tree(upstream):
    return upstream / "kubeflow-pipelines-2.16.0" / "manifests" / "kustomize"


def example_paths(manifests) -> list[str]:
    doc = yaml.safe_load((manifests / "example" / "kustomization.yaml").read_text())
    return [r.removeprefix("../") for r in doc["resources"]]


def test_every_catalog_path_is_a_kustomization_at_26_03(manifests):
    for step in kp.CATALOG:
        assert (manifests / step.path / "kustomization.yaml").is_file(), step.path


def test_catalog_and_exclusions_are_exactly_the_example_in_its_order(manifests):
    example = example_paths(manifests)
    in_example = [s.path for s in kp.CATALOG if s.path in example]
    assert set(in_example) | set(kp.NOT_APPLIED) == set(example)
    assert not set(in_example) & set(kp.NOT_APPLIED)
    assert in_example == [p for p in example if p in in_example], "catalog order differs from example order"
    # Only Model Registry is added (the example leaves it out; its README installs it).
    assert {s.component for s in kp.CATALOG if s.path not in example} == {"modelRegistry"}


def test_kfp_standalone_paths_exist_in_kfp_2_16_0_and_in_the_manifests_copy(kfp_tree, manifests):
    for path in (kfp_plan.CLUSTER_SCOPED, kfp_plan.PLATFORM_AGNOSTIC):
        assert (kfp_tree / path / "kustomization.yaml").is_file()
        copy = manifests / kfp_plan.MANIFESTS_COPY / path
        assert filecmp.cmp(kfp_tree / path / "kustomization.yaml", copy / "kustomization.yaml", shallow=False)


def test_own_namespaces_carry_upstreams_labels(upstream):
    rendered = upstream / "rendered" / "kubeflow-26.03"
    found = {}
    for step in kp.CATALOG:
        f = up.rendered_file(rendered, step.path)
        if f:
            found.update(up.provided(up.docs_of(f)).namespaces)
    for ns, labels in kp.OWN_NAMESPACES.items():
        assert found[ns] == labels, ns


def readme_table(manifests) -> dict[str, tuple[int, int]]:
    """Component -> (CPU m, memory Mi) from README's "Kubeflow Components Versions" table."""
    out = {}
    for line in (manifests / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"\d+m", cells[3]) and re.fullmatch(r"\d+Mi", cells[4]):
            out[cells[0]] = (int(cells[3][:-1]), int(cells[4][:-2]))
    return out


README_ROWS = {
    "pipelines": ["Kubeflow Pipelines"],
    "katib": ["Katib"],
    "centralDashboard": ["Central Dashboard"],
    "admissionWebhook": ["PodDefaults Webhook"],
    "notebooks": ["Notebook Controller", "Jupyter Web Application"],
    "profiles": ["Profiles + KFAM"],
    "pvcViewer": ["PVC Viewer Controller"],
    "volumes": ["Volumes Web Application"],
    "tensorboards": ["Tensorboard Controller"],
    "knative": ["Knative"],
    "kserve": ["KServe", "KServe Models Web Application"],
    "trainer": ["Trainer"],
    "spark": ["Spark Operator"],
    "modelRegistry": ["Kubeflow Model Registry"],
}


def test_component_figures_are_the_readme_table(manifests):
    table = readme_table(manifests)
    for key, rows in README_ROWS.items():
        need = footprint.COMPONENTS[key]
        cpu = sum(table[r][0] for r in rows)
        mem = sum(table[r][1] for r in rows)
        if key == "tensorboards":  # README has no figure for its web app: counted as the volumes web app
            cpu, mem = cpu + table["Volumes Web Application"][0], mem + table["Volumes Web Application"][1]
        assert (need.cpu_m, need.memory_mi) == (cpu, mem), key
    base = {n.name: (n.cpu_m, n.memory_mi) for n in footprint.BASE}
    assert base["Istio (platform layer)"] == table["Istio"]
    assert base["cert-manager (platform layer)"] == table["Cert Manager"]
    assert base["Dex + oauth2-proxy"] == tuple(a + b for a, b in zip(table["Dex"], table["OAuth2-Proxy"]))


def test_sidecar_counts_are_the_injected_workloads_of_the_rendered_manifests(upstream):
    rendered = upstream / "rendered" / "kubeflow-26.03"
    injected = {"kubeflow", "kubeflow-system", "knative-serving"}
    counts: dict[str, int] = {}
    for step in kp.CATALOG:
        f = up.rendered_file(rendered, step.path)
        if f is None:
            continue
        for d in up.docs_of(f):
            template = (d.get("spec") or {}).get("template") or {}
            meta = template.get("metadata") or {}
            if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"].get("namespace") in injected and (
                meta.get("labels", {}).get("sidecar.istio.io/inject") != "false"
                and meta.get("annotations", {}).get("sidecar.istio.io/inject") != "false"
            ):
                counts[step.component] = counts.get(step.component, 0) + d["spec"].get("replicas", 1)
    for key, need in footprint.COMPONENTS.items():
        if key in ("trainer", "modelRegistry"):
            continue  # not rendered; counted from their kustomizations
        assert need.sidecars == counts.get(key, 0), key


def test_sidecar_request_is_the_platforms_istio_proxy_request():
    istio_plan = pytest.importorskip("components.istio.istio_plan")
    from tests.harness import stack_raw
    from stacks.settings import parse_settings

    values = istio_plan.istiod_values(parse_settings(stack_raw("cloud"), "cloud"))
    requests = values["global"]["proxy"]["resources"]["requests"]
    assert requests == {"cpu": f"{footprint.SIDECAR_CPU_M}m", "memory": f"{footprint.SIDECAR_MEMORY_MI}Mi"}


def test_trainer_and_model_registry_declared_webhooks_exist_upstream(manifests):
    """Not rendered: check the webhook names and serving Deployments against their source files."""
    trainer = next(s for s in kp.CATALOG if s.name == "trainer")
    webhook = manifests / "applications/trainer/upstream/base/webhook"
    for kind, name, _ns, deployment in trainer.webhooks:
        assert f"kind: {kind}" in (webhook / "manifests.yaml").read_text()
        assert f"value: {name}" in (webhook / "patch.yaml").read_text()  # the configuration's final name
        assert deployment in (manifests / "applications/trainer/overlays/kustomization.yaml").read_text()
    # Model Registry (db, istio options, UI) has no admission webhooks of its own.
    for step in kp.CATALOG:
        if step.component == "modelRegistry":
            assert not step.webhooks
            for f in (manifests / step.path).rglob("*.yaml"):
                assert "WebhookConfiguration" not in f.read_text(), f


def test_profile_namespaces_are_labelled_baseline_by_the_pss_overlay(upstream):
    """Issue 6: profile namespaces get Pod Security `baseline`; applications/profiles/pss (applied as the
    profiles step) configures the profiles controller to label every profile namespace so."""
    assert kp.CATALOG_BY_NAME["profiles"].path == "applications/profiles/pss"
    docs = up.docs_of(up.rendered_file(upstream / "rendered" / "kubeflow-26.03", "applications/profiles/pss"))
    [labels] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("namespace-labels-data")]
    text = "".join(labels["data"].values())
    assert 'pod-security.kubernetes.io/enforce: "baseline"' in text


def test_profile_spec_fits_the_profile_crd(upstream):
    docs = up.docs_of(up.rendered_file(upstream / "rendered" / "kubeflow-26.03", "applications/profiles/pss"))
    [crd] = [d for d in docs if d["kind"] == "CustomResourceDefinition" and d["spec"]["names"]["kind"] == "Profile"]
    [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["served"]
    props = v1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    from stacks.settings import Quota

    spec = kp.profile_spec("a@b.c", Quota(cpu="1", memory="1Gi", gpu="1"))
    assert set(spec) <= set(props)
    assert set(spec["owner"]) <= set(props["owner"]["properties"])
    assert "hard" in props["resourceQuotaSpec"]["properties"]
