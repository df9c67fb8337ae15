"""K3s contract: every config.yaml key the program writes or accepts is a real K3s flag upstream, and the
pinned K3s runs the Kubernetes minor that Kubeflow 26.03 is tested on."""

from __future__ import annotations

import re

import pytest
import yaml

from stacks import k3s_flags, versions
from tests import harness


def flags(upstream, role: str) -> set[str]:
    return set((upstream / "k3s" / f"{role}-flags.txt").read_text().split())


def test_accepted_keys_are_upstream_flags(upstream):
    assert k3s_flags.SERVER_KEYS <= flags(upstream, "server"), k3s_flags.SERVER_KEYS - flags(upstream, "server")
    assert k3s_flags.AGENT_KEYS <= flags(upstream, "agent"), k3s_flags.AGENT_KEYS - flags(upstream, "agent")


def test_flags_newer_than_the_pinned_minor_are_not_accepted(upstream):
    source = (upstream / "k3s" / "SOURCE.txt").read_text()
    newer = re.search(r"Flags newer than K3s v[\d.]+: (.+?)\.", source).group(1).replace(",", " ").split()
    assert newer and not (set(newer) & (k3s_flags.SERVER_KEYS | k3s_flags.AGENT_KEYS))


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_written_config_key_is_a_flag_of_its_role(runs, upstream, stack):
    run = runs[stack]
    checked = 0
    for reg in run.registrations:
        if reg.name.endswith("-install") and "stdin" in reg.inputs:
            config = yaml.safe_load(reg.inputs["stdin"])
            role = "server" if "\nROLE=server\n" in reg.inputs["create"] else "agent"
            unknown = {k.rstrip("+") for k in config} - flags(upstream, role)
            assert not unknown, f"{reg.name}: {unknown} are not K3s {role} flags"
            checked += 1
    assert checked == len(run.by_type("kubeflow-k3s:k3s:Node"))


def test_disable_values_are_bundled_components(runs):
    # K3s's DisableItems (pkg/cli/cmds/stage.go): what `disable:` accepts.
    allowed = {"coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"}
    for run in runs.values():
        for reg in run.registrations:
            if reg.name.endswith("-install") and "stdin" in reg.inputs:
                assert set(yaml.safe_load(reg.inputs["stdin"]).get("disable", [])) <= allowed


def test_k3s_pin_matches_kubeflows_kubernetes(upstream):
    readme = (upstream / "README.md").read_text()
    tested = re.search(r"tested on Kubernetes v(\d+\.\d+)", readme).group(1)
    assert versions.KUBERNETES_MINOR == tested
    major, minor = re.match(r"v(\d+)\.(\d+)\.", versions.K3S_VERSION).groups()
    assert f"{major}.{minor}" == tested


def test_inotify_limits_are_kubeflows(upstream):
    from components.k3s import k3s_plan

    readme = (upstream / "kubeflow-manifests-26.03" / "README.md").read_text()
    for key in ("fs.inotify.max_user_instances", "fs.inotify.max_user_watches"):
        value = re.search(rf"sysctl {re.escape(key)}=(\d+)", readme).group(1)
        assert k3s_plan.BASE_SYSCTLS[key] == value, key

