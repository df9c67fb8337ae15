"""Kustomize overlays the program writes next to itself: the upstream manifests plus our patches.

A `kustomize.v2.Directory` can only render a directory; it cannot patch. So wherever the upstream
manifests need a change (a hard-coded credential removed, Dex's user, the gateway's HTTPS server, the
order in which a webhook appears), the program writes a small overlay directory whose
`kustomization.yaml` lists the pinned upstream path as its only resource and carries the patches.

Rules that keep these files safe and the graph stable:
- No secret value is ever written to an overlay. Secret-bearing upstream objects are deleted here
  (`$patch: delete`) and created by the program as Secret resources with secret values.
- The content is a pure function of the stack's settings (no timestamps, no random names), so two runs
  write identical files and `pulumi preview` shows no change.

`Patch` is deliberately small (delete, strategic merge, annotate) so that tests can apply the same
patches to the rendered upstream YAML in Python (tests/kustomize_lite.py) and check the result, and
render them with real kustomize where a binary is available.
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

# Where overlays are written, relative to the project directory (the Pulumi program's working
# directory, which is also where the Kubernetes provider resolves a relative `directory`).
OVERLAY_ROOT = ".build/kubeflow"

# Pulumi's yaml/v2 engine (which kustomize.v2.Directory uses) creates an object only after the objects
# named in this annotation are ready. It works inside one Directory, where `depends_on` cannot reach.
DEPENDS_ON = "config.kubernetes.io/depends-on"

_API_VERSIONS = {
    "Secret": "v1",
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
    "MutatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
    "Gateway": "networking.istio.io/v1beta1",
    # As upstream writes them (common/oauth2-proxy/components/istio-external-auth).
    "AuthorizationPolicy": "security.istio.io/v1beta1",
    "RequestAuthentication": "security.istio.io/v1beta1",
}


@dataclass(frozen=True)
class Patch:
    """One change to the upstream objects of a kind and name (and namespace, when given).

    - delete: remove the object (the program provides its own, e.g. a Secret with a secret value).
    - merge: a strategic-merge body applied to the object (lists of built-in kinds merge by key,
      e.g. containers by name; lists of custom kinds are replaced).
    """

    kind: str
    name: str
    namespace: str | None = None
    delete: bool = False
    merge: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""

    def body(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        doc: dict[str, Any] = {}
        if self.delete:
            doc["$patch"] = "delete"
        doc.update({"apiVersion": _API_VERSIONS[self.kind], "kind": self.kind, "metadata": meta})
        for key, value in self.merge.items():
            if key == "metadata":
                doc["metadata"] = {**meta, **value}
            else:
                doc[key] = value
        return doc


def annotate(kind: str, name: str, annotations: Mapping[str, str], namespace: str | None = None, why: str = "") -> Patch:
    return Patch(kind, name, namespace, merge={"metadata": {"annotations": dict(annotations)}}, why=why)


def depends_on_ref(kind: str, namespace: str | None, name: str) -> str:
    """The yaml/v2 reference of an object: <group>/namespaces/<ns>/<Kind>/<name>."""
    group = _API_VERSIONS[kind].rpartition("/")[0]
    if namespace:
        return f"{group}/namespaces/{namespace}/{kind}/{name}"
    return f"{group}/{kind}/{name}"


@dataclass(frozen=True)
class ConfigMapMerge:
    """A configMapGenerator with behavior: merge, for upstream *generated* ConfigMaps (hash-suffixed
    names cannot be patched by name from outside their kustomization, but a merge generator can)."""

    name: str
    namespace: str
    literals: Mapping[str, str]


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference, as kustomize's `images` transformer reads it."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    name, tag = ref, None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
    return name, tag, digest


def override_image(ref: str, images: Mapping[str, str]) -> str:
    """An upstream image reference mapped through `kubeflow.images` (upstream name without tag ->
    replacement reference) exactly as the overlays' kustomize `images:` entries rewrite it: a
    replacement without tag or digest keeps upstream's tag."""
    name, tag, digest = split_image(ref)
    if name not in images:
        return ref
    new_name, new_tag, new_digest = split_image(images[name])
    if new_tag or new_digest:
        tag, digest = new_tag, new_digest
    return new_name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def images_entries(images: Mapping[str, str]) -> list[dict[str, str]]:
    """kustomize `images:` entries for the overrides (sorted: the overlay text is stable)."""
    out = []
    for name, replacement in sorted(images.items()):
        new_name, new_tag, new_digest = split_image(replacement)
        entry = {"name": name, "newName": new_name}
        if new_tag:
            entry["newTag"] = new_tag
        if new_digest:
            entry["digest"] = new_digest
        out.append(entry)
    return out


@dataclass(frozen=True)
class Overlay:
    resource: str  # the upstream path or URL, as seen from the overlay directory
    patches: tuple[Patch, ...] = ()
    config_map_merges: tuple[ConfigMapMerge, ...] = ()
    namespace: str | None = None
    # upstream image name -> replacement reference (kubeflow.images), as kustomize `images:`
    images: Mapping[str, str] = field(default_factory=dict)

    def kustomization(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [self.resource],
        }
        if self.namespace:
            doc["namespace"] = self.namespace
        if self.config_map_merges:
            doc["configMapGenerator"] = [
                {
                    "name": m.name,
                    "namespace": m.namespace,
                    "behavior": "merge",
                    "literals": [f"{k}={v}" for k, v in sorted(m.literals.items())],
                }
                for m in self.config_map_merges
            ]
        if self.images:
            doc["images"] = images_entries(self.images)
        if self.patches:
            doc["patches"] = [
                {
                    "target": {"kind": p.kind, "name": p.name, **({"namespace": p.namespace} if p.namespace else {})},
                    "patch": yaml.safe_dump(p.body(), sort_keys=True),
                }
                for p in self.patches
            ]
        return doc

    def text(self) -> str:
        header = "# Written by kubeflow-k3s (components/kubeflow/kubeflow_overlay.py). Do not edit; no secrets here.\n"
        return header + yaml.safe_dump(self.kustomization(), sort_keys=False, width=1000)

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:16]


def write(directory: str | pathlib.Path, overlay: Overlay, root: pathlib.Path | None = None) -> pathlib.Path:
    """Write the overlay's kustomization.yaml (only when the content changed) and return its path."""
    base = (root or pathlib.Path.cwd()) / directory
    base.mkdir(parents=True, exist_ok=True)
    path = base / "kustomization.yaml"
    text = overlay.text()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
