"""What a stack's Kubeflow layer really applies: real kustomize over the overlays the program writes,
against an offline copy of kubeflow/manifests 26.03 with its remote bases vendored
(kubeflow_upstream.offline_tree), with `kubeflow.manifestsPath` pointing at that copy. Renders are
cached by the kustomization text, so stacks sharing an overlay render it once."""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import functools
import pathlib
import tempfile

from components.kubeflow import kfp_plan, kubeflow_overlay, kubeflow_plan as kp
from components.kubeflow.kubeflow_overlay import OVERLAY_ROOT
from stacks.settings import Settings, parse_settings
from tests.contract import kubeflow_upstream as up

# Kinds without a namespace: a Directory's `namespace` leaves them alone.
CLUSTER_SCOPED = {
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "ClusterServingRuntime",
    "ClusterStorageContainer", "ClusterTrainingRuntime", "IngressClass", "RuntimeClass", "ClusterIssuer",
}


@functools.cache
def tree(upstream: pathlib.Path) -> pathlib.Path:
    return up.offline_tree(upstream, pathlib.Path(tempfile.mkdtemp(prefix="kubeflow-offline-")))


def settings(upstream: pathlib.Path, raw: dict, stack: str) -> Settings:
    """The stack's settings, reading the manifests from the offline copy (its own overlay folder:
    .build/kubeflow/render-<stack>/)."""
    raw = copy.deepcopy(raw)
    raw.setdefault("kubeflow", {})["manifestsPath"] = str(tree(upstream))
    return parse_settings(raw, f"render-{stack}")


_cache: dict[str, list[dict]] = {}


def _build(directory: pathlib.Path) -> list[dict]:
    # Overlay folders of different stacks sit at the same depth, so an identical kustomization renders
    # identically wherever it is.
    overlay = directory / "kustomization.yaml"
    key = overlay.read_text() if OVERLAY_ROOT in str(directory) and overlay.exists() else str(directory)
    if key not in _cache:
        _cache[key] = up.kustomize_build(directory)
    return copy.deepcopy(_cache[key])


def _with_namespace(docs: list[dict], namespace: str | None) -> list[dict]:
    if namespace:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace"):
                d["metadata"]["namespace"] = namespace
    return docs


def _base_text(upstream: pathlib.Path, p) -> str:
    """What the step's upstream path renders, as YAML: upstream's own rendering (../shared/upstream/
    rendered, byte-identical to kustomize over the tree), real kustomize for the paths it does not hold."""
    f = up.rendered_file(upstream / "rendered" / "kubeflow-26.03", p.step.path)
    if f:
        return f.read_text()
    return up.kustomize_build(pathlib.Path(p.source), text=True)


def _base(upstream: pathlib.Path, p) -> list[dict]:
    return up.load_yaml(_base_text(upstream, p))


def _swapped(base: str, overlay: kubeflow_overlay.Overlay) -> list[dict]:
    """Real kustomize over the generated overlay with its resource swapped for the rendered upstream
    objects (what the overlay's resource renders to): our patches and images, applied by kustomize."""
    import yaml

    key = "swap\n" + overlay.text() + base
    if key not in _cache:
        docs = up.load_yaml(base)
        # CRDs are most of the bytes and no patch or image entry of ours touches one: kustomize gets the
        # rest (the test that every patch changes the render fails for a patch aimed at a CRD).
        crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
        rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        with tempfile.TemporaryDirectory() as tmp:
            (pathlib.Path(tmp) / "upstream.yaml").write_text(yaml.dump_all(rest, Dumper=dumper))
            local = dataclasses.replace(overlay, resource="upstream.yaml")
            (pathlib.Path(tmp) / "kustomization.yaml").write_text(local.text())
            _cache[key] = crds + up.kustomize_build(tmp)
    return copy.deepcopy(_cache[key])


def kubeflow_steps(upstream: pathlib.Path, s: Settings, against_tree: bool = False) -> dict[str, list[dict]]:
    """{step: the objects its Directory applies} for a full stack. `against_tree`: real kustomize over
    the written overlay directories against the offline 26.03 tree (slow: ~40 s for every step);
    otherwise against the rendered upstream objects, except overlays with ConfigMap merges (those
    need upstream's generators), which always build against the tree."""
    planned = kp.plan(s)

    def render(p) -> tuple[str, list[dict]]:
        directory = kp.PROJECT_ROOT / p.directory
        if p.overlay is None:
            docs = _base(upstream, p) if not against_tree else _build(directory)
        elif against_tree or p.overlay.config_map_merges:
            kubeflow_overlay.write(p.directory, p.overlay, kp.PROJECT_ROOT)
            docs = _build(directory)
        else:
            docs = _swapped(_base_text(upstream, p), p.overlay)
        return p.step.name, _with_namespace(docs, p.step.namespace)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(pool.map(render, planned))


def variants(upstream: pathlib.Path, names) -> dict[str, tuple[Settings, dict[str, list[dict]]]]:
    """{variant: (its settings, {step: the objects it applies})} for stacks of kubeflow_variants; skips
    the calling test when no kustomize is installed."""
    import pytest

    from tests.contract import kubeflow_variants

    if up.kustomize_cmd() is None:
        pytest.skip("no kustomize or kubectl binary installed")
    out = {}
    for name in names:
        _, raw = kubeflow_variants.raw(name)
        s = settings(upstream, raw, name)
        out[name] = (s, kubeflow_steps(upstream, s))
    return out


def upstream_steps(upstream: pathlib.Path, s: Settings, directory_namespace: bool = True) -> dict[str, list[dict]]:
    """{step: what the same path renders without the program's overlay}."""
    return {p.step.name: _with_namespace(_base(upstream, p), p.step.namespace if directory_namespace else None)
            for p in kp.plan(s)}


def kfp_standalone(s: Settings) -> tuple[list[dict], list[dict]]:
    """(cluster-scoped objects, env/platform-agnostic with the program's overlay) of a pipelines stack."""
    plan = kfp_plan.plan(s)
    kubeflow_overlay.write(plan.env_directory, plan.overlay, kp.PROJECT_ROOT)
    return _build(pathlib.Path(plan.cluster_scoped)), _build(kp.PROJECT_ROOT / plan.env_directory)


def kfp_standalone_upstream(s: Settings) -> list[dict]:
    return _build(pathlib.Path(kfp_plan.source(s, kfp_plan.PLATFORM_AGNOSTIC)))


def without_overlay_patch(overlay: kubeflow_overlay.Overlay, index: int) -> kubeflow_overlay.Overlay:
    return dataclasses.replace(overlay, patches=overlay.patches[:index] + overlay.patches[index + 1:])
