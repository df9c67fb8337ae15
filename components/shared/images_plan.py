"""Pure plan of the container images a stack runs: which, on which node, from the committed render data.

The program cannot run kustomize or Helm at `pulumi up` time, so `tools.images --generate` renders every
Kubeflow path, the KFP paths and every Helm release the stacks can produce (real kustomize over the
overlays, real `helm template` with the program's values) and commits what it found in
components/shared/images_data.json. tests/contract/test_images.py renders again and proves, per stack, that
`stack_images` equals the images of the rendered objects (nothing missing, nothing extra) and that the
data file is what the generator writes.

What counts as an image of a rendered object (`images_in`):
- the `image` of every container, init container and ephemeral container of a pod template;
- image references passed to a container in `args`, `command` or `env` values (Argo's executor, KFP's
  launcher and driver, Longhorn's engine and instance-manager images): the workload pulls them later;
- the operands of the NVIDIA GPU operator's ClusterPolicy (`repository/image:version` of each operand
  the operator deploys with these values);
- Istio's proxy image, from istiod's sidecar-injector values (`hub/proxy.image:tag`): every injected pod
  and the gateways (`image: auto`) run it.

Where an image runs (`where`): `every` node (a DaemonSet without a GPU selector), `gpu:nvidia` / `gpu:jetson`
(GPU operands, the Jetson device plugin), `any` schedulable node (Deployments, StatefulSets, Jobs, sidecars).
"""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from stacks.settings import Node, Settings

from components.cert_manager import cert_manager_plan
from components.gpu import gpu_plan
from components.istio import istio_plan
from components.k3s import k3s_plan
from components.kubeflow import kfp_plan, kubeflow_plan
from components.storage import storage_plan

DATA_FILE = pathlib.Path(__file__).with_name("images_data.json")

EVERY, ANY = "every", "any"
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod", "CronJob"}
GPU_SELECTOR_KEYS = ("nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present", gpu_plan.NODE_GPU_LABEL)

# `registry/path:tag`, `path:tag` with at least one `/`, or `...@sha256:<digest>`; no URL, no file path.
IMAGE_RE = re.compile(
    r"^(?:[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/)?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)+"
    r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)

# ClusterPolicy operands and whether the operator deploys them when `enabled` is not set (gpu-operator
# v26.7.0 api/nvidia/v1/clusterpolicy_types.go: Is*Enabled helpers). Sandbox operands only run with
# sandboxWorkloads.enabled; they are left out unless it is on.
CLUSTER_POLICY_OPERANDS = {
    "driver": True, "toolkit": True, "devicePlugin": True, "dcgm": False, "dcgmExporter": True, "gfd": True,
    "migManager": True, "nodeStatusExporter": False, "gds": False, "gdrcopy": False, "validator": True,
}
SANDBOX_OPERANDS = ("sandboxDevicePlugin", "vgpuManager", "vgpuDeviceManager", "vfioManager", "kataManager", "ccManager")


@dataclass(frozen=True)
class Image:
    ref: str
    where: str  # EVERY, ANY or gpu:<kind>


@dataclass(frozen=True)
class Release:
    """A Helm release as the platform layers install it (name, chart key, namespace, values)."""

    name: str
    key: str
    namespace: str
    values: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return values_digest(self.values)


# Value keys that can change which images a chart renders: image coordinates and component switches.
# Everything else (replicas, resources, config files, service types) leaves the image set alone, so
# the data is keyed on these alone and e.g. a time-slicing change keeps the same, exact list.
IMAGE_VALUE_KEYS = {"enabled", "image", "repository", "registry", "hub", "tag", "version", "digest"}


def image_values(values: Any) -> Any:
    """The part of a release's values that can change its images (see IMAGE_VALUE_KEYS)."""
    if not isinstance(values, Mapping):
        return None
    out = {}
    for k, v in values.items():
        if k in IMAGE_VALUE_KEYS and not isinstance(v, Mapping):
            out[k] = v
        else:
            sub = image_values(v)
            if sub:
                out[k] = sub
    return out


