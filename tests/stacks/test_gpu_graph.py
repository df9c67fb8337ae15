"""Nothing is applied while the GPU toolkit restarts K3s; nothing waits for a restart that does not happen.

The whole program per stack under mocks (tests/harness.py), with a single GPU node that is also the only
server: there, the operator's toolkit restarting K3s takes the API server down, so every Kubernetes object
of every layer (Helm releases, Kubeflow and KFP Directories, Secrets, Namespaces, Profiles) and every
command that talks to the cluster (the footprint guard) must wait, transitively, for `gpu-settled`.
"""

from __future__ import annotations

import pytest

from tests import harness

GPU_COMPONENT_TYPE = "kubeflow-k3s:platform:Gpu"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
SMOKE = "smoke-check"

SINGLE_GPU_NODE = {
    "dev": [{"name": "dev", "role": "server", "connection": "local", "gpu": "nvidia"}],
    "edge": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "amd64", "gpu": "nvidia"}],
}


def in_gpu_layer(run: harness.Run, reg: harness.Registration) -> bool:
    urn = reg.parent
    while urn:
        parent = run.by_urn(urn)
        if parent.type == GPU_COMPONENT_TYPE:
            return True
        urn = parent.parent
    return False


def on_the_cluster(run: harness.Run) -> list[harness.Registration]:
    """Everything applied to (or run against) the cluster after its nodes are Ready, outside the GPU layer.
    The smoke step is left out: it checks the GPU layer itself (a pod per GPU node), so it waits for the whole
    layer by design (tests/components/smoke/test_smoke.py)."""
    nodes_ready = run.get("k3s-nodes-ready")
    return [
        r for r in run.registrations
        if (r.custom or r.remote) and r.type != PROVIDER_TYPE and not in_gpu_layer(run, r) and r.name != SMOKE
        and (r.type.startswith("kubernetes:") or run.waits_for(r, nodes_ready))
    ]


@pytest.fixture(scope="module", params=sorted(SINGLE_GPU_NODE))
def gpu_run(request) -> harness.Run:
    return harness.run_stack(request.param, overrides={"nodes": SINGLE_GPU_NODE[request.param]})


def test_the_single_gpu_node_stacks_use_the_operators_toolkit(gpu_run):
    gpu = next(r for r in gpu_run.registrations if r.type == GPU_COMPONENT_TYPE)
    assert gpu_run.component_outputs[gpu.urn]["restartsK3s"] is True


def test_every_kubernetes_object_waits_for_the_toolkits_restart(gpu_run):
    settled = gpu_run.get("gpu-settled")
    objects = on_the_cluster(gpu_run)
    kinds = {r.type for r in objects}
    # The layers this stack has are all in the check (not a vacuous pass).
    if gpu_run.stack == "dev":
        assert {"kubernetes:helm.sh/v3:Release", "kubernetes:core/v1:Namespace"} <= kinds
    assert "kubernetes:kustomize/v2:Directory" in kinds
    assert "kubernetes:core/v1:Secret" in kinds
    assert any(r.name.endswith("-footprint") for r in objects)
    # The cluster identity's marker and check run before the GPU layer's first object (the operator waits
    # for them, like every Kubernetes object), so before the toolkit it installs can restart K3s.
    operator = gpu_run.get("gpu-operator", "kubernetes:helm.sh/v3:Release")
    before_gpu = {r.name for r in objects if gpu_run.waits_for(operator, r)}
    assert before_gpu == {"k3s-identity-marker", "k3s-identity-check"}, before_gpu
    early = [f"{r.type}::{r.name}" for r in objects if not gpu_run.waits_for(r, settled) and r.name not in before_gpu]
    assert not early, "applied while the toolkit may be restarting K3s:\n" + "\n".join(early)


def test_with_the_hosts_toolkit_nothing_waits_for_the_gpu_layer(gpu_run):
    run = harness.run_stack(gpu_run.stack, overrides={"nodes": SINGLE_GPU_NODE[gpu_run.stack], "gpu": {"toolkit": "host"}})
    settled = run.get("gpu-settled")
    waiting = [r.name for r in on_the_cluster(run) if run.waits_for(r, settled)]
    assert not waiting, waiting


def test_the_cloud_stack_keeps_the_operator_off_its_critical_path(runs):
    # cloud's GPU node uses the host's toolkit (the profile default): cert-manager starts when the nodes are Ready.
    run = runs["cloud"]
    settled = run.get("gpu-settled")
    assert not any(run.waits_for(r, settled) for r in on_the_cluster(run))
