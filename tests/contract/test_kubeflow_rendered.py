"""Issue 9, on what each stack's Kubeflow layer really applies (tests/contract/rendered_stack.py: real
kustomize over the program's generated overlays against the 26.03 tree and its vendored remote bases):

- every generated patch changes the rendering: its target exists in what upstream renders, and the
  object is gone (delete) or different (merge) afterwards; a patch that matches nothing fails here;
- the Model Registry overlay really removes upstream's `model-registry-db-secrets` (root password `test`);
- no object is created twice across the program's own objects and all rendered Directories;
- `kubeflow.images` overrides reach every image they name and nothing else.
"""

from __future__ import annotations

import copy
import re

import pytest

from components.kubeflow import kubeflow_overlay as ov, kubeflow_plan as kp
from tests import harness
from tests.contract import kubeflow_upstream as up
from tests.contract import kubeflow_variants as kv
from tests.contract import rendered_stack as rs
from tests.kustomize_lite import apply

STACKS = ["dev", "cloud", "cloud-users", "cloud-oidc"]


def key(d: dict) -> tuple:
    return (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])


@pytest.fixture(scope="module")
def rendered(upstream):
    return {name: (s, steps, rs.upstream_steps(upstream, s, directory_namespace=False))
            for name, (s, steps) in rs.variants(upstream, STACKS).items()}


def _targets(patch: ov.Patch, docs: list[dict]) -> list[dict]:
    def name_ok(d):
        n = d["metadata"]["name"]
        return n == patch.name or (patch.kind in ("ConfigMap", "Secret") and re.fullmatch(re.escape(patch.name) + r"-[a-z0-9]{10}", n))
    return [d for d in docs if d["kind"] == patch.kind and name_ok(d)
            and (patch.namespace is None or d["metadata"].get("namespace") == patch.namespace)]


@pytest.mark.parametrize("name", STACKS)
def test_every_generated_patch_changes_the_rendering(rendered, name):
    s, steps, base = rendered[name]
    checked = 0
    for planned in kp.plan(s):
        if planned.overlay is None:
            continue
        step = planned.step.name
        after = {key(d): d for d in steps[step]}
        for patch in planned.overlay.patches:
            targets = _targets(patch, base[step])
            assert targets, f"{step}: patch {patch.kind}/{patch.name} (namespace {patch.namespace}) matches nothing upstream renders"
            for t in targets:
                k = (t["kind"], t["metadata"].get("namespace") or planned.step.namespace, t["metadata"]["name"])
                if patch.delete:
                    assert k not in after, f"{step}: {k} survives its delete patch"
                    continue
                # this patch alone changes the object, and the real rendering carries a changed object
                alone = apply([copy.deepcopy(t)], ov.Overlay("x", (patch,)))
                assert alone != [t], f"{step}: patch {patch.kind}/{patch.name} changes nothing"
                assert after[k] != t, f"{step}: {k} is rendered as upstream has it"
            checked += 1
        for merge in planned.overlay.config_map_merges:
            [cm] = [d for d in steps[step] if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(merge.name)]
            assert all(cm["data"][k] == v for k, v in merge.literals.items())
    assert checked


def test_a_patch_that_matches_nothing_fails_the_check(rendered):
    """The check above catches issue 9's Model Registry bug: upstream's overlay renders its objects
    without a namespace, so a target naming `kubeflow` matched nothing."""
    s, _, base = rendered["cloud"]
    stale = ov.Patch("Secret", "model-registry-db-secrets", "kubeflow", delete=True)
    assert not _targets(stale, base["model-registry"])
    [fixed] = [p for p in next(p for p in kp.plan(s) if p.step.name == "model-registry").overlay.patches
               if p.kind == "Secret"]
    assert _targets(fixed, base["model-registry"])


def test_model_registrys_upstream_secret_is_gone_and_the_program_creates_its_own(rendered, runs):
    _, steps, _ = rendered["cloud"]
    assert ("Secret", "kubeflow", "model-registry-db-secrets") not in {key(d) for d in steps["model-registry"]}
    own = [r for r in runs["cloud"].by_type("kubernetes:core/v1:Secret")
           if r.inputs["metadata"]["name"] == "model-registry-db-secrets"]
    assert [r.inputs["metadata"]["namespace"] for r in own] == ["kubeflow"]


