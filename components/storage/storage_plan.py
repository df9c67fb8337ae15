"""Pure planning for the storage layer: which StorageClasses exist, which one is the default, the
Longhorn and NFS chart values, and what the hosts need for them.

Exactly one default StorageClass per stack. K3s's packaged `local-path` class is re-annotated as the
default every time K3s starts (k3s-io/k3s#4083, #11936), so it cannot be made non-default from
Kubernetes: when another class is the default, K3s's local-storage add-on is disabled in the servers'
config.yaml instead (`k3s_disable`).
"""

from __future__ import annotations

from typing import Any

from stacks.settings import Node, Settings

from components.k3s import k3s_plan

NAMESPACE_LONGHORN = "longhorn-system"
NAMESPACE_NFS = "nfs-provisioner"
LOCAL_PATH_CLASS = "local-path"
LONGHORN_CLASS = "longhorn"
NFS_CLASS = "nfs-client"
CLASS_NAMES = {"local-path": LOCAL_PATH_CLASS, "longhorn": LONGHORN_CLASS, "nfs": NFS_CLASS}

# Debian/Ubuntu package names. Longhorn attaches volumes with the host's iscsiadm (open-iscsi, iscsid
# running, iscsi_tcp loaded) and serves RWX volumes over NFSv4 (nfs-common); the NFS provisioner's
# volumes are mounted by the kubelet with the host's mount.nfs (nfs-common).
LONGHORN_PACKAGES = ("open-iscsi", "nfs-common")
LONGHORN_SERVICES = ("iscsid",)
LONGHORN_MODULES = ("iscsi_tcp",)
NFS_PACKAGES = ("nfs-common",)

# Longhorn's own default when there are enough nodes.
DEFAULT_LONGHORN_REPLICAS = 3
HARD_EFFECTS = ("NoSchedule", "NoExecute")


def longhorn_enabled(settings: Settings) -> bool:
    return settings.storage.longhorn is not None


def nfs_enabled(settings: Settings) -> bool:
    return settings.storage.nfs is not None


def default_class(settings: Settings) -> str:
    return CLASS_NAMES[settings.storage.default]


def k3s_disable(settings: Settings) -> list[str]:
    """K3s packaged components to disable on servers for storage: local-storage when it is not the default."""
    return [] if settings.storage.default == "local-path" else ["local-storage"]


def storage_classes(settings: Settings) -> dict[str, bool]:
    """{StorageClass name: is default} of the stack."""
    classes: dict[str, bool] = {}
    if settings.storage.default == "local-path":
        classes[LOCAL_PATH_CLASS] = True
    if longhorn_enabled(settings):
        classes[LONGHORN_CLASS] = settings.storage.default == "longhorn"
    if nfs_enabled(settings):
        classes[NFS_CLASS] = settings.storage.default == "nfs"
    return classes


def host_requirements(settings: Settings, node: Node) -> dict[str, list[str]]:
    """Packages, services and kernel modules node preparation adds for the stack's storage."""
    packages: list[str] = []
    services: list[str] = []
    modules: list[str] = []
    if longhorn_enabled(settings):
        packages += LONGHORN_PACKAGES
        services += LONGHORN_SERVICES
        modules += LONGHORN_MODULES
    if nfs_enabled(settings):
        packages += [p for p in NFS_PACKAGES if p not in packages]
    return {"packages": packages, "services": services, "modules": modules}


# --------------------------------------------------------------------------------------------------
# Longhorn
# --------------------------------------------------------------------------------------------------


def _tolerated_by_longhorn(taint: str) -> bool:
    """Longhorn tolerates the GPU taint (GPU pods must be able to mount volumes) and soft taints."""
    key = taint.split(":")[0].split("=")[0]
    effect = taint.rsplit(":", 1)[1]
    return effect not in HARD_EFFECTS or key == "nvidia.com/gpu"


def replica_nodes(settings: Settings) -> list[str]:
    """Nodes Longhorn can put replicas on: every node whose hard taints Longhorn tolerates."""
    return [n.name for n in settings.nodes if all(_tolerated_by_longhorn(t) for t in k3s_plan.node_taints(settings, n))]


def longhorn_replicas(settings: Settings) -> int:
    """The replica count: as configured, else Longhorn's default of 3 capped at the eligible nodes.
    More replicas than nodes leaves every volume degraded forever (longhorn/longhorn#4764)."""
    assert settings.storage.longhorn is not None
    configured = settings.storage.longhorn.replicas
    return configured if configured is not None else max(1, min(DEFAULT_LONGHORN_REPLICAS, len(replica_nodes(settings))))


