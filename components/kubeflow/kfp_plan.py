"""Pure plan of standalone Kubeflow Pipelines 2.16.0 (the `edge` profile): no Istio, Dex or dashboard.

Upstream's standalone install is two kustomizations: `cluster-scoped-resources` (CRDs, the kubeflow
namespace, cluster roles), then, once the CRDs are established, `env/platform-agnostic`. Here each is
a Directory and the second waits for the first (Pulumi awaits a CRD until it is Established).

The second gets an overlay that
- gives every KFP container requests and limits sized for a small device: upstream requests 0.64 CPU
  and 2.9 GiB and leaves seven containers unbounded; this trim requests at most 0.5 CPU / 1.5 GiB in
  total (tests/contract/test_kfp_edge_footprint.py applies it to the rendered 2.16.0 manifests);
- removes the object-store keys and MySQL credentials upstream hard-codes, and gives MySQL a root
  password (the program creates those Secrets with generated values, see kubeflow_credentials.py).

Source: the pinned kubeflow/pipelines git URL, or, with kubeflow.manifestsPath, the copy of the same
KFP manifests inside the kubeflow/manifests checkout (`applications/pipeline/upstream`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from stacks import versions
from stacks.settings import Settings

from components.kubeflow.kubeflow_overlay import Overlay, Patch
from components.kubeflow.kubeflow_plan import (KFP_DEPLOYMENTS_STANDALONE, as_overlay_resource, kfp_image_patches, kustomize_images,
                            mysql_root_password_patch, overlay_dir)

CLUSTER_SCOPED = "cluster-scoped-resources"
PLATFORM_AGNOSTIC = "env/platform-agnostic"
NAMESPACE = "kubeflow"
UI_SERVICE = "ml-pipeline-ui"
# Where the KFP manifests sit inside a kubeflow/manifests checkout (same files as KFP 2.16.0's
# manifests/kustomize, see tests/contract/test_kubeflow_paths.py).
MANIFESTS_COPY = "applications/pipeline/upstream"

# (deployment, container) -> (cpu request m, memory request Mi, cpu limit m, memory limit Mi).
# Requests are what a single-user edge KFP idles at; limits are at or above what upstream's 2.16.0
# manifests *request* (api-server 250m/500Mi, persistenceagent 120m/500Mi, visualization 30m/500Mi,
# mysql 100m/800Mi, workflow-controller 100m/500Mi; tests/contract/test_kfp_edge_footprint.py checks
# each against the rendered objects), so a burst to upstream's own sizing is never OOM-killed. Where
# upstream requests nothing, the limit is 128Mi or more.
TRIM: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("ml-pipeline", "ml-pipeline-api-server"): (60, 256, 500, 512),
    ("ml-pipeline-persistenceagent", "ml-pipeline-persistenceagent"): (20, 64, 200, 512),
    ("ml-pipeline-scheduledworkflow", "ml-pipeline-scheduledworkflow"): (10, 48, 100, 128),
    ("ml-pipeline-ui", "ml-pipeline-ui"): (20, 96, 200, 256),
    ("ml-pipeline-viewer-crd", "ml-pipeline-viewer-crd"): (10, 32, 100, 128),
    ("ml-pipeline-visualizationserver", "ml-pipeline-visualizationserver"): (20, 128, 500, 512),
    ("mysql", "mysql"): (80, 384, 1000, 1024),
    ("seaweedfs", "seaweedfs"): (40, 128, 500, 512),
    ("workflow-controller", "workflow-controller"): (40, 96, 500, 512),
    ("cache-deployer-deployment", "main"): (10, 32, 100, 128),
    ("cache-server", "server"): (10, 32, 100, 128),
    ("metadata-envoy-deployment", "container"): (10, 32, 100, 128),
    ("metadata-grpc-deployment", "container"): (20, 64, 200, 256),
    ("metadata-writer", "main"): (10, 64, 100, 256),
}

MAX_CPU_M = 500
MAX_MEMORY_MI = 1536


def trimmed_totals() -> tuple[int, int]:
    """Requested CPU (m) and memory (Mi) of the trimmed install (one replica each)."""
    return sum(t[0] for t in TRIM.values()), sum(t[1] for t in TRIM.values())


def resources(trim: tuple[int, int, int, int]) -> dict:
    cpu, mem, cpu_limit, mem_limit = trim
    return {
        "requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"},
        "limits": {"cpu": f"{cpu_limit}m", "memory": f"{mem_limit}Mi"},
    }


def trim_patches() -> list[Patch]:
    by_deployment: dict[str, list[dict]] = {}
    for (deployment, container), trim in TRIM.items():
        by_deployment.setdefault(deployment, []).append({"name": container, "resources": resources(trim)})
    return [
        Patch("Deployment", d, NAMESPACE, merge={"spec": {"template": {"spec": {"containers": cs}}}},
              why="requests and limits for a small device")
        for d, cs in sorted(by_deployment.items())
    ]


def source(settings: Settings, path: str) -> str:
    local = settings.kubeflow.manifests_path
    if local:
        return posixpath.join(local, MANIFESTS_COPY, path)
    return f"{versions.KFP_REPO}/manifests/kustomize/{path}?ref={versions.KFP_VERSION}"


@dataclass(frozen=True)
class KfpPlan:
    cluster_scoped: str  # Directory of the cluster-scoped resources (URL or path)
    env_directory: str  # the overlay directory over env/platform-agnostic
    overlay: Overlay


def plan(settings: Settings) -> KfpPlan:
    directory = overlay_dir(settings, "kfp")
    env = as_overlay_resource(source(settings, PLATFORM_AGNOSTIC), directory)
    # Merged per deployment: the mysql container gets its password env and its trim in one patch.
    patches: list[Patch] = [
        Patch("Secret", "mlpipeline-minio-artifact", NAMESPACE, delete=True, why="generated object-store keys"),
        Patch("Secret", "mysql-secret", NAMESPACE, delete=True, why="generated MySQL root password"),
    ]
    mysql = mysql_root_password_patch()
    for p in trim_patches():
        if p.name == "mysql":
            container = dict(p.merge["spec"]["template"]["spec"]["containers"][0])
            container["env"] = mysql.merge["spec"]["template"]["spec"]["containers"][0]["env"]
            p = Patch("Deployment", "mysql", NAMESPACE, merge={"spec": {"template": {"spec": {"containers": [container]}}}},
                      why="requests and limits; a root password instead of an empty one")
        patches.append(p)
    patches.extend(kfp_image_patches(settings, KFP_DEPLOYMENTS_STANDALONE, NAMESPACE))
    return KfpPlan(
        cluster_scoped=source(settings, CLUSTER_SCOPED),
        env_directory=directory,
        overlay=Overlay(env, tuple(_merge_by_target(patches)), images=kustomize_images(settings)),
    )


def _merge_by_target(patches: list[Patch]) -> list[Patch]:
    """One patch per object: the trim, the driver/launcher env and the amd64 pin of a Deployment merged
    (strategic merge lists of containers merge by name, so bodies combine without loss)."""
    out: dict[tuple, Patch] = {}
    for p in patches:
        key = (p.kind, p.name, p.namespace, p.delete)
        if key in out and not p.delete:
            prev = out[key]
            out[key] = Patch(p.kind, p.name, p.namespace, merge=_deep_merge(prev.merge, p.merge),
                             why=f"{prev.why}; {p.why}")
        else:
            out[key] = p
    return list(out.values())


def _deep_merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _deep_merge(a[k], v) if k in a else v
        return out
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, dict) and "name" in x for x in a + b):
        by_name = {x["name"]: x for x in a}
        for x in b:
            by_name[x["name"]] = _deep_merge(by_name[x["name"]], x) if x["name"] in by_name else x
        return list(by_name.values())
    return b


def port_forward(local_port: int = 8080) -> str:
    return f"kubectl port-forward -n {NAMESPACE} svc/{UI_SERVICE} {local_port}:80"