def test_real_overlays_against_the_tree_render_as_the_swapped_model(upstream, rendered):
    """The faster model (our overlays applied by real kustomize to upstream's rendering) equals real
    kustomize over the written overlay directories against the offline 26.03 tree, for the steps the
    issue's bugs touch (Model Registry, Dex, KFP with image overrides and the amd64 pin)."""
    s, steps, _ = rendered["cloud-users"]
    wanted = {"model-registry", "dex", "pipelines"}
    for p in kp.plan(s):
        if p.step.name in wanted:
            ov.write(p.directory, p.overlay, kp.PROJECT_ROOT)
            real = rs._with_namespace(up.kustomize_build(kp.PROJECT_ROOT / p.directory), p.step.namespace)
            strip = lambda d: key(d) if d["kind"] not in ("ConfigMap", "Secret") else (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"].rsplit("-", 1)[0])
            assert sorted(map(strip, real)) == sorted(map(strip, steps[p.step.name]))
            model = {strip(d): d for d in steps[p.step.name]}
            for d in real:
                if d["kind"] in up.WORKLOAD_KINDS:
                    assert d["spec"]["template"]["spec"] == model[strip(d)]["spec"]["template"]["spec"], strip(d)


PROGRAM_KINDS = ("kubernetes:core/v1:", "kubernetes:rbac.authorization.k8s.io/v1:", "kubernetes:networking.k8s.io/v1:",
                 "kubernetes:kubeflow.org/", "kubernetes:networking.istio.io/", "kubernetes:security.istio.io/",
                 "kubernetes:cert-manager.io/")


def program_objects(run: harness.Run) -> list[tuple]:
    out = []
    for r in run.registrations:
        if not r.custom or not r.type.startswith(PROGRAM_KINDS) or r.type.endswith("Patch"):
            continue
        meta = r.inputs.get("metadata") or {}
        kind = r.type.rsplit(":", 1)[1]
        out.append((kind, meta.get("namespace"), meta.get("name")))
    return out


@pytest.mark.parametrize("name", STACKS)
def test_no_object_is_created_twice(rendered, runs, name):
    _, steps, _ = rendered[name]
    seen: dict[tuple, str] = {}
    for who, objs in [("program", program_objects(kv.run(name, runs)))] + [(s, [key(d) for d in docs]) for s, docs in steps.items()]:
        for k in objs:
            assert k not in seen, f"{k} is created by {seen[k]} and by {who}"
            seen[k] = who


def test_image_overrides_reach_every_image_they_name(rendered):
    s, steps, base = rendered["cloud-users"]
    images = s.kubeflow.images
    hit = set()
    for step, docs in steps.items():
        after = {key(d): d for d in docs}
        for d in docs:
            for c in containers(d):
                assert ov.split_image(c["image"])[0] not in images, f"{step}: {c['image']} kept despite kubeflow.images"
        for d in base[step]:
            for c in containers(d):
                if ov.split_image(c["image"])[0] in images:
                    hit.add(ov.split_image(c["image"])[0])
                    k = (d["kind"], d["metadata"].get("namespace") or kp.CATALOG_BY_NAME[step].namespace, d["metadata"]["name"])
                    got = {x["name"]: x["image"] for x in containers(after[k])}
                    assert got[c["name"]] == kp.override_image(c["image"], s)
    # the driver is an env value of the API server, set by the overlay's patch
    [api] = [d for d in steps["pipelines"] if key(d) == ("Deployment", "kubeflow", "ml-pipeline")]
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["V2_DRIVER_IMAGE"] == images["ghcr.io/kubeflow/kfp-driver"]
    assert env["V2_LAUNCHER_IMAGE"] == "ghcr.io/kubeflow/kfp-launcher:2.16.0"  # not overridden
    assert hit == set(images) - {"ghcr.io/kubeflow/kfp-driver"}
    # the artifact UI the multi-user profile controller starts per profile namespace
    [ctl] = [d for d in steps["pipelines"] if key(d) == ("Deployment", "kubeflow", "kubeflow-pipelines-profile-controller")]
    env = {e["name"]: e.get("value") for e in ctl["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert f"{env['FRONTEND_IMAGE']}:{env['FRONTEND_TAG']}" == images["ghcr.io/kubeflow/kfp-frontend"]


def containers(d: dict) -> list[dict]:
    spec = (d.get("spec") or {}).get("template", {}).get("spec") if d["kind"] in up.WORKLOAD_KINDS else None
    if not spec:
        return []
    return [*(spec.get("initContainers") or []), *spec["containers"]]


@pytest.mark.parametrize("variant", ["edge", "edge-mixed"])
def test_every_kfp_standalone_patch_changes_the_rendering(upstream, variant):
    if up.kustomize_cmd() is None:
        pytest.skip("no kustomize or kubectl binary installed")
    stack, raw = kv.raw("edge")
    if variant == "edge-mixed":
        raw["nodes"] = [*raw["nodes"], {"name": "pi-1", "host": "192.0.2.41", "role": "agent", "arch": "arm64"}]
    s = rs.settings(upstream, raw, variant)
    base = rs.kfp_standalone_upstream(s)
    _, after = rs.kfp_standalone(s)
    after_by_key = {key(d): d for d in after}
    overlay = __import__("components.kubeflow.kfp_plan", fromlist=["plan"]).plan(s).overlay
    for patch in overlay.patches:
        [target] = _targets(patch, base)
        if patch.delete:
            assert key(target) not in after_by_key
        else:
            assert apply([copy.deepcopy(target)], ov.Overlay("x", (patch,))) != [target]
            assert after_by_key[key(target)] != target