def gpu_tolerations(settings: Settings) -> list[dict[str, str]]:
    """Longhorn's tolerations for GPU nodes: `nvidia.com/gpu` (any value), NoSchedule, on every stack.

    From the start, not only once a GPU node exists: Longhorn applies a changed `taint-toleration`
    setting by restarting its system pods and refuses the change while volumes are attached, so adding
    a first GPU node to a running stack must not change it. A toleration no node needs is harmless.
    GPU taints with NoExecute are refused at validation (gpu_plan.problems), so NoSchedule covers
    every GPU taint a stack can have."""
    return [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def _taint_toleration_setting(tolerations: list[dict[str, str]]) -> str:
    """Longhorn's `taintToleration` setting: `kubectl taint` syntax, `;`-separated."""
    parts = []
    for t in tolerations:
        parts.append(f"{t['key']}={t['value']}:{t['effect']}" if t.get("value") else f"{t['key']}:{t['effect']}")
    return ";".join(parts)


def longhorn_values(settings: Settings) -> dict[str, Any]:
    replicas = longhorn_replicas(settings)
    is_default = settings.storage.default == "longhorn"
    tolerations = gpu_tolerations(settings)
    values: dict[str, Any] = {
        "persistence": {
            "defaultClass": is_default,
            "defaultClassReplicaCount": replicas,
            "reclaimPolicy": "Delete",
        },
        "defaultSettings": {
            # JSON per data engine since Longhorn 1.10 (volumes created from the UI).
            "defaultReplicaCount": f'{{"v1":"{replicas}"}}',
            # Without it Longhorn's pre-delete uninstall job refuses to run and a destroy (or a switch
            # away from Longhorn) hangs until Helm's timeout.
            "deletingConfirmationFlag": True,
            # A node with fewer eligible peers than replicas may still hold two replicas.
            "replicaSoftAntiAffinity": replicas > len(replica_nodes(settings)),
        },
        # Pulumi owns upgrades; the pre-upgrade checker job only blocks a Helm upgrade Pulumi asked for.
        "preUpgradeChecker": {"jobEnabled": False},
        "longhornUI": {"replicas": 1},
    }
    if tolerations:
        values["global"] = {"tolerations": tolerations}
        values["defaultSettings"]["taintToleration"] = _taint_toleration_setting(tolerations)
    if len(settings.nodes) == 1:
        # One node: a single CSI sidecar of each kind is enough.
        values["csi"] = {
            "attacherReplicaCount": 1,
            "provisionerReplicaCount": 1,
            "resizerReplicaCount": 1,
            "snapshotterReplicaCount": 1,
        }
    return values


# --------------------------------------------------------------------------------------------------
# NFS
# --------------------------------------------------------------------------------------------------


def nfs_values(settings: Settings) -> dict[str, Any]:
    nfs = settings.storage.nfs
    assert nfs is not None
    return {
        "nfs": {"server": nfs.server, "path": nfs.path, "mountOptions": ["nfsvers=4.1"]},
        "storageClass": {
            "name": NFS_CLASS,
            "defaultClass": settings.storage.default == "nfs",
            "reclaimPolicy": "Delete",
            # Deleted claims are renamed archived-* on the server instead of being wiped.
            "archiveOnDelete": True,
        },
    }


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def problems(settings: Settings) -> list[tuple[str, str]]:
    """(config key, message) for storage settings that only make sense against the node list."""
    out: list[tuple[str, str]] = []
    if settings.storage.default == "local-path":
        for node in settings.servers:
            if "local-storage" in k3s_plan.node_config(settings, node).get("disable", []):
                out.append(
                    (
                        "k3s.extraConfig.disable",
                        "disables local-storage, but storage.default is local-path: the stack would have no "
                        "default StorageClass; choose another storage.default instead",
                    )
                )
                break
    lh = settings.storage.longhorn
    if lh is not None and lh.replicas is not None:
        eligible = replica_nodes(settings)
        if lh.replicas > len(eligible):
            out.append(
                (
                    "storage.longhorn.replicas",
                    f"{lh.replicas} replicas but only {len(eligible)} node(s) can hold one "
                    f"({', '.join(eligible) or 'none'}; nodes with other NoSchedule/NoExecute taints are excluded): "
                    f"use at most {len(eligible)}",
                )
            )
    return out
