"""Storage settings: the `storage` section (the default StorageClass, local-path's directory, Longhorn's
replicas, an existing NFS export).

Read by the storage layer (components/storage/): storage_plan chooses the classes and the Helm values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import profiles
from .common import Reader

SECTIONS = ("storage",)

STORAGE_CLASSES = ("local-path", "longhorn", "nfs")


@dataclass(frozen=True)
class LonghornSettings:
    # None: Longhorn's default of 3, capped at the nodes that can hold a replica (components/storage/storage_plan.py).
    replicas: int | None = None


@dataclass(frozen=True)
class NfsSettings:
    server: str
    path: str


@dataclass(frozen=True)
class StorageSettings:
    default: str
    local_path: str = "/var/lib/rancher/k3s/storage"
    longhorn: LonghornSettings | None = None
    nfs: NfsSettings | None = None


def parse_storage(r: Reader, value: Any, prof: profiles.Profile) -> StorageSettings:
    std = r.obj(value, "storage", {"default", "localPath", "longhorn", "nfs"})
    longhorn = None
    default_class = r.choice(std, "default", "storage.default", STORAGE_CLASSES, prof.storage)
    if std.get("longhorn") is not None or default_class == "longhorn":
        ld = r.obj(std.get("longhorn"), "storage.longhorn", {"replicas"})
        longhorn = LonghornSettings(replicas=r.integer(ld, "replicas", "storage.longhorn.replicas", None, 1, 10))
    nfs = None
    if std.get("nfs") is not None:
        nd = r.obj(std["nfs"], "storage.nfs", {"server", "path"})
        nfs = NfsSettings(
            server=r.host(nd, "server", "storage.nfs.server") or "",
            path=r.string(nd, "path", "storage.nfs.path") or "",
        )
        if nfs.path and not nfs.path.startswith("/"):
            r.fail("storage.nfs.path", f"{nfs.path!r} must be an absolute export path")
    if default_class == "nfs" and nfs is None:
        r.fail("storage.nfs", "is required when storage.default is 'nfs' ({server, path} of an existing NFS export)")
    local_path = r.string(std, "localPath", "storage.localPath", "/var/lib/rancher/k3s/storage")
    if local_path and not local_path.startswith("/"):
        r.fail("storage.localPath", f"{local_path!r} must be an absolute path on the nodes")
    return StorageSettings(default=default_class or prof.storage, local_path=local_path, longhorn=longhorn, nfs=nfs)
