"""Pure plan of what each node gets ahead of need: its image list for K3s to pre-pull, the air-gapped
platform bundle it imports, and K3s's registries.yaml (mirrors and auth).

Pre-pull (docs.k3s.io "Import Images", section "Pre-import images"): a text file of image references,
one per line, in /var/lib/rancher/k3s/agent/images/ makes K3s pull them into containerd. K3s picks such
files up *while running* as of the January 2025 releases (v1.32.0+k3s1, v1.31.5+k3s1, v1.30.9+k3s1,
v1.29.13+k3s1); before that only at start, and a list present before the first start holds K3s's
start until every image is pulled. So the list is written after the install (K3s running), never
before, and only where the version has the watcher; nothing waits for the pulls.

Bundle: image archives (`tools.images bundle`: skopeo docker-archive, one per image) staged in a folder
of their own and imported with `k3s ctr -n k8s.io images import` once K3s runs; the cluster's
readiness (and so every Kubernetes object) waits for the import, because nothing can start without it.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import re
from typing import Mapping

import yaml

from stacks.settings import ConfigError, Node, Registries, Settings

from components.shared import images_plan

IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
LIST_FILE = "kubeflow-k3s-platform.txt"
BUNDLE_DIR = "/var/lib/kubeflow-k3s/platform-images"  # apart from the K3s air-gap staging folder
REGISTRIES_FILE = "/etc/rancher/k3s/registries.yaml"
IMPORT_WAIT_SECONDS = 1800

# First release of each minor whose agent imports files added to the images directory while running.
PREPULL_SINCE = {29: 13, 30: 9, 31: 5}  # minor -> patch; 1.32.0 and later: every release
VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)\+k3s\d+$")


def prepull_supported(version: str) -> bool:
    m = VERSION_RE.match(version)
    if not m:
        return False
    minor, patch = int(m.group(1)), int(m.group(2))
    if minor >= 32:
        return True
    return minor in PREPULL_SINCE and patch >= PREPULL_SINCE[minor]


def prepull_list(settings: Settings, node: Node) -> str:
    """The node's list file: one reference per line (empty when pre-pull is off or unsupported)."""
    if not settings.images.pre_pull or not prepull_supported(settings.k3s.version):
        return ""
    airgap = settings.k3s.airgap
    if airgap and not (settings.k3s.registries or airgap.registries):
        return ""  # nothing to pull from: the bundle brings every image
    refs = images_plan.images_for(settings, node)
    return "".join(f"{r}\n" for r in refs)


def prepull_params(node: Node, text: str) -> dict[str, object]:
    """The list travels in the command text (nothing secret in it, and a preview shows what changed)."""
    return {
        "NODE_NAME": node.name,
        "IMAGES_DIR": IMAGES_DIR,
        "LIST_FILE": LIST_FILE,
        "IMAGES": text,
        "LIST_SHA256": hashlib.sha256(text.encode()).hexdigest(),
    }


# --------------------------------------------------------------------------------------------------
# The air-gapped platform bundle
# --------------------------------------------------------------------------------------------------


def bundle_files(settings: Settings) -> list[pathlib.Path]:
    """The local image archives of k3s.airgap.platformImages (a .tar, or a folder of them)."""
    airgap = settings.k3s.airgap
    if airgap is None or not airgap.platform_images:
        return []
    path = pathlib.Path(airgap.platform_images)
    if path.is_file() and path.name.endswith(".tar"):
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(".tar"))
        if files:
            return files
    raise ConfigError([("k3s.airgap.platformImages",
                        f"{airgap.platform_images!r} is neither a .tar image archive nor a folder holding some "
                        "(make it with `python -m tools.images bundle <stack> --out DIR`)")])


