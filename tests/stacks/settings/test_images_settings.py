"""stacks/settings/images.py: the `images` section, and what an air-gapped stack brings instead of pulling."""

from __future__ import annotations

import pytest

from stacks import profiles
from tests.stacks.settings.raw import edge, problems, settings, stack

AIRGAP = {"binary": "./airgap/k3s", "images": "./airgap/k3s-airgap-images-amd64.tar.zst",
          "installScript": "./airgap/install.sh"}
MIRROR = {"mirrors": {"docker.io": {"endpoint": ["https://mirror.local:5000"]}}}


def test_prepull_defaults_per_profile():
    for name, profile in (("dev", "laptop"), ("edge", "edge"), ("cloud", "cloud")):
        assert settings(name).images.pre_pull is profiles.PROFILES[profile].pre_pull_images
    assert settings("edge", images={"prePull": True}).images.pre_pull
    assert problems(stack("dev", images={"prePull": "sometimes"})) == {
        "images.prePull": "must be true or false, got 'sometimes'"}


@pytest.mark.parametrize("value,ok", [(0, True), (40, True), ("12", True), (-1, False), ("lots", False), (True, False)])
def test_disk_gib_is_a_whole_number_of_gib(value, ok):
    if ok:
        assert settings("dev", images={"diskGiB": value}).images.disk_gib == int(value)
    else:
        assert "images.diskGiB" in problems(stack("dev", images={"diskGiB": value}))


def test_an_air_gapped_stack_brings_the_images_and_the_manifests():
    found = problems(edge(k3s={"airgap": AIRGAP}), "edge")
    assert "tools.images bundle" in found["k3s.airgap.platformImages"]
    assert "tools.images manifests" in found["kubeflow.manifestsPath"]
    # A bundle, or a mirror instead of one; Kubeflow off needs no manifests.
    assert settings("edge", k3s={"airgap": {**AIRGAP, "platformImages": "./bundle"}},
                    kubeflow={"mode": "pipelines", "manifestsPath": "./m"}).k3s.airgap.platform_images == "./bundle"
    assert settings("edge", k3s={"airgap": AIRGAP, "registries": MIRROR}, kubeflow={"mode": "none"}).k3s.registries
    # One place for the mirrors, not two.
    both = problems(edge(k3s={"airgap": {**AIRGAP, "registries": "./r.yaml"}, "registries": MIRROR},
                         kubeflow={"manifestsPath": "./m"}), "edge")
    assert list(both) == ["k3s.airgap.registries"]
