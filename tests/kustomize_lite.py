"""Apply the program's overlays (components/kubeflow_overlay.Overlay) to rendered upstream YAML in Python.

The overlays use only three kustomize features: `$patch: delete` of an object, a strategic-merge
patch (maps merge; `containers`, `env`, ... merge by `name`, with `$patch: delete` items; lists of
custom kinds are replaced), and a merging configMapGenerator. This module implements exactly those,
so the contract tests can check what reaches the cluster without a kustomize binary;
tests/contract/test_kubeflow_secrets.py also renders a few overlays with real kustomize when one is
installed and checks this module agrees.
"""

from __future__ import annotations

import copy
import pathlib
import re
from typing import Any

import yaml

from components.kubeflow.kubeflow_overlay import Overlay

# Lists merged by `name` in strategic-merge patches of built-in kinds (Kubernetes' patchMergeKey).
MERGE_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts", "ports"}
BUILT_IN_GROUPS = {"", "apps", "batch", "admissionregistration.k8s.io", "rbac.authorization.k8s.io"}


# libyaml's loader when PyYAML has it: the same safe types, parsed several times faster (the rendered
# upstream trees are tens of MB of YAML).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> list[dict]:
    return [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d]


def load(path: pathlib.Path) -> list[dict]:
    return load_all(path.read_text())


def group(doc: dict) -> str:
    api = doc.get("apiVersion", "")
    return api.rpartition("/")[0]


def _merge(dst: Any, patch: Any, built_in: bool) -> Any:
    if isinstance(dst, dict) and isinstance(patch, dict):
        out = dict(dst)
        for key, value in patch.items():
            if key == "$patch":
                continue
            if built_in and key in MERGE_BY_NAME and isinstance(value, list) and isinstance(out.get(key), list):
                out[key] = _merge_named(out[key], value, built_in)
            elif key in out:
                out[key] = _merge(out[key], value, built_in)
            else:
                out[key] = _strip(value)
        return out
    return _strip(patch)


def _merge_named(items: list, patch: list, built_in: bool) -> list:
    out = [copy.deepcopy(i) for i in items]
    for p in patch:
        names = [i.get("name") for i in out]
        if p.get("$patch") == "delete":
            out = [i for i in out if i.get("name") != p["name"]]
        elif p["name"] in names:
            idx = names.index(p["name"])
            out[idx] = _merge(out[idx], p, built_in)
        else:
            out.append(_strip(p))
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "$patch"}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and v.get("$patch") == "delete")]
    return value


def _generated(kind: str, name: str, rendered_name: str) -> bool:
    """A generator's object in rendered output carries a hash suffix (oauth2-proxy-h675gf55ht); inside
    an overlay kustomize still knows it by its generator name, so patches name it without the hash."""
    return kind in ("Secret", "ConfigMap") and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", rendered_name) is not None


def _matches(doc: dict, kind: str, name: str, namespace: str | None) -> bool:
    meta = doc.get("metadata", {})
    return doc.get("kind") == kind and (meta.get("name") == name or _generated(kind, name, meta.get("name", ""))) and (
        namespace is None or meta.get("namespace") == namespace
    )


def _rename(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _rename(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, old, new) for v in value]
    return new if value == old else value


def apply(docs: list[dict], overlay: Overlay) -> list[dict]:
    """The objects kustomize would emit for `overlay` over `docs` (the upstream resource)."""
    out = [copy.deepcopy(d) for d in docs]
    for merge in overlay.config_map_merges:
        for doc in out:
            meta = doc["metadata"]
            if doc["kind"] == "ConfigMap" and meta.get("namespace") == merge.namespace and (
                meta["name"] == merge.name or meta["name"].startswith(merge.name + "-")
            ):
                doc.setdefault("data", {}).update(merge.literals)
    for patch in overlay.patches:
        hits = [d for d in out if _matches(d, patch.kind, patch.name, patch.namespace)]
        assert hits, f"patch matches nothing: {patch.kind} {patch.namespace}/{patch.name}"
        if patch.delete:
            out = [d for d in out if not _matches(d, patch.kind, patch.name, patch.namespace)]
            # With a generated object deleted, kustomize leaves references to it unhashed (checked
            # against real kustomize in test_kubeflow_secrets.py): they then name the program's object.
            for hit in hits:
                if hit["metadata"]["name"] != patch.name:
                    out = [_rename(d, hit["metadata"]["name"], patch.name) for d in out]
            continue
        body = {k: v for k, v in patch.body().items() if k not in ("apiVersion", "kind")}
        for i, doc in enumerate(out):
            if _matches(doc, patch.kind, patch.name, patch.namespace):
                out[i] = _merge(doc, body, group(doc) in BUILT_IN_GROUPS)
    return out