def values_digest(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(image_values(values), sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# What a stack applies
# --------------------------------------------------------------------------------------------------


def releases(settings: Settings) -> list[Release]:
    """Every Helm release of a stack, as the layers create them (tests check it against the graph)."""
    out: list[Release] = []
    if gpu_plan.operator_nodes(settings):
        out.append(Release("gpu-operator", "gpu-operator", gpu_plan.OPERATOR_NAMESPACE, gpu_plan.operator_values(settings)))
    if gpu_plan.jetson_nodes(settings):
        out.append(Release("nvidia-device-plugin", "nvidia-device-plugin", gpu_plan.DEVICE_PLUGIN_NAMESPACE,
                           gpu_plan.device_plugin_values(settings)))
    if storage_plan.longhorn_enabled(settings):
        out.append(Release("longhorn", "longhorn", storage_plan.NAMESPACE_LONGHORN, storage_plan.longhorn_values(settings)))
    if storage_plan.nfs_enabled(settings):
        out.append(Release("nfs-subdir-external-provisioner", "nfs-subdir-external-provisioner",
                           storage_plan.NAMESPACE_NFS, storage_plan.nfs_values(settings)))
    if settings.kubeflow.mode != "pipelines":  # platform_layers.needs_mesh
        out.append(Release("cert-manager", "cert-manager", cert_manager_plan.NAMESPACE, cert_manager_plan.values(settings)))
        ns = istio_plan.NAMESPACE
        out += [
            Release("istio-base", "istio-base", ns, istio_plan.base_values(settings)),
            Release("istio-cni", "istio-cni", istio_plan.CNI_NAMESPACE, istio_plan.cni_values(settings)),
            Release("istiod", "istio-istiod", ns, istio_plan.istiod_values(settings)),
            Release(istio_plan.INGRESS_GATEWAY, "istio-gateway", ns, istio_plan.ingress_gateway_values(settings)),
            Release(istio_plan.LOCAL_GATEWAY, "istio-gateway", ns, istio_plan.local_gateway_values(settings)),
        ]
    return out


def kustomize_keys(settings: Settings) -> list[str]:
    """The kustomize paths a stack applies, as keys of the data file: `kubeflow:<path>` / `kfp:<path>`."""
    if settings.kubeflow.mode == "full":
        return [f"kubeflow:{s.path}" for s in kubeflow_plan.enabled_steps(settings)]
    if settings.kubeflow.mode == "pipelines":
        return [f"kfp:{kfp_plan.CLUSTER_SCOPED}", f"kfp:{kfp_plan.PLATFORM_AGNOSTIC}"]
    return []


# --------------------------------------------------------------------------------------------------
# Images of rendered objects
# --------------------------------------------------------------------------------------------------


def _pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) if isinstance(spec, Mapping) else None


def _gpu_selected(pod: Mapping[str, Any]) -> bool:
    text = json.dumps({"nodeSelector": pod.get("nodeSelector"), "affinity": pod.get("affinity")})
    return any(k in text for k in GPU_SELECTOR_KEYS)


def _refs_in_container(c: Mapping[str, Any]) -> Iterable[str]:
    if c.get("image") and c["image"] != "auto":
        yield c["image"]
    values: list[str] = [*(c.get("args") or []), *(c.get("command") or [])]
    values += [e.get("value") for e in c.get("env") or [] if isinstance(e.get("value"), str)]
    for v in values:
        if not isinstance(v, str):
            continue
        candidate = v.split("=", 1)[1] if v.startswith("-") and "=" in v else v
        if ":" in candidate.rsplit("/", 1)[-1] or "@sha256:" in candidate:  # tagged or pinned only
            if IMAGE_RE.match(candidate):
                yield candidate


def _cluster_policy(doc: Mapping[str, Any]) -> Iterable[str]:
    spec = doc.get("spec") or {}

    def ref(part: Mapping[str, Any]) -> str | None:
        if not part.get("image") or not part.get("version"):
            return None
        return f"{part['repository']}/{part['image']}:{part['version']}" if part.get("repository") else \
            f"{part['image']}:{part['version']}"

    sandbox = bool((spec.get("sandboxWorkloads") or {}).get("enabled"))
    for name, default in CLUSTER_POLICY_OPERANDS.items():
        part = spec.get(name) or {}
        if not part.get("enabled", default):
            continue
        # The driver's own image is left out: gpu-operator appends the node's OS to its tag
        # (resolveDriverTag: "<repository>/<image>:<version>-<osTag>", e.g. -ubuntu24.04, read from the
        # host's os-release by node feature discovery), which only the host knows (docs/images.md).
        if ref(part) and name != "driver":
            yield ref(part)  # type: ignore[misc]
        if name == "driver" and ref(part.get("manager") or {}):
            yield ref(part["manager"])  # type: ignore[misc]
    if sandbox:
        for name in SANDBOX_OPERANDS:
            part = spec.get(name) or {}
            if part.get("enabled", True) and ref(part):
                yield ref(part)  # type: ignore[misc]


def _istio_proxy(doc: Mapping[str, Any]) -> str | None:
    raw = (doc.get("data") or {}).get("values")
    if not raw:
        return None
    g = json.loads(raw).get("global") or {}
    image = (g.get("proxy") or {}).get("image")
    if not image or not g.get("hub") or not g.get("tag"):
        return None
    return image if "/" in image else f"{g['hub']}/{image}:{g['tag']}"


def images_in(docs: Iterable[Mapping[str, Any]], gpu_kind: str = "nvidia") -> set[Image]:
    """Every image the rendered objects run, with where it runs (see the module docstring)."""
    out: set[Image] = set()
    for d in docs:
        if not isinstance(d, Mapping):
            continue
        kind = d.get("kind")
        if kind == "ClusterPolicy":
            out |= {Image(r, f"gpu:{gpu_kind}") for r in _cluster_policy(d)}
            continue
        if kind == "ConfigMap" and (d.get("metadata") or {}).get("name") == "istio-sidecar-injector":
            proxy = _istio_proxy(d)
            if proxy:
                out.add(Image(proxy, ANY))
            continue
        if kind not in POD_KINDS:
            continue
        pod = _pod_spec(d) or {}
        if kind == "DaemonSet":
            where = f"gpu:{gpu_kind}" if _gpu_selected(pod) else EVERY
        else:
            where = ANY
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for c in pod.get(group) or []:
                out |= {Image(r, where) for r in _refs_in_container(c)}
    return out


# --------------------------------------------------------------------------------------------------
# The committed data and the per-stack, per-node lists
# --------------------------------------------------------------------------------------------------


@functools.cache
def data() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text()) if DATA_FILE.exists() else {"kustomize": {}, "helm": {}}


