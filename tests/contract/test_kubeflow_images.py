"""Issue 9, KFP on arm64 and the edge footprint, from the rendered KFP 2.16.0 objects:

- the amd64-only image list and the Deployments running those images are what KFP 2.16 renders;
- the shipped edge stack (amd64) is accepted; an arm64 variant is refused naming kubeflow.images and
  kubeflow/pipelines#12705 unless every amd64-only image has an override, and then the real render
  (kustomize over the generated overlay) carries no amd64-only image at all, driver and launcher included;
- a mixed-architecture cluster pins every KFP pod that runs an amd64-only image to amd64 nodes, and
  pipeline runs through Argo's workflowDefaults;
- the edge trim's limits are at or above upstream's own requests.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from components.kubeflow import kfp_plan, kubeflow_overlay as ov, kubeflow_plan as kp
from stacks import settings as sm
from stacks.settings import ConfigError, parse_settings
from tests.arm64 import kfp_arm64_images
from tests.contract import kubeflow_upstream as up
from tests.contract import rendered_stack as rs
from tests.contract.test_kfp_edge_footprint import cpu_m, mem_mi
from tests.harness import stack_raw

ARM_EDGE = {"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64"}


def kfp_images(docs) -> dict[str, set[str]]:
    """image name -> Deployments using it (containers, and the driver/launcher env of the API server)."""
    out: dict[str, set[str]] = {}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"] + (d["spec"]["template"]["spec"].get("initContainers") or []):
            out.setdefault(ov.split_image(c["image"])[0], set()).add(d["metadata"]["name"])
            for e in c.get("env") or []:
                if e["name"] in kp.KFP_RUNTIME_IMAGES:
                    out.setdefault(ov.split_image(e["value"])[0], set()).add(d["metadata"]["name"])
    return out


def amd64_only(name: str) -> bool:
    # KFP's own images and ML Metadata's server (kubeflow/pipelines#12705, #10309)
    return name.startswith("ghcr.io/kubeflow/kfp-") or name.endswith("/ml_metadata_store_server")


@pytest.fixture(scope="module")
def standalone(upstream):
    return up.docs_of(upstream / "rendered" / "kubeflow-pipelines-2.16.0" / "env_platform-agnostic.yaml")


@pytest.fixture(scope="module")
def full(upstream):
    return up.docs_of(up.rendered_file(upstream / "rendered" / "kubeflow-26.03", "applications/pipeline/overlays"))


def test_the_amd64_only_list_is_what_kfp_renders(standalone, full):
    names = {n for docs in (standalone, full) for n in kfp_images(docs) if amd64_only(n)}
    assert names == set(sm.KFP_AMD64_ONLY_IMAGES)
    assert set(kp.KFP_RUNTIME_IMAGES.values()) <= names


def test_the_pinned_deployments_are_those_running_amd64_only_images(standalone, full):
    for docs, pinned in ((standalone, kp.KFP_DEPLOYMENTS_STANDALONE), (full, kp.KFP_DEPLOYMENTS_FULL)):
        running = {d for n, ds in kfp_images(docs).items() if amd64_only(n) for d in ds}
        assert running == set(pinned)


def test_the_shipped_edge_stack_is_amd64_and_accepted():
    s = parse_settings(copy.deepcopy(stack_raw("edge")), "edge")
    assert {n.arch for n in s.nodes} == {"amd64"} and s.kubeflow.mode == "pipelines"
    assert not kp.pin_kfp_to_amd64(s)


@pytest.mark.parametrize("images", [{}, {"ghcr.io/kubeflow/kfp-api-server": "r.example.com/api-server:2.16.0"}])
def test_arm64_without_every_override_is_refused_naming_the_key(images):
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"] = [ARM_EDGE]
    raw["kubeflow"] = {"images": images}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, "edge")
    msg = dict(err.value.problems)["kubeflow.images"]
    assert "kubeflow/pipelines#12705" in msg and "ghcr.io/kubeflow/kfp-driver" in msg
    assert "ghcr.io/kubeflow/kfp-api-server" not in msg.split(":", 1)[1] or not images
    # full Kubeflow with pipelines on arm64 too; no KFP, no problem
    raw["kubeflow"] = {"mode": "none"}
    parse_settings(raw, "edge")


def test_the_edge_file_documents_the_arm64_recipe():
    text = (kp.PROJECT_ROOT / "Pulumi.edge.yaml").read_text()
    assert "arch: arm64" in text and "kubeflow/pipelines#12705" in text and "images:" in text


def test_arm64_with_overrides_renders_no_amd64_only_image(upstream):
    if up.kustomize_cmd() is None:
        pytest.skip("no kustomize or kubectl binary installed")
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"] = [ARM_EDGE]
    raw["kubeflow"] = {"images": kfp_arm64_images()}
    s = rs.settings(upstream, raw, "edge-arm64")
    assert not kp.pin_kfp_to_amd64(s)
    _, docs = rs.kfp_standalone(s)
    used = kfp_images(docs)
    assert not [n for n in used if n in sm.KFP_AMD64_ONLY_IMAGES], sorted(used)
    # every override is used, driver and launcher as env values of the API server
    assert set(kfp_arm64_images()) == {n for n in kfp_images(rs.kfp_standalone_upstream(s)) if amd64_only(n)}
    for n, replacement in kfp_arm64_images().items():
        assert ov.split_image(replacement)[0] in used, n


def test_mixed_architecture_pins_kfp_to_amd64(upstream):
    if up.kustomize_cmd() is None:
        pytest.skip("no kustomize or kubectl binary installed")
    raw = copy.deepcopy(stack_raw("edge"))
    raw["nodes"] = [dict(ARM_EDGE, arch="amd64"), dict(ARM_EDGE, name="pi-1", host="192.0.2.41", role="agent")]
    s = rs.settings(upstream, raw, "edge-mixed")
    assert kp.pin_kfp_to_amd64(s)
    _, docs = rs.kfp_standalone(s)
    for d in docs:
        if d["kind"] == "Deployment":
            runs_amd64_only = any(amd64_only(ov.split_image(c["image"])[0]) for c in d["spec"]["template"]["spec"]["containers"])
            selector = d["spec"]["template"]["spec"].get("nodeSelector") or {}
            assert (selector.get(kp.ARCH_LABEL) == "amd64") == runs_amd64_only, d["metadata"]["name"]
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "workflow-controller-configmap"]
    assert yaml.safe_load(cm["data"]["workflowDefaults"]) == {"spec": {"nodeSelector": {kp.ARCH_LABEL: "amd64"}}}
    # the trim survives the merge with the pin
    [api] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ml-pipeline"]
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "512Mi"


def test_override_image_is_what_kustomize_does(upstream, tmp_path):
    if up.kustomize_cmd() is None:
        pytest.skip("no kustomize or kubectl binary installed")
    images = {"ghcr.io/kubeflow/kfp-api-server": "r.example.com/api:9", "mysql": "r.example.com/mysql",
              "chrislusf/seaweedfs": "r.example.com/sw@sha256:" + "a" * 64}
    refs = ["ghcr.io/kubeflow/kfp-api-server:2.16.0", "mysql:8.4", "chrislusf/seaweedfs:4.00", "quay.io/argoproj/workflow-controller:v3.7.3"]
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}, "spec": {"containers": [{"name": "c", "image": r}]}}
            for i, r in enumerate(refs)]
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all(pods))
    (tmp_path / "kustomization.yaml").write_text(ov.Overlay("pods.yaml", images=images).text())
    real = [d["spec"]["containers"][0]["image"] for d in up.kustomize_build(tmp_path)]
    assert real == [ov.override_image(r, images) for r in refs]
    assert real[3] == refs[3]


def test_edge_limits_are_at_or_above_upstreams_requests(standalone):
    for d in standalone:
        if d["kind"] != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            requests = (c.get("resources") or {}).get("requests") or {}
            _, _, cpu_limit, mem_limit = kfp_plan.TRIM[(d["metadata"]["name"], c["name"])]
            if "memory" in requests:
                assert mem_limit >= mem_mi(requests["memory"]), (d["metadata"]["name"], mem_limit, requests)
            if "cpu" in requests:
                assert cpu_limit >= cpu_m(requests["cpu"]), (d["metadata"]["name"], cpu_limit, requests)
            assert mem_limit >= 128
