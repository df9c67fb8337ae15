"""Build the whole platform of a stack from its settings: the one place that wires the layers."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.config import Secrets
from stacks.settings import Settings

from components.k3s import k3s_plan
from components.kubeflow import kubeflow_layer
from components import platform_layers
from components.smoke import smoke_plan
from components.k3s.k3s_cluster import K3sCluster
from components.smoke.smoke import Smoke


@dataclass
class Platform:
    """Handles the layers give each other. A layer waits only for what it really needs:
    - cluster.k8s_options(parent, depends_on=[...]): provider, nodes Ready, identity check, deleted with the cluster identity.
    - cert_manager.ready: after it, cert-manager's webhook serves (Certificates/Issuers can be created).
    - istio.ready: after it, istiod serves (sidecar injection and Istio CRDs work).
    """

    cluster: K3sCluster
    outputs: dict[str, object]
    storage: object | None = None
    cert_manager: object | None = None
    istio: object | None = None
    gpu: object | None = None
    kubeflow: object | None = None
    smoke: Smoke | None = None


def build(settings: Settings, secrets: Secrets) -> Platform:
    for warning in settings.warnings():
        pulumi.log.warn(warning)
    platform_layers.validate(settings)
    cluster = K3sCluster("k3s", settings, secrets.ssh_private_key, secrets.k3s_token, registries=secrets.registries)
    layers = platform_layers.build_layers(settings, cluster)
    outputs: dict[str, object] = {
        "kubeconfig": cluster.kubeconfig,
        "apiEndpoint": k3s_plan.api_url(settings),
        "k3sVersion": settings.k3s.version,
        "profile": settings.profile,
        "nodes": {n.name: {"role": n.role, "host": n.host or "local", "gpu": n.gpu} for n in settings.nodes},
    }
    outputs["defaultStorageClass"] = layers.storage.default_class
    if layers.istio is not None:
        outputs["gatewayTlsSecret"] = f"{layers.istio.namespace}/{layers.istio.tls_secret_name}"
    built = Platform(cluster=cluster, outputs=outputs, storage=layers.storage, cert_manager=layers.cert_manager,
                     istio=layers.istio, gpu=layers.gpu)
    # Last layer: Kubeflow (full), Kubeflow Pipelines alone, or nothing (settings.kubeflow.mode).
    built.kubeflow, kubeflow_outputs = kubeflow_layer.build(settings, secrets, built)
    outputs.update(kubeflow_outputs)
    # The very last step: the platform checked as its users use it (smoke_plan), after everything.
    if built.kubeflow is not None and smoke_plan.enabled(settings):
        after = [r for r in (built.kubeflow, built.istio, built.storage, built.gpu) if r is not None]
        built.smoke = Smoke("smoke", settings, cluster, after=after,
                            admin_password=getattr(getattr(built.kubeflow, "credentials", None), "admin_password", None))
        outputs["installSeconds"] = built.smoke.install_seconds
        outputs["smokeReport"] = built.smoke.report
    return built
