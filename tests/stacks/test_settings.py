"""The settings model: profile defaults, and every validation error naming its key."""

from __future__ import annotations

import copy

import pytest
import yaml

from stacks import profiles, versions
from stacks.settings import ConfigError, parse_settings
from tests.arm64 import kfp_arm64_images
from tests.harness import ROOT

SSH_NODE = {"name": "s1", "host": "192.0.2.11", "role": "server"}


def stack_raw(stack: str) -> dict:
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in doc.items()}


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    return dict(err.value.problems)


def edge(**changes) -> dict:
    raw = {"profile": "edge", "ssh": {"user": "ubuntu"}, "nodes": [dict(SSH_NODE)]}
    raw.update(changes)
    return raw


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


def test_node_extra_config_is_checked_against_its_role():
    raw = edge(nodes=[dict(SSH_NODE), {"name": "a1", "host": "192.0.2.21", "role": "agent",
                                        "extraConfig": {"tls-san": ["x"]}}])
    assert "unknown K3s agent setting" in problems(raw)["nodes[1].extraConfig.tls-san"]


def test_known_extra_config_and_append_keys_are_accepted():
    raw = edge(k3s={"extraConfig": {"kube-apiserver-arg+": ["v=2"], "cluster-cidr": "10.52.0.0/16"}})
    assert parse_settings(raw).k3s.extra_config["cluster-cidr"] == "10.52.0.0/16"


@pytest.mark.parametrize("key", ["token", "server", "cluster-init", "node-name"])
def test_managed_keys_are_rejected(key):
    msg = problems(edge(k3s={"extraConfig": {key: "x"}}))[f"k3s.extraConfig.{key}"]
    assert "managed by this program" in msg


def test_jetson_needs_arm64():
    raw = edge(nodes=[dict(SSH_NODE, gpu="jetson", arch="amd64")])
    msg = problems(raw)["nodes[0].gpu"]
    assert "'jetson' cannot run on arch 'amd64'" in msg and "arm64" in msg


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_nvidia_runs_on_both_arches(arch):
    assert parse_settings(edge(nodes=[dict(SSH_NODE, gpu="nvidia", arch=arch)],
                               kubeflow={"images": kfp_arm64_images()})).gpu_nodes


def test_unknown_gpu_kind():
    assert "none, nvidia, jetson" in problems(edge(nodes=[dict(SSH_NODE, gpu="amd")]))["nodes[0].gpu"]


def test_unknown_keys_are_named():
    found = problems(edge(nodes=[dict(SSH_NODE, hostname="x")], k3s={"versoin": "v1"}, bogus=1))
    assert "nodes[0].hostname" in found and "k3s.versoin" in found and "bogus" in found


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


def test_cloud_keeps_secrets_encryption():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["k3s"]["secretsEncryption"] = False
    assert "must stay true" in problems(raw)["k3s.secretsEncryption"]


def test_local_node_cannot_be_mixed():
    raw = {"profile": "laptop", "ssh": {"user": "u"},
           "nodes": [{"name": "dev", "role": "server", "connection": "local"}, dict(SSH_NODE, name="s2", role="agent")]}
    assert "cannot be mixed" in problems(raw)["nodes"]


def test_bad_taint_and_label_values():
    raw = edge(nodes=[dict(SSH_NODE, taints=["gpu:Sometimes"], labels=["a"])])
    found = problems(raw)
    assert "NoSchedule" in found["nodes[0].taints[0]"] and "nodes[0].labels" in found


def test_every_problem_is_reported_at_once():
    raw = edge(nodes=[dict(SSH_NODE, host="999.0.0.1", gpu="jetson")], k3s={"version": "latest"})
    found = problems(raw)
    assert {"nodes[0].host", "nodes[0].gpu", "k3s.version"} <= set(found)


def test_error_message_names_the_namespaced_key():
    with pytest.raises(ConfigError) as err:
        parse_settings(edge(k3s={"version": "latest"}))
    assert "kubeflow-k3s:k3s.version:" in str(err.value)


def test_airgap_needs_all_files_and_a_k3s_image_archive():
    raw = edge(k3s={"airgap": {"binary": "./k3s", "images": "./images.zip"}})
    found = problems(raw)
    assert found["k3s.airgap.installScript"] == "is required" and ".tar.zst" in found["k3s.airgap.images"]
