"""Reading the rendered kubeflow/manifests 26.03 (../shared/upstream/rendered/kubeflow-26.03/) for the
Kubeflow contract tests: which rendered file belongs to which path, what CRDs, namespaces and
webhooks each provides, and label-selector matching as the API server does it."""

from __future__ import annotations

import functools
import pathlib
import shutil
from dataclasses import dataclass

from tests import kustomize_lite

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
WEBHOOK_KINDS = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
# What the platform layers provide instead of the example's entries they replace.
PLATFORM_PATHS = {
    "common/cert-manager/overlays/kubeflow": "cert_manager",
    "common/istio/istio-crds/base": "istio",
    "common/istio/istio-namespace/base": "istio",
    "common/istio/istio-install/overlays/oauth2-proxy": "istio",
}


@functools.cache
def rendered_index(rendered_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """example path -> its rendered file (NN-<path with / as _>.yaml)."""
    out = {}
    for f in sorted(rendered_dir.glob("[0-9][0-9]-*.yaml")):
        out[f.stem.split("-", 1)[1]] = f
    return out


def rendered_file(rendered_dir: pathlib.Path, path: str) -> pathlib.Path | None:
    return rendered_index(rendered_dir).get(path.replace("/", "_"))


@functools.cache
def docs_of(file: pathlib.Path) -> tuple[dict, ...]:
    return tuple(kustomize_lite.load(file))


def group_kind(doc: dict) -> tuple[str, str]:
    return kustomize_lite.group(doc), doc["kind"]


@dataclass
class Provided:
    crds: dict[tuple[str, str], str]  # (group, kind) -> plural
    namespaces: dict[str, dict]  # name -> labels
    webhooks: list[tuple[dict, dict]]  # (webhook configuration doc, one webhook)


def provided(docs) -> Provided:
    p = Provided({}, {}, [])
    for d in docs:
        if d["kind"] == "CustomResourceDefinition":
            p.crds[(d["spec"]["group"], d["spec"]["names"]["kind"])] = d["spec"]["names"]["plural"]
        elif d["kind"] == "Namespace":
            p.namespaces[d["metadata"]["name"]] = d["metadata"].get("labels") or {}
        elif d["kind"] in WEBHOOK_KINDS:
            for w in d.get("webhooks") or []:
                p.webhooks.append((d, w))
    return p


def selector_matches(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plural(doc: dict, crds: dict[tuple[str, str], str]) -> str:
    return crds.get(group_kind(doc)) or doc["kind"].lower() + "s"


def webhook_matches(webhook: dict, doc: dict, namespaces: dict[str, dict], crds: dict) -> bool:
    """Would this webhook be called when `doc` (or, for a workload, its pods) is created?"""
    if doc["kind"] in WORKLOAD_KINDS:
        target_group, target_resource = "", "pods"
        labels = (doc["spec"]["template"].get("metadata") or {}).get("labels") or {}
    else:
        target_group, target_resource = kustomize_lite.group(doc), plural(doc, crds)
        labels = doc["metadata"].get("labels") or {}
    hit = False
    for rule in webhook.get("rules") or []:
        groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
        operations = rule.get("operations") or ["*"]
        if ("*" in groups or target_group in groups) and (
            "*" in resources or "*/*" in resources or target_resource in resources
        ) and ("CREATE" in operations or "*" in operations):
            hit = True
    if not hit:
        return False
    ns = doc["metadata"].get("namespace")
    if ns is not None and not selector_matches(webhook.get("namespaceSelector"), namespaces.get(ns, {})):
        return False
    return selector_matches(webhook.get("objectSelector"), labels)


def serving_deployments(docs, webhook: dict) -> set[tuple[str, str]]:
    """(namespace, name) of the Deployments behind a webhook's Service, found in `docs`."""
    svc = (webhook.get("clientConfig") or {}).get("service")
    if not svc:
        return set()
    out = set()
    for s in docs:
        if s["kind"] == "Service" and s["metadata"]["name"] == svc["name"] and s["metadata"].get("namespace") == svc["namespace"]:
            sel = s["spec"].get("selector") or {}
            for d in docs:
                if d["kind"] == "Deployment" and sel and all(
                    d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()
                ):
                    out.add((d["metadata"]["namespace"], d["metadata"]["name"]))
    return out


def kustomize_cmd() -> list[str] | None:
    """A real kustomize: `kustomize build`, or `kubectl kustomize` (scripts/run-tests.sh installs one)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


# Offline copies of the pinned trees -----------------------------------------------------------------

# Remote bases of the 26.03 tree -> their vendored folder in ../shared/upstream/kubeflow-remote-bases
# (its README maps each URL).
REMOTE_BASES = (
    (r"https://github\.com/argoproj/argo-workflows/manifests/([^?\s]+)\?ref=v3\.7\.3", r"argo-workflows-v3.7.3/manifests/\1"),
    (r"https://github\.com/kubernetes-sigs/lws//config/default\?ref=v0\.7\.0", "lws-v0.7.0/config/default"),
    (r"https://github\.com/kubernetes-sigs/jobset/releases/download/v0\.10\.1/manifests\.yaml", "jobset-v0.10.1/manifests.yaml"),
)


def offline_tree(upstream: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A copy of kubeflow/manifests 26.03 (and of its remote bases) under `dest` whose kustomizations
    name the vendored remote bases by relative path, so real kustomize renders every path offline.
    Returns the copy of the manifests tree (what kubeflow.manifestsPath points at)."""
    import os
    import re

    tree = dest / "kubeflow-manifests-26.03"
    bases = dest / "kubeflow-remote-bases"
    if not tree.exists():
        shutil.copytree(upstream / "kubeflow-manifests-26.03", tree)
        shutil.copytree(upstream / "kubeflow-remote-bases", bases)
        for k in tree.rglob("kustomization.yaml"):
            text = k.read_text()
            new = text
            for pattern, local in REMOTE_BASES:
                if local.endswith(".yaml"):
                    # kustomize reads a file resource only in or below the kustomization's folder
                    if re.search(pattern, new):
                        shutil.copy(bases / local, k.parent / ("vendored-" + pathlib.Path(local).name))
                        new = re.sub(pattern, "vendored-" + pathlib.Path(local).name, new)
                    continue
                rel = os.path.relpath(bases, k.parent)
                new = re.sub(pattern, lambda m, local=local, rel=rel: f"{rel}/{m.expand(local)}", new)
            if new != text:
                k.write_text(new)
    return tree


def load_yaml(text: str) -> list[dict]:
    """YAML documents with libyaml's parser where available (the rendered trees are megabytes)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(text, Loader=loader) if d]


def kustomize_build(directory: pathlib.Path | str, text: bool = False):
    """Real kustomize over a directory (its objects, or its YAML with text=True); fails the test with
    kustomize's message."""
    import subprocess

    cmd = kustomize_cmd()
    assert cmd is not None, "no kustomize or kubectl binary"
    result = subprocess.run([*cmd, str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed: {result.stderr}")
    return result.stdout if text else load_yaml(result.stdout)
