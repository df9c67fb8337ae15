"""Wire the Kubeflow layer onto the platform: full Kubeflow, standalone Pipelines, or nothing."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.config import Secrets
from stacks.settings import Settings

from components.kubeflow import kubeflow_plan
from components import platform_layers
from components.kubeflow.kfp import KfpStandalone
from components.kubeflow.kubeflow import Kubeflow


def _ready(layer: Any) -> list[pulumi.Resource]:
    """A platform layer's `ready` handle, if that layer exists in this stack."""
    handle = getattr(layer, "ready", None) if layer is not None else None
    return [handle] if isinstance(handle, pulumi.Resource) else []


def build(settings: Settings, secrets: Secrets, platform: Any) -> tuple[pulumi.Resource | None, dict[str, object]]:
    """Returns (component, stack outputs). `platform` is components.platform.Platform."""
    mode = settings.kubeflow.mode
    if settings.kubeflow.auto_enabled:
        pulumi.log.info("kubeflow: switched on because needed: " + ", ".join(settings.kubeflow.auto_enabled))
    if mode == "full":
        kf = Kubeflow(
            "kubeflow",
            settings,
            platform.cluster,
            admin_password=secrets.admin_password,
            ssh_private_key=secrets.ssh_private_key,
            identity_provider_secret=secrets.identity_provider_secret,
            cert_manager_ready=_ready(platform.cert_manager),
            istio_ready=_ready(platform.istio),
            storage_ready=_ready(platform.storage),
            gpu_restart=platform_layers.toolkit_restart(platform.gpu),
        )
        return kf, {**kf.outputs, "kubeflowAccess": kubeflow_plan.access_note(settings)}
    if mode == "pipelines":
        kfp = KfpStandalone(
            "kfp", settings, platform.cluster,
            ssh_private_key=secrets.ssh_private_key,
            storage_ready=_ready(platform.storage),
            gpu_restart=platform_layers.toolkit_restart(platform.gpu),
        )
        return kfp, {**kfp.outputs, "kubeflowAccess": kubeflow_plan.access_note(settings)}
    return None, {}