def _decode(rows: Iterable[Iterable[str]]) -> set[Image]:
    return {Image(ref, where) for ref, where in rows}


@dataclass(frozen=True)
class StackImages:
    images: frozenset[Image]
    # Releases whose values were not rendered by the generator: their images are the union of every
    # rendered variant of the chart (a superset); run `tools.images --generate` to make them exact.
    inexact: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # kustomize paths without data (none when the data is current)


def stack_images(settings: Settings) -> StackImages:
    d = data()
    images: set[Image] = set()
    missing: list[str] = []
    for key in kustomize_keys(settings):
        if key in d["kustomize"]:
            # kubeflow.images rewrites what the overlays apply (kustomize `images:` and KFP's driver/launcher
            # env patches), exactly as kubeflow_plan.override_image maps a reference; Helm releases keep theirs.
            images |= {Image(kubeflow_plan.override_image(i.ref, settings), i.where) for i in _decode(d["kustomize"][key])}
        else:
            missing.append(key)
    inexact: list[str] = []
    for rel in releases(settings):
        variants = d["helm"].get(rel.key, {})
        if rel.digest in variants:
            images |= _decode(variants[rel.digest])
        else:
            inexact.append(rel.name)
            for rows in variants.values():
                images |= _decode(rows)
    from components.smoke import smoke_plan  # the smoke step's pods (the last step of `up`) run these too, air-gapped or not

    if smoke_plan.enabled(settings):
        images |= {Image(ref, ANY) for ref in smoke_plan.pipeline_images()}
        images |= {Image(ref, f"gpu:{kind}") for ref, kind in smoke_plan.gpu_images(settings)}
    return StackImages(frozenset(images), tuple(inexact), tuple(missing))


def node_places(settings: Settings, node: Node) -> set[str]:
    """Which `where` classes run on a node: DaemonSets everywhere, GPU operands on their GPU nodes, and
    Deployments' images on nodes that take ordinary pods (no NoSchedule/NoExecute taint)."""
    places = {EVERY}
    if node.gpu != "none":
        places.add(f"gpu:{node.gpu}")
    taints = k3s_plan.node_taints(settings, node)
    if not any(t.endswith((":NoSchedule", ":NoExecute")) for t in taints):
        places.add(ANY)
    return places


def qualified(ref: str) -> str:
    """A reference as containerd stores it: `docker.io/` and `library/` made explicit."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def images_for(settings: Settings, node: Node) -> list[str]:
    """The sorted, de-duplicated image references `node` will run (kubeflow.images overrides applied by
    `stack_images`), fully qualified as K3s's pre-pull list wants them."""
    places = node_places(settings, node)
    refs = {qualified(i.ref) for i in stack_images(settings).images if i.where in places}
    return sorted(refs)


def all_images(settings: Settings) -> list[str]:
    """Every image of the stack on any node (what a registry mirror or an air-gap bundle must hold)."""
    return sorted({r for n in settings.nodes for r in images_for(settings, n)})
