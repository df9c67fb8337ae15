"""Render a Helm release the program installs with real `helm template`, from the pinned upstream chart tree.

`render(upstream, registration)` takes a recorded `kubernetes:helm.sh/v3:Release` (tests/harness.py) and
returns the Kubernetes objects Helm would apply for it: the chart of versions.CHARTS at
../shared/upstream/charts/<key>-<version>, the release's own name, namespace and values, the pinned
Kubernetes minor. Helm is the one scripts/run-tests.sh puts on PATH (.tools/bin).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks import versions
from tests import harness, kustomize_lite

CHART_KEYS = {(repo, chart): key for key, (repo, chart, _) in versions.CHARTS.items()}


def helm() -> str:
    found = shutil.which("helm") or str(harness.ROOT / ".tools" / "bin" / "helm")
    if not Path(found).exists():
        pytest.skip("helm is not installed (scripts/run-tests.sh puts it in .tools/bin)")
    return found


def chart_key(release: harness.Registration) -> str:
    return CHART_KEYS[(release.inputs["repositoryOpts"]["repo"], release.inputs["chart"])]


def render(upstream: Path, release: harness.Registration, tmp_dir: Path) -> list[dict[str, Any]]:
    key = chart_key(release)
    chart = upstream / "charts" / f"{key}-{versions.CHARTS[key][2]}"
    values = tmp_dir / f"{release.name}-values.yaml"
    values.write_text(yaml.safe_dump(release.inputs.get("values") or {}))
    result = subprocess.run(
        [helm(), "template", release.inputs["name"], str(chart), "--namespace", release.inputs["namespace"],
         "--kube-version", f"{versions.KUBERNETES_MINOR}.0", "-f", str(values)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"helm template {key} failed:\n{result.stderr}"
    return kustomize_lite.load_all(result.stdout)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]
