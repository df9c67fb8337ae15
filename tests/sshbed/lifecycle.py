"""The K3s lifecycle scenarios' shared parts: simulated nodes, the program evaluated under the mocks
for them (memoized), and a deployment of it over the SSH bed."""

from __future__ import annotations

import functools
import json
import platform

from stacks import versions
from tests import harness
from tests.sshbed.engine import Deployment

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
NEXT_VERSION = "v1.34.7+k3s1"
assert versions.K3S_VERSION != NEXT_VERSION
SHORT_WAIT = 4  # seconds: the bound a test gives install.sh where it expects a timeout


def node(name, address, role="server", **extra):
    return {"name": name, "host": address, "role": role, "arch": ARCH, **extra}


HA = [node("server-1", "10.9.0.11"), node("server-2", "10.9.0.12"), node("server-3", "10.9.0.13"),
      node("agent-1", "10.9.0.21", "agent")]


def program(nodes, k3s=None, **overrides):
    """The whole __main__ of an edge-profile stack with these nodes, under the mocks (memoized: the
    evaluation is deterministic, and tests only read the registrations)."""
    key = json.dumps([nodes, k3s, overrides], sort_keys=True)
    # Not for air-gap files: the program hashes their content, which a test changes in place.
    return _program.__wrapped__(key) if (k3s or {}).get("airgap") else _program(key)


@functools.lru_cache(maxsize=None)
def _program(key):
    nodes, k3s, overrides = json.loads(key)
    config = {
        "nodes": nodes,
        "preflight": {"minMemoryMiB": 256, "minDiskGiB": 1},
        "k3s": {"installTimeoutSeconds": 60, **(k3s or {})},
        "kubeflow": {"mode": "none"},  # the K3s layer is what runs here; fewer layers, faster evaluations
        **overrides,
    }
    return harness.run_stack("edge", overrides=config)


def deploy(bed, nodes, wait=None):
    hosts = {n["host"]: bed.host(n["name"] + ("" if n["name"] not in bed.hosts else "-new"), n["host"]) for n in nodes}

    def tweak(name, text):
        return text.replace("\nWAIT_SECONDS=60\n", f"\nWAIT_SECONDS={wait}\n") if wait else text

    return Deployment(hosts, tweak=tweak)


def bed_calls(bed):
    return [tuple(line.split("\t", 1)) for line in (bed.cluster / "calls.log").read_text().splitlines()]


def restarts(bed, host):
    return [c for c in bed.calls(host) if c.startswith("systemctl restart")]


def airgap(tmp_path, bed, version=versions.K3S_VERSION, registries="mirrors: {}\n"):
    """K3s's air-gap files for this machine's architecture: the bed's stand-in binary, an archive, install.sh."""
    files = tmp_path / "airgap"
    files.mkdir(exist_ok=True)
    (files / "k3s").write_text((bed.cluster / "k3s.template").read_text().replace("@VERSION@", version))
    (files / f"k3s-airgap-images-{ARCH}.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd images")
    (files / "install.sh").write_text((bed.cluster / "install.sh").read_text())
    (files / "registries.yaml").write_text(registries)
    return {"binary": str(files / "k3s"), "images": str(files / f"k3s-airgap-images-{ARCH}.tar.zst"),
            "installScript": str(files / "install.sh"), "registries": str(files / "registries.yaml")}
