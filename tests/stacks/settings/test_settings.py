"""The wiring of stacks/settings/: the profile, the top-level keys, every problem at once, and the
checked-in stack files."""

from __future__ import annotations

import pytest

from stacks import profiles, versions
from stacks.settings import ConfigError, parse_settings
from tests.harness import stack_raw
from tests.stacks.settings.raw import SSH_NODE, edge, problems


@pytest.mark.parametrize("stack", ["dev", "edge", "cloud"])
def test_checked_in_stack_files_are_valid(stack):
    settings = parse_settings(stack_raw(stack), stack)
    assert settings.profile == {"dev": "laptop", "edge": "edge", "cloud": "cloud"}[stack]
    assert settings.k3s.version == versions.K3S_VERSION


def test_profiles_shape_the_stacks():
    dev, edge_, cloud = (parse_settings(stack_raw(s), s) for s in ("dev", "edge", "cloud"))
    assert [n.connection for n in dev.nodes] == ["local"] and dev.k3s.api_endpoint == "127.0.0.1"
    assert len(edge_.nodes) == 1 and edge_.nodes[0].arch == "amd64" and edge_.kubeflow.mode == "pipelines"
    assert len(cloud.servers) == 3 and cloud.ha and len(cloud.agents) >= 2
    assert [n.name for n in cloud.gpu_nodes] == ["gpu-1"] and cloud.ssh.bastion is not None
    assert cloud.k3s.secrets_encryption and not dev.k3s.secrets_encryption
    assert dev.preflight.min_memory_mib == profiles.PROFILES["laptop"].min_memory_mib


def test_example_addresses_come_from_documentation_ranges():
    import ipaddress

    docs = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("198.51.100.0/24")]
    for stack in ("edge", "cloud"):
        settings = parse_settings(stack_raw(stack), stack)
        hosts = [n.host for n in settings.nodes] + ([settings.ssh.bastion.host] if settings.ssh.bastion else [])
        for host in hosts:
            assert any(ipaddress.ip_address(host) in net for net in docs), host


def test_unknown_profile_names_the_key_and_choices():
    msg = problems({"profile": "desktop", "nodes": [SSH_NODE]})["profile"]
    assert "'desktop'" in msg and "laptop, edge, cloud" in msg


def test_missing_profile():
    assert problems({"nodes": [SSH_NODE]})["profile"] == "is required"


def test_unknown_keys_are_named():
    found = problems(edge(nodes=[dict(SSH_NODE, hostname="x")], k3s={"versoin": "v1"}, bogus=1))
    assert "nodes[0].hostname" in found and "k3s.versoin" in found and "bogus" in found


def test_every_problem_is_reported_at_once():
    raw = edge(nodes=[dict(SSH_NODE, host="999.0.0.1", gpu="jetson")], k3s={"version": "latest"})
    found = problems(raw)
    assert {"nodes[0].host", "nodes[0].gpu", "k3s.version"} <= set(found)


def test_error_message_names_the_namespaced_key():
    with pytest.raises(ConfigError) as err:
        parse_settings(edge(k3s={"version": "latest"}))
    assert "kubeflow-k3s:k3s.version:" in str(err.value)


# One module per layer -----------------------------------------------------------------------------

def layer_modules():
    import importlib
    import pkgutil

    import stacks.settings as package

    return {m.name: importlib.import_module(f"stacks.settings.{m.name}")
            for m in pkgutil.iter_modules(package.__path__) if m.name != "common"}


def test_every_top_level_section_belongs_to_exactly_one_layer_module():
    from stacks import config
    from stacks.settings import SECTIONS

    owners = {}
    for name, module in layer_modules().items():
        for section in module.SECTIONS:
            assert section not in owners, f"{section} is in {owners.get(section)} and {name}"
            owners[section] = name
    assert set(SECTIONS) == {"profile", *owners}
    assert set(config.STRUCTURED_KEYS) == set(owners)  # what stacks/config.py reads as objects


@pytest.mark.parametrize("section", [s for s in __import__("stacks.settings", fromlist=["SECTIONS"]).SECTIONS
                                     if s != "profile"])
def test_every_section_is_read_by_its_module(section):
    """A key inside each section reaches that section's parser: an unknown one is named with its path,
    so no section the model lists is silently ignored."""
    raw = edge()
    if section == "nodes":
        raw["nodes"] = [dict(SSH_NODE, notAKey=1)]
        key = "nodes[0].notAKey"
    else:
        raw[section] = {"notAKey": 1}
        key = f"{section}.notAKey"
    assert "unknown setting" in problems(raw, "edge")[key]
