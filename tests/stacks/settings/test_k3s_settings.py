"""stacks/settings/k3s.py: the `k3s` section (version and its floor, config.yaml extras, air-gap files).

The version floor comes from two upstream facts (stacks/versions.py K3S_MIN_VERSIONS): containerd 2, which the GPU
operator's socket-only toolkit setup needs, ships since v1.31.6+k3s1 / v1.32.2+k3s1; the static CNI bin dir
/var/lib/rancher/k3s/data/cni that Istio's k3s profile uses exists since the October 2024 releases (older)."""

from __future__ import annotations

import copy

import pytest
import yaml

from stacks import versions
from stacks.settings import ConfigError, parse_settings
from tests.harness import stack_raw
from tests.stacks.settings.raw import edge, problems


@pytest.mark.parametrize("version", ["1.34.6+k3s1", "v1.34.6", "v1.34+k3s1", "latest", "stable", "v1.34.6-k3s1"])
def test_k3s_version_format(version):
    msg = problems(edge(k3s={"version": version}))["k3s.version"]
    assert "vX.Y.Z+k3sN" in msg


def test_unknown_k3s_server_setting():
    msg = problems(edge(k3s={"extraConfig": {"disable-traefik": True}}))["k3s.extraConfig.disable-traefik"]
    assert "unknown K3s server setting" in msg


def test_server_only_key_is_unknown_for_agents():
    raw = edge(k3s={"agentExtraConfig": {"cluster-cidr": "10.42.0.0/16"}})
    assert "unknown K3s agent setting" in problems(raw)["k3s.agentExtraConfig.cluster-cidr"]


def test_known_extra_config_and_append_keys_are_accepted():
    raw = edge(k3s={"extraConfig": {"kube-apiserver-arg+": ["v=2"], "cluster-cidr": "10.52.0.0/16"}})
    assert parse_settings(raw).k3s.extra_config["cluster-cidr"] == "10.52.0.0/16"


@pytest.mark.parametrize("key", ["token", "server", "cluster-init", "node-name"])
def test_managed_keys_are_rejected(key):
    msg = problems(edge(k3s={"extraConfig": {key: "x"}}))[f"k3s.extraConfig.{key}"]
    assert "managed by this program" in msg


def test_cloud_keeps_secrets_encryption():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["k3s"]["secretsEncryption"] = False
    assert "must stay true" in problems(raw)["k3s.secretsEncryption"]


def test_airgap_needs_all_files_and_a_k3s_image_archive():
    raw = edge(k3s={"airgap": {"binary": "./k3s", "images": "./images.zip"}})
    found = problems(raw)
    assert found["k3s.airgap.installScript"] == "is required" and ".tar.zst" in found["k3s.airgap.images"]


# The oldest K3s the program supports ----------------------------------------------------------------

def with_version(version: str):
    raw = copy.deepcopy(stack_raw("dev"))
    raw["k3s"] = {"version": version}
    return parse_settings(raw, "dev")


@pytest.mark.parametrize("version", ["v1.31.5+k3s1", "v1.32.1+k3s1", "v1.30.14+k3s2", "v1.28.15+k3s1", "v1.31.2+k3s1"])
def test_too_old_releases_are_a_config_error_naming_k3s_version(version):
    with pytest.raises(ConfigError) as err:
        with_version(version)
    problems = dict(err.value.problems)
    assert "k3s.version" in problems and "containerd 2" in problems["k3s.version"]
    assert "v1.31.6+k3s1" in problems["k3s.version"] and "v1.32.2+k3s1" in problems["k3s.version"]


@pytest.mark.parametrize("version", ["v1.31.6+k3s1", "v1.32.2+k3s1", "v1.33.0+k3s1", versions.K3S_VERSION])
def test_releases_from_the_floor_on_are_accepted(version):
    assert with_version(version).k3s.version == version


def test_the_floor_lines_are_release_lines_the_pin_is_above(upstream):
    # Every floor is a well-formed release of its own minor line, and the pinned K3s passes.
    for minor, version in versions.K3S_MIN_VERSIONS.items():
        assert version.startswith(f"v{minor}.")
    assert with_version(versions.K3S_VERSION)
    # Istio's k3s profile (what the Istio CNI chart is given) uses the bin dir the floor guarantees.
    profile = yaml.safe_load((upstream / "charts" / "istio-profiles-1.29.0" / "platform-k3s.yaml").read_text())
    assert profile["cni"]["cniBinDir"] == "/var/lib/rancher/k3s/data/cni"


# Air gap: one binary and one image archive, for the nodes' one architecture --------------------------

def release_asset_suffix(upstream, arch: str) -> str:
    """The suffix install.sh gives the K3s binary it downloads for `arch` (k3s${SUFFIX})."""
    import re

    text = (upstream / "k3s" / "install.sh").read_text()
    block = re.search(r"case \$ARCH in(.*?)esac", text, re.S).group(1)
    for case in re.finditer(r"\n\s*([^)\n]+)\)\s*\n\s*ARCH=(\w+)\s*\n\s*SUFFIX=(\S*)", block):
        if case.group(2) == arch:
            return case.group(3).replace("${ARCH}", arch)
    raise AssertionError(f"install.sh has no {arch}")


def airgap_stack(arches, binary, images):
    nodes = [{"name": f"n{i}", "host": f"192.0.2.{11 + i}", "role": "server" if i == 0 else "agent", "arch": a}
             for i, a in enumerate(arches)]
    return edge(nodes=nodes, k3s={"airgap": {"binary": binary, "images": images, "installScript": "./install.sh",
                                              "platformImages": "./platform"}},
                kubeflow={"mode": "none"})


def test_an_air_gapped_stack_has_one_architecture(upstream):
    arm = "./airgap/k3s" + release_asset_suffix(upstream, "arm64")
    assert arm.endswith("k3s-arm64") and release_asset_suffix(upstream, "amd64") == ""
    found = problems(airgap_stack(["amd64", "arm64"], "./airgap/k3s", "./airgap/k3s-airgap-images-amd64.tar.zst"), "edge")
    assert list(found) == ["k3s.airgap"] and "amd64 and arm64" in found["k3s.airgap"]
    # A release asset named for another architecture than the nodes' is refused, naming the key.
    found = problems(airgap_stack(["amd64"], arm, "./airgap/k3s-airgap-images-arm64.tar.zst"), "edge")
    assert set(found) == {"k3s.airgap.binary", "k3s.airgap.images"} and "arm64 asset" in found["k3s.airgap.binary"]
    assert "k3s.airgap.images" in problems(airgap_stack(["arm64"], "./airgap/k3s", "./airgap/k3s-airgap-images-amd64.tar.zst"), "edge")
    # A bare `k3s` says nothing (users rename k3s-arm64 to it); the archive's name does.
    assert parse_settings(airgap_stack(["arm64"], "./airgap/k3s", "./airgap/k3s-airgap-images-arm64.tar.zst"), "edge")
    # Matching names, or names that do not say an architecture, are accepted.
    assert parse_settings(airgap_stack(["arm64", "arm64"], arm, "./airgap/k3s-airgap-images-arm64.tar.zst"), "edge")
    assert parse_settings(airgap_stack(["amd64"], "./bin/k3s-v1.34", "./images.tar"), "edge")
