"""The image list of each stack equals the images of what the stack applies, rendered for real.

Per stack: real kustomize over the stack's generated overlays (kubeflow.manifestsPath pointed at the
26.03 tree with its remote bases vendored, as an air-gapped user prepares it with `tools.images
manifests`) and real `helm template` over every release with the stack's values. The committed data
file is up to date when those renders equal its entries and it holds nothing the generator would not
write (same keys, same value digests, same pins).
"""

from __future__ import annotations

import pathlib
import shutil

import pytest

from components.shared import images_plan
from stacks import versions
from tests import harness
from tools import images as tool
from tests.components.smoke.test_smoke import smoke_step_images as smoke_images


def _have_tools() -> None:
    if not (shutil.which("helm") and (shutil.which("kustomize") or shutil.which("kubectl"))):
        pytest.skip("helm and kustomize/kubectl are needed (scripts/run-tests.sh installs them into .tools/bin)")


@pytest.fixture(scope="module")
def tree(upstream, tmp_path_factory) -> pathlib.Path:
    _have_tools()
    return tool.prepare_manifests(upstream / "kubeflow-manifests-26.03", upstream / "kubeflow-remote-bases",
                                  tmp_path_factory.mktemp("images") / "manifests")


@pytest.fixture(scope="module")
def rendered(tree, upstream) -> dict[str, tuple[dict, dict]]:
    """{stack: ({kustomize key: images}, {release name: images})}, rendered once per module."""
    out = {}
    for stack in harness.STACKS:
        s = tool.stack_settings(stack)
        helm = {r.name: tool.render_release(r, upstream / "charts") for r in images_plan.releases(s)}
        out[stack] = (tool.render_stack_kustomize(s, tree), helm)
    return out


@pytest.mark.parametrize("stack", harness.STACKS)
def test_the_stack_list_is_exactly_the_images_of_the_rendered_objects(rendered, stack):
    kustomized, helm = rendered[stack]
    settings = tool.stack_settings(stack)
    truth = set().union(*kustomized.values(), *helm.values())
    # The smoke step's pods (tests/components/smoke/test_smoke.py derives them from its pipeline IR and GPU pods).
    truth |= {images_plan.Image(ref, where) for ref, where in smoke_images(settings)}
    listed = images_plan.stack_images(settings)
    assert not listed.inexact and not listed.missing
    assert {i.ref for i in listed.images} - {i.ref for i in truth} == set(), "listed but not rendered"
    assert {i.ref for i in truth} - {i.ref for i in listed.images} == set(), "rendered but not listed"
    assert listed.images == truth  # and each runs where the rendered object puts it
    assert len(truth) > 10


def test_each_stack_has_the_images_its_layers_need(rendered):
    refs = {s: {i.ref for part in rendered[s] for v in part.values() for i in v} for s in harness.STACKS}
    # Istio's proxy (injected sidecars, gateways with `image: auto`) comes from istiod's injector values.
    assert f"gcr.io/istio-release/proxyv2:{versions.CHARTS['istio-istiod'][2]}" in refs["dev"]
    assert not any("istio" in r for r in refs["edge"])  # edge: standalone KFP, no mesh
    # Images a workload is told to run later: Argo's executor, KFP's launcher and driver, Longhorn's engine.
    for stack in ("edge", "dev"):
        assert any(r.startswith("quay.io/argoproj/argoexec:") for r in refs[stack])
        assert any("kfp-launcher:" in r for r in refs[stack]) and any("kfp-driver:" in r for r in refs[stack])
    assert "docker.io/longhornio/longhorn-engine:v1.12.1" in refs["cloud"]
    # cloud's GPU hosts bring NVIDIA's container toolkit (gpu.toolkit: host): the operator deploys no toolkit,
    # but its device plugin runs there.
    assert not any("/container-toolkit:" in r for r in refs["cloud"])
    assert any("/k8s-device-plugin:" in r for r in refs["cloud"])
    # No driver container: hosts bring their driver unless gpu.installDriver.
    assert not any(r.startswith("nvcr.io/nvidia/driver:") for r in refs["cloud"])


