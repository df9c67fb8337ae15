"""Image settings: the `images` section (pre-pulling each node's images, the disk they need) and what
an air-gapped stack must bring instead of pulling (`k3s.airgap.platformImages` or a mirror,
`kubeflow.manifestsPath`).

Read by the shared image lists (components/shared/images_plan.py) and the K3s layer's
node_images.py, which writes each node's list or imports the bundle. docs/images.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import profiles
from .common import Reader
from .k3s import K3sSettings
from .kubeflow import KubeflowSettings

SECTIONS = ("images",)


@dataclass(frozen=True)
class ImagesSettings:
    # Write each node's image list into K3s's images directory once K3s runs (components/k3s/node_images.py).
    pre_pull: bool = True
    # Disk the pre-pulled images need per node, checked by the preflight (0: not checked; the
    # compressed sizes are not known offline, see docs/images.md).
    disk_gib: int = 0


def parse_images(r: Reader, value: Any, prof: profiles.Profile) -> ImagesSettings:
    imd = r.obj(value, "images", {"prePull", "diskGiB"})
    return ImagesSettings(
        pre_pull=r.boolean(imd, "prePull", "images.prePull", prof.pre_pull_images),
        disk_gib=r.integer(imd, "diskGiB", "images.diskGiB", 0, 0, 100_000),
    )


def check_airgap_platform(r: Reader, k3s: K3sSettings, kubeflow: KubeflowSettings) -> None:
    """An air-gapped node pulls nothing: the platform's images come in a bundle (or from a mirror), and
    Kubeflow's remote kustomize bases from a local tree."""
    airgap = k3s.airgap
    if airgap is None:
        return
    if airgap.registries and k3s.registries:
        r.fail("k3s.airgap.registries", "give either k3s.registries (mirrors and auth, secrets from Pulumi) or "
               "this file, not both")
    mirror = bool(k3s.registries or airgap.registries)
    if not airgap.platform_images and not mirror:
        r.fail("k3s.airgap.platformImages", "is required on an air-gapped stack: the platform's images (cert-manager, "
               "Istio, storage, Kubeflow Pipelines ...) cannot be pulled. Make the bundle with `python -m tools.images "
               "bundle <stack> --out DIR` on a machine with internet, or set k3s.registries to a local mirror")
    if kubeflow.mode != "none" and not kubeflow.manifests_path:
        r.fail("kubeflow.manifestsPath", "is required on an air-gapped stack with Kubeflow: kustomize fetches remote bases "
               "(Argo Workflows, JobSet, LWS) from GitHub. Prepare a local tree with `python -m tools.images manifests`")
