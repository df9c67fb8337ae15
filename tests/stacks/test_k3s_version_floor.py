"""K3s releases older than the program relies on are refused, naming `k3s.version`, before any host is touched.

The floor comes from two upstream facts (stacks/versions.py K3S_MIN_VERSIONS): containerd 2, which the GPU
operator's socket-only toolkit setup needs, ships since v1.31.6+k3s1 / v1.32.2+k3s1; the static CNI bin dir
/var/lib/rancher/k3s/data/cni that Istio's k3s profile uses exists since the October 2024 releases (older).
"""

from __future__ import annotations

import copy

import pytest
import yaml

from stacks import versions
from stacks.settings import ConfigError, parse_settings
from tests.stacks.test_settings import stack_raw


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
