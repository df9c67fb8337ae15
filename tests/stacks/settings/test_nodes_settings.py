"""stacks/settings/nodes.py: the `ssh`, `nodes` and `preflight` sections."""

from __future__ import annotations

import copy

import pytest

from stacks.settings import parse_settings
from tests.harness import stack_raw
from tests.stacks.settings.raw import SSH_NODE, edge, problems


def test_no_server_node():
    msg = problems(edge(nodes=[{"name": "a1", "host": "192.0.2.21", "role": "agent"}]))["nodes"]
    assert "role: server" in msg


def test_nodes_required():
    assert "at least one node" in problems({"profile": "edge", "ssh": {"user": "u"}})["nodes"]


def test_duplicate_node_names():
    raw = edge(nodes=[dict(SSH_NODE), {"name": "s1", "host": "192.0.2.12", "role": "agent"}])
    assert "duplicate node name 's1'" in problems(raw)["nodes[1].name"]


@pytest.mark.parametrize("count", [2, 4])
def test_even_number_of_servers(count):
    nodes = [{"name": f"s{i}", "host": f"192.0.2.{10 + i}", "role": "server"} for i in range(count)]
    assert "odd number" in problems(edge(nodes=nodes))["nodes"]


@pytest.mark.parametrize("count", [1, 3, 5])
def test_odd_number_of_servers_is_fine(count):
    nodes = [{"name": f"s{i}", "host": f"192.0.2.{10 + i}", "role": "server"} for i in range(count)]
    assert len(parse_settings(edge(nodes=nodes)).servers) == count


@pytest.mark.parametrize("host", ["999.1.1.1", "bad host", "-leading.example.com", "a..b", "x" * 64 + ".com"])
def test_host_must_be_ip_or_hostname(host):
    raw = edge(nodes=[dict(SSH_NODE, host=host)])
    assert "neither an IP address nor a hostname" in problems(raw)["nodes[0].host"]


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1", "edge-1.example.com", "edge1"])
def test_good_hosts(host):
    assert parse_settings(edge(nodes=[dict(SSH_NODE, host=host)])).nodes[0].host == host


def test_ssh_node_needs_a_host():
    node = {"name": "s1", "role": "server"}
    assert problems(edge(nodes=[node]))["nodes[0].host"] == "is required"


def test_ssh_user_required_for_ssh_nodes():
    raw = edge()
    del raw["ssh"]
    assert "passwordless sudo" in problems(raw)["ssh.user"]


def test_cloud_requires_pinned_host_keys():
    raw = copy.deepcopy(stack_raw("cloud"))
    del raw["nodes"][1]["hostKey"]
    msg = problems(raw)["nodes[1].hostKey"]
    assert "ssh-keyscan" in msg and "192.0.2.12" in msg


def test_malformed_host_key():
    raw = edge(nodes=[dict(SSH_NODE, hostKey="192.0.2.11 ssh-ed25519 AAAA")])
    assert "ssh-keyscan" in problems(raw)["nodes[0].hostKey"]


def test_edge_warns_about_unpinned_host_keys():
    warnings = parse_settings(edge()).warnings()
    assert len(warnings) == 1 and "nodes[0].hostKey" in warnings[0] and "ssh-keyscan" in warnings[0]
    pinned = edge(nodes=[dict(SSH_NODE, hostKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc")])
    assert parse_settings(pinned).warnings() == []


def test_local_node_cannot_be_mixed():
    raw = {"profile": "laptop", "ssh": {"user": "u"},
           "nodes": [{"name": "dev", "role": "server", "connection": "local"}, dict(SSH_NODE, name="s2", role="agent")]}
    assert "cannot be mixed" in problems(raw)["nodes"]


def test_bad_taint_and_label_values():
    raw = edge(nodes=[dict(SSH_NODE, taints=["gpu:Sometimes"], labels=["a"])])
    found = problems(raw)
    assert "NoSchedule" in found["nodes[0].taints[0]"] and "nodes[0].labels" in found


def test_node_extra_config_is_checked_against_its_role():
    raw = edge(nodes=[dict(SSH_NODE), {"name": "a1", "host": "192.0.2.21", "role": "agent",
                                        "extraConfig": {"tls-san": ["x"]}}])
    assert "unknown K3s agent setting" in problems(raw)["nodes[1].extraConfig.tls-san"]
