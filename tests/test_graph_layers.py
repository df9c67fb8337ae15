"""The platform layers in each stack's graph (whole __main__.py under mocks): which layers exist, what
each waits for, and that nothing waits for what it does not need."""

from __future__ import annotations

import pytest
import yaml

from tests import harness
from tests.arm64 import kfp_arm64_images

RELEASE = "kubernetes:helm.sh/v3:Release"
LAYERS = {
    "kubeflow-k3s:platform:Storage": "storage",
    "kubeflow-k3s:platform:CertManager": "cert-manager",
    "kubeflow-k3s:platform:Istio": "istio",
    "kubeflow-k3s:platform:Gpu": "gpu",
}
ISTIO_CHARTS = ["istio-base", "istio-cni", "istio-istiod", "istio-ingressgateway", "istio-local-gateway"]
JETSON_EDGE = {"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64", "gpu": "jetson"}],
               "kubeflow": {"images": kfp_arm64_images()}}
NVIDIA_EDGE = {"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "amd64", "gpu": "nvidia"}]}


@pytest.fixture(scope="module")
def jetson_edge() -> harness.Run:
    return harness.run_stack("edge", overrides=JETSON_EDGE)


@pytest.fixture(scope="module")
def nvidia_edge() -> harness.Run:
    return harness.run_stack("edge", overrides=NVIDIA_EDGE)


def layers(run: harness.Run) -> set[str]:
    return {LAYERS[r.type] for r in run.registrations if r.type in LAYERS}


def release_names(run: harness.Run) -> set[str]:
    return set(run.names(RELEASE))


def in_layer(run: harness.Run, layer_type: str) -> list[harness.Registration]:
    layer = next(r for r in run.registrations if r.type == layer_type)
    return [r for r in run.registrations if r.custom and r.parent == layer.urn]


# Which layers and charts --------------------------------------------------------------------------

def test_dev_has_local_path_cert_manager_and_istio(runs):
    run = runs["dev"]
    assert layers(run) == {"storage", "cert-manager", "istio"}
    assert release_names(run) == {"cert-manager-chart", *ISTIO_CHARTS}
    assert run.exports["defaultStorageClass"] == "local-path"


def test_edge_has_local_path_only(runs):
    # Standalone Pipelines on a small device needs neither cert-manager nor Istio (over a GiB together).
    assert layers(runs["edge"]) == {"storage"}
    assert release_names(runs["edge"]) == set()


def test_a_bare_platform_keeps_cert_manager_and_istio():
    run = harness.run_stack("edge", overrides={"kubeflow": {"mode": "none"}})
    assert layers(run) == {"storage", "cert-manager", "istio"}
    assert release_names(run) == {"cert-manager-chart", *ISTIO_CHARTS}


def test_edge_with_a_jetson_gets_the_device_plugin_not_the_operator(jetson_edge):
    assert layers(jetson_edge) == {"storage", "gpu"}
    assert {"gpu-device-plugin"} <= release_names(jetson_edge) and "gpu-operator" not in release_names(jetson_edge)


def test_edge_with_an_nvidia_gpu_gets_the_operator(nvidia_edge):
    assert "gpu-operator" in release_names(nvidia_edge) and "gpu-device-plugin" not in release_names(nvidia_edge)


def test_cloud_has_longhorn_acme_istio_and_the_operator_for_its_gpu_agent(runs):
    run = runs["cloud"]
    assert layers(run) == {"storage", "cert-manager", "istio", "gpu"}
    assert {"storage-longhorn", "cert-manager-chart", "gpu-operator", *ISTIO_CHARTS} == release_names(run)
    issuers = {r.inputs["metadata"]["name"]: r for r in run.registrations if r.inputs.get("kind") == "ClusterIssuer"}
    assert set(issuers) == {"selfsigned", "kubeflow-k3s-ca", "kubeflow-self-signing-issuer", "letsencrypt"}
    assert issuers["letsencrypt"].inputs["spec"]["acme"]["email"] == "ops@example.com"
    assert "GPU_NODES=gpu-1" in run.get("gpu-settled").inputs["create"]
    assert run.exports["defaultStorageClass"] == "longhorn"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_no_runtime_class_is_created(stack, runs, jetson_edge):
    for run in (runs[stack], jetson_edge):
        assert not [r for r in run.registrations if "RuntimeClass" in r.type], "K3s ships the nvidia RuntimeClass"


# One default StorageClass ------------------------------------------------------------------------

def default_classes(run: harness.Run) -> list[str]:
    """Default StorageClasses as the hosts and charts will create them, read from the recorded inputs."""
    out = []
    server = next(r for r in run.registrations if r.name.endswith("-install") and "ROLE=server" in r.inputs["create"])
    config = yaml.safe_load(server.inputs["stdin"])
    if "local-storage" not in config.get("disable", []):
        out.append("local-path")  # K3s marks it default on every start
    for r in run.by_type(RELEASE):
        values = r.inputs.get("values") or {}
        if r.inputs["chart"] == "longhorn" and values["persistence"]["defaultClass"]:
            out.append("longhorn")
        if r.inputs["chart"] == "nfs-subdir-external-provisioner" and values["storageClass"]["defaultClass"]:
            out.append(values["storageClass"]["name"])
    return out


@pytest.mark.parametrize("stack", harness.STACKS)
def test_exactly_one_default_storage_class(stack, runs):
    assert default_classes(runs[stack]) == [runs[stack].exports["defaultStorageClass"]]


@pytest.mark.parametrize("storage", [
    {"default": "nfs", "longhorn": {}, "nfs": {"server": "10.0.0.5", "path": "/exports"}},
    {"default": "local-path", "nfs": {"server": "10.0.0.5", "path": "/exports"}},
])
def test_exactly_one_default_storage_class_with_nfs(storage):
    stack = "cloud" if storage["default"] != "local-path" else "edge"
    run = harness.run_stack(stack, overrides={"storage": storage})
    assert default_classes(run) == [run.exports["defaultStorageClass"]]


# What waits for what ----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_platform_resource_uses_the_cluster_provider_and_goes_with_it(stack, runs):
    run = runs[stack]
    # Kubernetes objects and the layers' commands on the first server go with the cluster identity
    # (docs/k3s.md "A new cluster behind the same stack"), not with one host's install: re-hosting the first
    # server of an HA cluster keeps the cluster, so nothing of the layers is replaced or re-run.
    identity = run.get("k3s-cluster-identity").urn
    for layer_type in LAYERS:
        if not any(r.type == layer_type for r in run.registrations):
            continue
        for r in in_layer(run, layer_type):
            assert r.deleted_with == identity, r.name
            if r.type.startswith("kubernetes:"):
                assert "::k3s-k8s::" in r.provider, r.name
                assert run.depends_on(r.name, "k3s-nodes-ready"), f"{r.name} does not wait for the nodes"


def test_cert_manager_issuers_wait_for_the_webhook(runs):
    run = runs["cloud"]
    for name in ("cert-manager-issuer-selfsigned", "cert-manager-issuer-kubeflow-k3s-ca",
                 "cert-manager-issuer-letsencrypt", "cert-manager-ca-root"):
        assert run.depends_on(name, "cert-manager-chart"), name
    assert run.depends_on("cert-manager-issuer-kubeflow-k3s-ca", "cert-manager-ca-root")
    chart = run.get("cert-manager-chart").inputs
    assert chart["waitForJobs"] is True and chart["values"]["startupapicheck"]["enabled"] is True


MESH_STACKS = ("dev", "cloud")  # edge runs standalone Pipelines without cert-manager and Istio


@pytest.mark.parametrize("stack", MESH_STACKS)
def test_istio_install_order(stack, runs):
    run = runs[stack]
    assert run.depends_on("istio-istiod", "istio-base") and run.depends_on("istio-istiod", "istio-cni")
    for gateway in ("istio-ingressgateway", "istio-local-gateway"):
        assert run.depends_on(gateway, "istio-istiod")
    for r in in_layer(run, "kubeflow-k3s:platform:Istio"):
        if r.type == "kubernetes:apiextensions.k8s.io:CustomResource" and r.inputs["apiVersion"].endswith("istio.io/v1"):
            assert run.depends_on(r.name, "istio-istiod"), f"{r.name} is admitted by istiod's webhook"
    # The mesh-wide deny comes after the gateways' ALLOW policies have somewhere to apply.
    assert run.depends_on("istio-authorizationpolicy-global-deny-all", "istio-ingressgateway")


@pytest.mark.parametrize("stack", MESH_STACKS)
def test_istio_charts_do_not_wait_for_cert_manager_only_the_certificate_does(stack, runs):
    run = runs[stack]
    for chart in ISTIO_CHARTS:
        assert not run.depends_on(chart, "cert-manager-chart"), chart
    certificate = run.get("istio-gateway-certificate")
    assert certificate.inputs["metadata"] == {"name": "kubeflow-gateway-tls", "namespace": "istio-system"}
    issuer = certificate.inputs["spec"]["issuerRef"]["name"]
    assert run.depends_on("istio-gateway-certificate", f"cert-manager-issuer-{issuer}")
    assert certificate.inputs["spec"]["dnsNames"] == [run.component_outputs and _tls_host(run)]
    # ACME's HTTP-01 challenge is answered by the ingress gateway: it must be up first.
    assert run.depends_on("istio-gateway-certificate", "istio-ingressgateway") == (issuer == "letsencrypt")


def _tls_host(run: harness.Run) -> str:
    istio = next(r for r in run.registrations if r.type == "kubeflow-k3s:platform:Istio")
    return run.component_outputs[istio.urn]["tlsHost"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_storage_and_gpu_do_not_wait_for_istio_or_cert_manager(stack, runs, jetson_edge):
    for run in (runs[stack], jetson_edge):
        waiting = [r for t in ("kubeflow-k3s:platform:Storage", "kubeflow-k3s:platform:Gpu")
                   if any(x.type == t for x in run.registrations) for r in in_layer(run, t)]
        for r in waiting:
            for other in ("istio-istiod", "istio-base", "cert-manager-chart"):
                if other in run.names():
                    assert not run.depends_on(r.name, other), f"{r.name} waits for {other}"


def test_nothing_installs_while_the_gpu_toolkit_restarts_k3s(runs, nvidia_edge):
    # cloud's default is the host's toolkit (no restart): here its GPU node uses the operator's.
    cloud = harness.run_stack("cloud", overrides={"gpu": {"timeSlicing": 4, "toolkit": "operator"}})
    for run in (cloud, nvidia_edge):
        assert run.depends_on("gpu-settled", "gpu-operator")
        others = [r for r in run.by_type(RELEASE) if r.name != "gpu-operator"]
        assert others or run is nvidia_edge  # edge with local-path has no other release
        for r in others:
            assert run.depends_on(r.name, "gpu-settled"), f"{r.name} may install during the toolkit's K3s restart"
        assert run.depends_on("gpu-operator", "k3s-nodes-ready")


def test_the_jetson_path_restarts_nothing_so_nothing_waits_for_it(jetson_edge):
    for r in jetson_edge.by_type(RELEASE):
        if r.name != "gpu-device-plugin":
            assert not jetson_edge.depends_on(r.name, "gpu-settled"), r.name


def test_gateway_is_a_load_balancer_on_laptop_and_edge_and_node_ports_on_cloud(runs):
    def service(run):
        return run.get("istio-ingressgateway").inputs["values"]["service"]

    assert service(runs["dev"])["type"] == "LoadBalancer"
    assert service(harness.run_stack("edge", overrides={"kubeflow": {"mode": "none"}}))["type"] == "LoadBalancer"
    cloud = service(runs["cloud"])
    assert cloud["type"] == "NodePort"
    assert {p["name"]: p.get("nodePort") for p in cloud["ports"]} == {"status-port": None, "http2": 30080, "https": 30443}
    # Traefik would hold 80/443 on the node and leave ServiceLB's gateway pending.
    for stack in harness.STACKS:
        server = next(r for r in runs[stack].registrations if r.name.endswith("-install") and "ROLE=server" in r.inputs["create"])
        assert "traefik" in yaml.safe_load(server.inputs["stdin"])["disable"]


def test_longhorn_host_packages_are_prepared_only_on_longhorn_stacks(runs):
    for stack in harness.STACKS:
        prepares = [r for r in runs[stack].registrations if r.name.endswith("-prepare")]
        assert prepares
        for r in prepares:
            has = "open-iscsi nfs-common" in r.inputs["create"] and "SERVICES=iscsid" in r.inputs["create"]
            assert has == (stack == "cloud"), (stack, r.name)


def test_too_many_longhorn_replicas_fail_before_anything_is_created():
    from stacks.settings import ConfigError

    with pytest.raises(ConfigError) as err:
        harness.run_stack("edge", overrides={"storage": {"default": "longhorn", "longhorn": {"replicas": 2}}})
    assert [key for key, _ in err.value.problems] == ["storage.longhorn.replicas"]
    assert not [r for r in err.value.recorded if r.custom]  # not even the K3s commands
