"""gpu-runtimeclass.sh run for real against a stub `k3s kubectl` that keeps the cluster's state in files.

In a user+mount namespace an overlay on /usr/local/bin holds the stub k3s; the script runs as pulumi-command
runs it (`sh -c`, stdin closed). The stub records every call, so the tests check the order of what the
script does, not only its end state: the operator is stopped before the owner reference is removed (else
the operator would put it back), and a missing RuntimeClass is restored with K3s's definition.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from components.gpu import gpu_plan
from components.k3s import scripts
from stacks.settings import parse_settings
from tests.components.gpu.test_gpu_preflight import sandbox_available
from tests.harness import stack_raw

import subprocess

STUB = r"""#!/bin/sh
# stub k3s: `k3s kubectl ...` against files in $STATE
[ "$1" = kubectl ] || exit 2
shift
echo "$*" >> "$STATE/log"
ns=""
if [ "$1" = -n ]; then ns=$2; shift 2; fi
case "$*" in
  "get --raw /readyz") echo ok ;;
  "get runtimeclass nvidia") [ -e "$STATE/rc" ] ;;
  "apply -f -") cat > "$STATE/rc" ;;
  "get deployment gpu-operator") [ -e "$STATE/deploy" ] ;;
  "scale deployment gpu-operator --replicas=0") rm -f "$STATE/pods" ;;
  "get pods -l app=gpu-operator -o name") if [ -e "$STATE/pods" ]; then echo pod/gpu-operator-1; fi ;;
  patch\ runtimeclass\ nvidia*ownerReferences*)
    [ -e "$STATE/rc" ] || exit 1
    if [ -e "$STATE/pods" ]; then echo "operator still running" >> "$STATE/log"; fi
    rm -f "$STATE/ownerrefs" ;;
  *) echo "unexpected: $*" >&2; exit 3 ;;
esac
"""

SETUP = r"""
set -e
T=$SANDBOX
mkdir -p "$T/up" "$T/work"
mount -t overlay overlay -o "lowerdir=/usr/local/bin,upperdir=$T/up,workdir=$T/work" /usr/local/bin
printf '%s' "$STUB" > /usr/local/bin/k3s
chmod +x /usr/local/bin/k3s
exec sh -c "$SCRIPT" </dev/null
"""

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="user+mount namespaces (unshare) are not available")


def run(tmp_path, action: str, *, rc=True, owner=True, operator=True):
    state = tmp_path / "state"
    state.mkdir()
    for name, present in (("rc", rc), ("ownerrefs", owner), ("deploy", operator), ("pods", operator)):
        if present:
            (state / name).write_text("x")
    s = parse_settings(copy.deepcopy(stack_raw("cloud")), "cloud")
    params = {**gpu_plan.runtime_class_params(s), "ACTION": action, "WAIT_SECONDS": 10}
    env = {"PATH": "/usr/bin:/bin", "SANDBOX": str(tmp_path), "STATE": str(state), "STUB": STUB,
           "SCRIPT": scripts.render("gpu-runtimeclass.sh", params)}
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SETUP],
                            env=env, capture_output=True, text=True, timeout=60)
    log = (state / "log").read_text().splitlines() if (state / "log").exists() else []
    return result, state, log


def test_keep_stops_the_operator_then_releases_the_runtime_class(tmp_path):
    result, state, log = run(tmp_path, "keep")
    assert result.returncode == 0, result.stderr
    assert (state / "rc").exists() and not (state / "ownerrefs").exists() and not (state / "pods").exists()
    scale = next(i for i, line in enumerate(log) if line.startswith("-n gpu-operator scale"))
    patch = next(i for i, line in enumerate(log) if line.startswith("patch runtimeclass"))
    assert scale < patch and "operator still running" not in log


def test_keep_restores_a_runtime_class_already_lost(tmp_path):
    result, state, _ = run(tmp_path, "keep", rc=False, owner=False, operator=False)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load((state / "rc").read_text())
    assert doc == {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}


@pytest.mark.parametrize("present", [True, False])
def test_ensure_leaves_an_existing_runtime_class_and_restores_a_missing_one(tmp_path, present):
    result, state, log = run(tmp_path, "ensure", rc=present)
    assert result.returncode == 0, result.stderr
    assert (state / "rc").exists()
    assert any(line == "apply -f -" for line in log) is (not present)
    assert not any(line.startswith(("patch", "-n gpu-operator scale")) for line in log)
