"""An arm64 stack's `kubeflow.images`: a replacement for every image KFP 2.16 publishes for amd64 only
(KFP_AMD64_ONLY_IMAGES in stacks/settings/kubeflow.py), as a user who built them from the 2.16.0 sources would map them."""

from __future__ import annotations

from stacks.settings import KFP_AMD64_ONLY_IMAGES

REGISTRY = "registry.example.com/arm64"


def kfp_arm64_images() -> dict[str, str]:
    return {name: f"{REGISTRY}/{name.rsplit('/', 1)[1]}:2.16.0" for name in KFP_AMD64_ONLY_IMAGES}