def bundle_fingerprint(files: list[pathlib.Path]) -> str:
    """Names and sizes of the archives: a new or changed image re-runs the import. Cheap on GBs of data
    (the copy itself is keyed on the archives' content by Pulumi's asset hash)."""
    text = "\n".join(f"{p.name}\t{p.stat().st_size}" for p in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def import_params(node: Node) -> dict[str, object]:
    return {"NODE_NAME": node.name, "BUNDLE_DIR": BUNDLE_DIR, "WAIT_SECONDS": IMPORT_WAIT_SECONDS}


def disk_gib(settings: Settings, node: Node) -> int:
    """Disk beyond the profile's floor that the images need on this node: the staged bundle plus at
    least as much again once imported (a lower bound: layers unpack larger than they compress), and
    images.diskGiB when the node pre-pulls."""
    total = 0
    files = bundle_files(settings)
    if files:
        total += math.ceil(2 * sum(os.path.getsize(p) for p in files) / 2**30)
    if prepull_list(settings, node):
        total += settings.images.disk_gib
    return total


# --------------------------------------------------------------------------------------------------
# registries.yaml
# --------------------------------------------------------------------------------------------------


def registries_document(registries: Registries, secrets: Mapping[str, str]) -> dict:
    """K3s's registries.yaml (docs.k3s.io "Private Registry Configuration") with `<key>From` replaced by
    the named secret's value."""
    from stacks.settings import REGISTRY_AUTH_SECRETS

    doc: dict = {}
    if registries.mirrors:
        doc["mirrors"] = {k: dict(v) for k, v in registries.mirrors.items()}
    configs = {}
    for host, cfg in registries.configs.items():
        out: dict = {}
        if cfg.get("auth"):
            auth = {k: v for k, v in cfg["auth"].items() if k not in REGISTRY_AUTH_SECRETS.values()}
            for plain, ref in REGISTRY_AUTH_SECRETS.items():
                if ref in cfg["auth"]:
                    auth[plain] = secrets[cfg["auth"][ref]]
            out["auth"] = auth
        if cfg.get("tls"):
            out["tls"] = dict(cfg["tls"])
        configs[host] = out
    if configs:
        doc["configs"] = configs
    return doc


def render_registries(registries: Registries, secrets: Mapping[str, str]) -> str:
    return yaml.safe_dump(registries_document(registries, secrets), sort_keys=True, default_flow_style=False)


def registries_marker(text: str) -> str:
    """A comment line appended to the node's config.yaml (the install's stdin) naming the registries.yaml
    content. K3s reads registries.yaml only at start, so a changed file needs a restart; rather than a
    second restart path on the registries command (every node's command depends only on its own prepare
    step, so all nodes would restart at once, each blocking on the Type=notify unit), the change reaches
    the install command: its stdin changes, Pulumi runs its update, and install.sh's digest of
    config.yaml changes, so it restarts K3s with --no-block and a bounded wait. Installs run servers one
    at a time in order, agents after the first server (K3sCluster), so a mirror change or a password
    rotation restarts the nodes in that order, never all at once. Lives in a 0600 file that holds the
    cluster token; the digest is of the secret-filled text."""
    return f"# k3s.registries sha256 {hashlib.sha256(text.encode()).hexdigest()}\n"


def registries_params(node: Node) -> dict[str, object]:
    return {"NODE_NAME": node.name, "REGISTRIES_FILE": REGISTRIES_FILE}


def registries_scripts(node: Node) -> dict[str, str]:
    from components.k3s import scripts

    return {
        "registries": scripts.render("registries.sh", registries_params(node)),
        "registries-remove": scripts.render("registries-remove.sh", registries_params(node)),
    }


def node_scripts(settings: Settings, node: Node) -> dict[str, str]:
    """Every script of this module for one node, rendered (the component picks what the stack uses)."""
    from components.k3s import scripts

    listing = {"NODE_NAME": node.name, "IMAGES_DIR": IMAGES_DIR, "LIST_FILE": LIST_FILE}
    bundle = {"NODE_NAME": node.name, "BUNDLE_DIR": BUNDLE_DIR}
    return {
        "prepull": scripts.render("prepull.sh", prepull_params(node, prepull_list(settings, node))),
        "unprepull": scripts.render("unprepull.sh", listing),
        "bundle-dir": scripts.render("platform-images-dir.sh", bundle),
        "bundle-remove": scripts.render("platform-images-remove.sh", bundle),
        "import": scripts.render("platform-images.sh", import_params(node)),
        **registries_scripts(node),
    }
