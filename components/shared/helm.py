"""One way to install a third-party chart: a Helm release pinned by stacks/versions.py CHARTS.

`helm.v3.Release` rather than `helm.v4.Chart`: these charts depend on Helm hooks (cert-manager's
startupapicheck, Longhorn's uninstall job, the GPU operator's CRD upgrade job), which only a real Helm
install runs; a Release also gives `wait`, an install timeout and an atomic upgrade that rolls back.
The price is a chart-level diff in `pulumi preview` instead of per-object diffs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s

from stacks import versions

DEFAULT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class ChartRef:
    key: str
    repo: str
    chart: str
    version: str


def chart(key: str) -> ChartRef:
    """The pinned (repository, chart, version) of a CHARTS entry."""
    repo, name, version = versions.CHARTS[key]
    return ChartRef(key=key, repo=repo, chart=name, version=version)


def release(
    name: str,
    key: str,
    *,
    release_name: str,
    namespace: str,
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
    create_namespace: bool = True,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    wait_for_jobs: bool = False,
    atomic: bool = True,
) -> k8s.helm.v3.Release:
    """A Helm release of chart `key` that waits for its workloads and rolls back a failed upgrade."""
    ref = chart(key)
    return k8s.helm.v3.Release(
        name,
        name=release_name,  # fixed, not auto-named: other objects select on labels derived from it
        chart=ref.chart,
        version=ref.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ref.repo),
        namespace=namespace,
        create_namespace=create_namespace,
        values=dict(values),
        timeout=timeout_seconds,
        wait_for_jobs=wait_for_jobs,
        atomic=atomic,
        cleanup_on_fail=True,
        # Helm installs a chart's crds/ only on first install; the charts here template their CRDs
        # (cert-manager crds.enabled, istio base) so upgrades carry CRD changes too.
        skip_crds=False,
        opts=opts,
    )
