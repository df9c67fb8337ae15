"""How much disk a stack's images need on each node, measured from the registries (docs/images.md).

    python -m tools.image_sizes <stack> [--dry-run]

For every image of every node (components/images_plan.images_for, the same list the pre-pull and the
air-gap bundle use) it reads the image's manifest with `skopeo inspect --raw` — for a multi-architecture
index, the manifest of the node's architecture — and adds up the compressed sizes of its layers and config.
That is what a pull downloads and what containerd keeps in its content store; unpacking adds the layers'
uncompressed size on top, which no manifest states. The suggested `images.diskGiB` therefore counts the
compressed size UNPACK_FACTOR times over (content plus unpacked snapshot) and says so: check it once with
`du -sh /var/lib/rancher/k3s/agent/containerd` on a node.

It needs registry access, so it runs on a machine with internet, never during `pulumi up`; `--dry-run`
prints the skopeo commands and runs nothing. The numbers it prints are for `images.diskGiB`, which the
preflight adds to each pre-pulling node's disk floor.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
from typing import Any, Callable

from components.shared import images_plan
from components.kubeflow.kubeflow_overlay import split_image
from stacks.settings import Settings

from .images import ToolError, stack_settings

GIB = 1024**3
# Compressed layers (content store) plus their unpacked snapshots, which are typically 1.5-2.5x the
# compressed size for the Python- and Go-based images of this platform: an estimate, stated as such.
UNPACK_FACTOR = 3.0
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")

Inspect = Callable[[str], dict[str, Any]]


def inspect_command(ref: str) -> list[str]:
    return ["skopeo", "inspect", "--raw", "--retry-times", "3", f"docker://{ref}"]


def skopeo_inspect(ref: str) -> dict[str, Any]:
    done = subprocess.run(inspect_command(ref), capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"skopeo could not read {ref}: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return json.loads(done.stdout)


def compressed_bytes(ref: str, arch: str, inspect: Inspect) -> int:
    """The compressed size of `ref` for linux/`arch`: its layers and config, from its manifest."""
    manifest = inspect(ref)
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        wanted = [m for m in manifest.get("manifests", [])
                  if (m.get("platform") or {}).get("os") == "linux" and (m.get("platform") or {}).get("architecture") == arch]
        if not wanted:
            raise ToolError(f"{ref} has no linux/{arch} image (the node's architecture)")
        name, _, _ = split_image(ref)
        manifest = inspect(f"{name}@{wanted[0]['digest']}")
    layers = manifest.get("layers")
    if layers is None:
        raise ToolError(f"{ref}: not an image manifest (schema 1 or an artifact?)")
    return sum(int(layer.get("size", 0)) for layer in layers) + int((manifest.get("config") or {}).get("size", 0))


def node_sizes(settings: Settings, inspect: Inspect) -> dict[str, tuple[int, int]]:
    """node -> (number of images, compressed bytes). Each reference is read once per architecture."""
    cache: dict[tuple[str, str], int] = {}
    out = {}
    for node in settings.nodes:
        refs = images_plan.images_for(settings, node)
        total = 0
        for ref in refs:
            key = (ref, node.arch)
            if key not in cache:
                cache[key] = compressed_bytes(ref, node.arch, inspect)
            total += cache[key]
        out[node.name] = (len(refs), total)
    return out


def suggested_disk_gib(compressed: int) -> int:
    return math.ceil(compressed * UNPACK_FACTOR / GIB)


def report(sizes: dict[str, tuple[int, int]]) -> str:
    lines = ["node\timages\tcompressed GiB\tsuggested images.diskGiB"]
    for node, (count, size) in sizes.items():
        lines.append(f"{node}\t{count}\t{size / GIB:.1f}\t{suggested_disk_gib(size)}")
    biggest = max((size for _, size in sizes.values()), default=0)
    lines.append(f"set: pulumi config set --path images.diskGiB {suggested_disk_gib(biggest)}"
                 f"  (compressed x{UNPACK_FACTOR:g}: content store and unpacked layers, an estimate)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.image_sizes", description=__doc__.split("\n\n")[0])
    p.add_argument("stack")
    p.add_argument("--dry-run", action="store_true", help="print the skopeo commands, run nothing")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = stack_settings(a.stack)
        if a.dry_run:
            refs = sorted({r for n in settings.nodes for r in images_plan.images_for(settings, n)})
            print("\n".join(shlex.join(inspect_command(r)) for r in refs))
            return 0
        if not shutil.which("skopeo"):
            raise ToolError("skopeo is not installed (apt-get install skopeo); --dry-run prints the commands")
        print(report(node_sizes(settings, skopeo_inspect)))
        return 0
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
