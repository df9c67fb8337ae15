"""tools.image_sizes: disk per node from the registries' manifests, run end to end against a fake `skopeo`
on PATH that answers like a registry (an OCI index per image, a manifest per architecture)."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys

from components.shared import images_plan
from tools import image_sizes
from tools.images import stack_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIB = 1024**2

# The fake registry: every image has an amd64 and an arm64 manifest; sizes differ per architecture so a
# wrong choice shows. Layer sizes: amd64 100 MiB + 20 MiB, arm64 90 MiB; config 1 KiB each.
FAKE_SKOPEO = r'''#!/usr/bin/env python3
import json, sys
ref = sys.argv[-1].removeprefix("docker://")
if ref.endswith(("a" * 64, "b" * 64)):  # a manifest this index named (other digests: upstream's, an index)
    arch = "amd64" if ref.endswith("a" * 64) else "arm64"
    layers = [100, 20] if arch == "amd64" else [90]
    print(json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"size": 1024},
                      "layers": [{"size": n * 1024 * 1024} for n in layers]}))
else:
    print(json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "arm64"}}]}))
'''


def run_tool(tmp_path, *args):
    fake = tmp_path / "skopeo"
    fake.write_text(FAKE_SKOPEO)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "tools.image_sizes", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def fake_inspect(ref):
    """The fake registry in-process (the end-to-end test runs it as `skopeo`)."""
    out: list[str] = []
    code = FAKE_SKOPEO.split("\n", 1)[1].replace("import json, sys\n", "").replace("print(", "out.append(")
    exec(code, {"json": json, "sys": type("S", (), {"argv": ["skopeo", f"docker://{ref}"]}), "out": out})
    return json.loads(out[0])


def test_each_node_adds_up_its_own_images_for_its_architecture():
    settings = stack_settings("cloud")
    sizes = image_sizes.node_sizes(settings, fake_inspect)
    for node in settings.nodes:
        count = len(images_plan.images_for(settings, node))
        per_image = 120 * MIB + 1024 if node.arch == "amd64" else 90 * MIB + 1024
        assert sizes[node.name] == (count, count * per_image), node.name


def test_the_command_prints_a_row_per_node_and_the_setting(tmp_path):
    done = run_tool(tmp_path, "edge")
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()[1:-1]]
    settings = stack_settings("edge")
    compressed = image_sizes.node_sizes(settings, fake_inspect)["edge-1"][1]
    assert rows == [["edge-1", str(len(images_plan.images_for(settings, settings.nodes[0]))),
                     f"{compressed / image_sizes.GIB:.1f}", str(image_sizes.suggested_disk_gib(compressed))]]
    assert f"images.diskGiB {image_sizes.suggested_disk_gib(compressed)}" in done.stdout.splitlines()[-1]


def test_an_index_resolves_to_the_nodes_architecture():
    assert image_sizes.compressed_bytes("ghcr.io/kubeflow/kfp-api-server:2.16.0", "arm64", fake_inspect) == 90 * MIB + 1024
    assert image_sizes.compressed_bytes("ghcr.io/kubeflow/kfp-api-server:2.16.0", "amd64", fake_inspect) == 120 * MIB + 1024


def test_dry_run_prints_one_command_per_image_and_runs_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.image_sizes", "edge", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    settings = stack_settings("edge")
    refs = sorted({r for n in settings.nodes for r in images_plan.images_for(settings, n)})
    assert done.stdout.splitlines() == [f"skopeo inspect --raw --retry-times 3 docker://{r}" for r in refs]


def test_a_bad_stack_is_one_line(tmp_path):
    done = run_tool(tmp_path, "nope")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no stack 'nope': Pulumi.nope.yaml does not exist (stacks: cloud, dev, edge)"]