def test_the_data_file_is_what_the_generator_writes(rendered, upstream):
    data = images_plan.data()
    assert data["kubeflow_manifests"] == versions.KUBEFLOW_MANIFESTS_REF
    assert data["charts"] == {k: v[2] for k, v in versions.CHARTS.items()}
    # Every entry the stacks use equals today's render.
    for stack in harness.STACKS:
        kustomized, helm = rendered[stack]
        for key, images in kustomized.items():
            assert images_plan._decode(data["kustomize"][key]) == images, key
        for rel in images_plan.releases(tool.stack_settings(stack)):
            assert images_plan._decode(data["helm"][rel.key][rel.digest]) == helm[rel.name], rel.name
    # The variants' releases too (helm is quick), and no entry the generator would not write.
    checked = {(r.key, r.digest) for stack in harness.STACKS for r in images_plan.releases(tool.stack_settings(stack))}
    wanted_keys, wanted_digests = set(), set()
    for s in tool.generator_settings():
        wanted_keys |= set(images_plan.kustomize_keys(s))
        for rel in images_plan.releases(s):
            wanted_digests.add((rel.key, rel.digest))
            if (rel.key, rel.digest) not in checked:
                checked.add((rel.key, rel.digest))
                assert images_plan._decode(data["helm"][rel.key][rel.digest]) == tool.render_release(rel, upstream / "charts")
    assert set(data["kustomize"]) == wanted_keys
    assert {(k, d) for k, v in data["helm"].items() for d in v} == wanted_digests


def test_releases_are_the_ones_the_graph_creates(runs):
    """images_plan.releases mirrors the layers: same releases, charts, namespaces and values."""
    for stack, run in runs.items():
        graph = {(r.inputs["name"], r.inputs["chart"], r.inputs["namespace"]): r.inputs.get("values") or {}
                 for r in run.by_type("kubernetes:helm.sh/v3:Release")}
        planned = {(r.name, versions.CHARTS[r.key][1], r.namespace): dict(r.values)
                   for r in images_plan.releases(tool.stack_settings(stack))}
        assert planned == graph, stack


def test_kubeflow_and_kfp_paths_are_the_ones_the_graph_applies(runs):
    for stack, run in runs.items():
        keys = images_plan.kustomize_keys(tool.stack_settings(stack))
        directories = run.by_type("kubernetes:kustomize/v2:Directory")
        assert len(keys) == len(directories), stack


def test_the_local_manifests_tree_has_no_remote_base_left(tree):
    """What `tools.images manifests` prepares renders offline: no applied kustomization names a URL."""
    from components.kubeflow import kubeflow_plan

    applied = [kubeflow_plan.Step(s.name, s.component, s.path) for s in kubeflow_plan.CATALOG]
    for k in tree.rglob("kustomization.yaml"):
        if tool.BASES_DIR in k.relative_to(tree).parts:
            continue
        for line in k.read_text().splitlines():
            item = line.split("#", 1)[0].strip()
            if item.startswith("- https://") and any(str(k.parent).startswith(str(tree / s.path)) for s in applied):
                pytest.fail(f"{k.relative_to(tree)} still names {item}")


def gpu_configurations(stack):
    """The stack with a `gpu: nvidia` node (its first node for stacks without one), under each GPU
    toolkit choice without a driver, and with the operator's driver."""
    raw = tool.stack_raw(stack)
    nodes = [dict(n) for n in raw["nodes"]]
    if not any(n.get("gpu") == "nvidia" for n in nodes):
        nodes[0]["gpu"] = "nvidia"
    gpu = dict(raw.get("gpu") or {})
    for extra in ({}, {"toolkit": "operator"}, {"toolkit": "host"}, {"installDriver": True, "toolkit": "operator"}):
        yield extra, tool.stack_settings(stack, {"nodes": nodes, "gpu": {**gpu, **extra}})


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_gpu_configuration_of_a_shipped_stack_has_an_exact_list(stack):
    """A GPU configuration no generator variant rendered would make the list a union of variants (e.g.
    a driver and its manager on a stack that installs none): each must be in the data."""
    for extra, s in gpu_configurations(stack):
        assert images_plan.stack_images(s).inexact == (), (stack, extra)


def test_the_driver_image_is_left_out_because_its_tag_depends_on_the_host_os():
    # gpu-operator's resolveDriverTag appends "-<osTag>" (e.g. ubuntu24.04, from the node's os-release)
    # to `<repository>/<image>:<version>`, so `nvcr.io/nvidia/driver:<version>` alone names no image.
    policy = {"kind": "ClusterPolicy", "spec": {
        "driver": {"enabled": True, "repository": "nvcr.io/nvidia", "image": "driver", "version": "580.95.05",
                   "manager": {"repository": "nvcr.io/nvidia/cloud-native", "image": "k8s-driver-manager", "version": "v0.9.0"}},
        "toolkit": {"enabled": True, "repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit", "version": "v1.18.0"}}}
    refs = {i.ref for i in images_plan.images_in([policy])}
    assert "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.9.0" in refs
    assert "nvcr.io/nvidia/k8s/container-toolkit:v1.18.0" in refs
    assert not any(r.startswith("nvcr.io/nvidia/driver:") for r in refs), refs
    for extra, s in gpu_configurations("cloud"):
        assert not any("/driver:" in i.ref for i in images_plan.stack_images(s).images), extra
