"""Pure K3s planning: the shape of every node's config.yaml, join order, script parameters."""

from __future__ import annotations

import pytest
import yaml

from components.k3s import k3s_plan
from stacks import versions
from stacks.settings import parse_settings
from tests.arm64 import kfp_arm64_images
from tests.harness import stack_raw


@pytest.fixture(scope="module")
def cloud():
    return parse_settings(stack_raw("cloud"), "cloud")


@pytest.fixture(scope="module")
def dev():
    return parse_settings(stack_raw("dev"), "dev")


def test_first_ha_server_starts_the_cluster(cloud):
    cfg = k3s_plan.node_config(cloud, cloud.node("server-1"), "T")
    assert cfg["cluster-init"] is True and "server" not in cfg
    assert cfg["token"] == "T" and cfg["node-name"] == "server-1"


def test_other_servers_join_the_first(cloud):
    for name in ("server-2", "server-3"):
        cfg = k3s_plan.node_config(cloud, cloud.node(name), "T")
        assert cfg["server"] == "https://192.0.2.11:6443" and "cluster-init" not in cfg


def test_single_server_has_no_cluster_init(dev):
    cfg = k3s_plan.node_config(dev, dev.nodes[0], "T")
    assert "cluster-init" not in cfg and "server" not in cfg


def test_servers_disable_traefik_and_carry_every_api_address(cloud):
    cfg = k3s_plan.node_config(cloud, cloud.node("server-2"), "T")
    assert "traefik" in cfg["disable"]
    assert cfg["tls-san"] == ["k8s.example.com", "192.0.2.11", "192.0.2.12", "192.0.2.13"]
    assert cfg["write-kubeconfig-mode"] == "0600" and cfg["secrets-encryption"] is True


def test_laptop_has_no_secrets_encryption_by_default(dev):
    cfg = k3s_plan.node_config(dev, dev.nodes[0], "T")
    assert "secrets-encryption" not in cfg and cfg["tls-san"] == ["127.0.0.1"]
    assert cfg["disable"] == ["traefik"]


def test_agents_only_get_agent_keys(cloud):
    cfg = k3s_plan.node_config(cloud, cloud.node("agent-1"), "T")
    assert set(cfg) == {"token", "node-name", "server", "protect-kernel-defaults"}
    assert cfg["server"] == "https://192.0.2.11:6443"


def test_gpu_agent_is_labelled_and_tainted_on_cloud(cloud):
    cfg = k3s_plan.node_config(cloud, cloud.node("gpu-1"), "T")
    assert "accelerator=nvidia-h100" in cfg["node-label"]
    assert "nvidia.com/gpu.present=true" in cfg["node-label"]
    assert cfg["node-taint"] == ["nvidia.com/gpu=true:NoSchedule"]


def test_gpu_on_edge_is_labelled_not_tainted():
    raw = stack_raw("edge")
    raw["nodes"][0].update(gpu="jetson", arch="arm64")
    raw["kubeflow"] = {"images": kfp_arm64_images()}
    edge = parse_settings(raw, "edge")
    cfg = k3s_plan.node_config(edge, edge.nodes[0], "T")
    assert "kubeflow-k3s/gpu=jetson" in cfg["node-label"] and "node-taint" not in cfg


def test_extra_config_merges_per_role_and_node():
    raw = stack_raw("cloud")
    raw["k3s"]["extraConfig"] = {"disable": ["servicelb"], "cluster-cidr": "10.52.0.0/16"}
    raw["k3s"]["agentExtraConfig"] = {"kubelet-arg": ["max-pods=200"]}
    raw["nodes"][3]["extraConfig"] = {"node-external-ip": "203.0.113.5"}
    s = parse_settings(raw, "cloud")
    server = k3s_plan.node_config(s, s.node("server-1"))
    agent = k3s_plan.node_config(s, s.node("agent-1"))
    assert {"servicelb", "traefik"} <= set(server["disable"]) and server["cluster-cidr"] == "10.52.0.0/16"
    assert agent["kubelet-arg"] == ["max-pods=200"] and agent["node-external-ip"] == "203.0.113.5"
    assert "cluster-cidr" not in agent


def test_rendered_config_is_yaml_of_the_plan(cloud):
    node = cloud.node("server-1")
    assert yaml.safe_load(k3s_plan.render_config(k3s_plan.node_config(cloud, node, "T"))) == k3s_plan.node_config(cloud, node, "T")


def test_config_digest_ignores_the_token_and_follows_config(cloud):
    node = cloud.node("server-1")
    assert "T" not in k3s_plan.config_digest(cloud, node)
    raw = stack_raw("cloud")
    raw["k3s"]["tlsSans"] = ["lb.example.com"]
    assert k3s_plan.config_digest(parse_settings(raw, "cloud"), node) != k3s_plan.config_digest(cloud, node)


def test_join_order_servers_one_at_a_time_agents_after_the_first(cloud):
    assert k3s_plan.join_order(cloud) == [
        ("server-1", []), ("server-2", ["server-1"]), ("server-3", ["server-2"]),
        ("agent-1", ["server-1"]), ("gpu-1", ["server-1"]),
    ]


def test_installer_is_pinned_to_the_release_tag(cloud):
    params = k3s_plan.install_params(cloud, cloud.node("server-1"))
    assert params["INSTALL_URL"] == f"https://raw.githubusercontent.com/k3s-io/k3s/{versions.K3S_VERSION.replace('+', '%2B')}/install.sh"
    assert params["K3S_VERSION"] == versions.K3S_VERSION and params["STAGED_SHA256"] == ""
    assert "get.k3s.io" not in params["INSTALL_URL"]


def test_airgap_installs_from_staged_files(tmp_path):
    import hashlib

    files = {"binary": "k3s", "images": "k3s-airgap-images-amd64.tar.zst", "installScript": "install.sh",
             "registries": "registries.yaml"}
    for key, name in files.items():
        (tmp_path / name).write_text(f"content of {key}")
    raw = stack_raw("edge")
    raw["k3s"] = {"airgap": {key: str(tmp_path / name) for key, name in files.items()}}
    raw["kubeflow"] = {"manifestsPath": "./manifests"}  # air-gapped Kubeflow renders from a local tree
    s = parse_settings(raw, "edge")
    params = k3s_plan.install_params(s, s.nodes[0])
    assert params["INSTALL_URL"] == "" and params["IMAGES_FILE"] == "k3s-airgap-images-amd64.tar.zst"
    # the content of every staged file is in the install's text: a new file re-installs
    sha = {name: hashlib.sha256(f"content of {key}".encode()).hexdigest() for key, name in files.items()}
    assert params["STAGED_SHA256"] == (f"k3s={sha['k3s']} k3s-airgap-images-amd64.tar.zst="
                                       f"{sha['k3s-airgap-images-amd64.tar.zst']} install.sh={sha['install.sh']} "
                                       f"registries.yaml={sha['registries.yaml']}")
    (tmp_path / "registries.yaml").write_text("mirrors: {}")
    assert k3s_plan.install_params(s, s.nodes[0])["STAGED_SHA256"] != params["STAGED_SHA256"]
    assert k3s_plan.node_config(s, s.nodes[0])["private-registry"] == "/etc/rancher/k3s/registries.yaml"
    # curl: the online installer is not used; the first server still runs the smoke step with it
    # (test_an_air_gapped_first_server_needs_curl_for_the_smoke_step).
    assert "installer" not in k3s_plan.preflight_params(s, s.nodes[0])["CURL_FOR"]


def test_an_air_gapped_first_server_needs_curl_for_the_smoke_step(tmp_path):
    files = {"binary": "k3s", "images": "k3s-airgap-images-amd64.tar.zst", "installScript": "install.sh",
             "registries": "registries.yaml"}
    for key, name in files.items():
        (tmp_path / name).write_text(key)
    raw = stack_raw("edge")
    raw["k3s"] = {"airgap": {key: str(tmp_path / name) for key, name in files.items()}}
    raw["kubeflow"] = {"manifestsPath": "./manifests"}
    raw["nodes"] = [*raw["nodes"], {"name": "agent-9", "host": "192.0.2.49", "role": "agent", "arch": "amd64"}]
    s = parse_settings(raw, "edge")
    first, agent = s.first_server, s.node("agent-9")
    params = k3s_plan.preflight_params(s, first)
    assert params["NEED_CURL"] is True and "smoke step" in params["CURL_FOR"]
    assert k3s_plan.preflight_params(s, agent)["NEED_CURL"] is False  # only the first server runs it
    off = parse_settings({**raw, "smoke": {"enabled": False}}, "edge")
    assert k3s_plan.preflight_params(off, off.first_server)["NEED_CURL"] is False
    online = parse_settings(stack_raw("edge"), "edge")
    why = k3s_plan.preflight_params(online, online.first_server)["CURL_FOR"]
    assert "installer" in why and "smoke step" in why


def test_prepare_persists_kubeflow_sysctls(dev):
    params = k3s_plan.prepare_params(dev, dev.nodes[0])
    assert "fs.inotify.max_user_instances = 2280" in params["SYSCTLS"]
    assert "fs.inotify.max_user_watches = 1255360" in params["SYSCTLS"]
    assert "net.ipv4.ip_forward = 1" in params["SYSCTLS"]
    assert "br_netfilter" in params["MODULES"].split()
    assert params["SYSCTL_FILE"].startswith("/etc/sysctl.d/") and params["MODULES_FILE"].startswith("/etc/modules-load.d/")


def test_preflight_report_parser():
    report = k3s_plan.parse_preflight_report("os\tok\tubuntu\ngpu\tskip\tnone\nresult\tok\tall\n")
    assert report["os"] == ("ok", "ubuntu") and report["result"][0] == "ok"
    with pytest.raises(ValueError):
        k3s_plan.parse_preflight_report("os ok ubuntu\n")
    with pytest.raises(ValueError):
        k3s_plan.parse_preflight_report("os\tok\tubuntu\n")


def test_cloud_hardening_in_config(cloud, dev):
    server = k3s_plan.node_config(cloud, cloud.node("server-1"))
    assert server["protect-kernel-defaults"] is True and server["tls-san-security"] is True
    assert server["write-kubeconfig-mode"] == "0600" and server["secrets-encryption"] is True
    laptop = k3s_plan.node_config(dev, dev.nodes[0])
    assert "protect-kernel-defaults" not in laptop and "tls-san-security" not in laptop


def test_cloud_advertises_the_api_on_the_internal_address():
    raw = stack_raw("cloud")
    raw["nodes"][0]["internalAddress"] = "10.0.0.11"
    s = parse_settings(raw, "cloud")
    cfg = k3s_plan.node_config(s, s.node("server-1"))
    assert cfg["advertise-address"] == "10.0.0.11" and cfg["node-ip"] == "10.0.0.11"
    assert "10.0.0.11" in cfg["tls-san"]
    assert k3s_plan.node_config(s, s.node("agent-1"))["server"] == "https://10.0.0.11:6443"


def test_prepare_writes_the_kernel_tunables_protect_kernel_defaults_expects(dev):
    sysctls = dict(
        line.split(" = ") for line in k3s_plan.prepare_params(dev, dev.nodes[0])["SYSCTLS"].splitlines()
    )
    for key, value in {"vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10",
                       "kernel.panic_on_oops": "1"}.items():
        assert sysctls[key] == value


def test_protect_kernel_defaults_can_be_switched_on_anywhere(dev):
    raw = stack_raw("dev")
    raw["k3s"] = {"protectKernelDefaults": True}
    s = parse_settings(raw, "dev")
    assert k3s_plan.node_config(s, s.nodes[0])["protect-kernel-defaults"] is True


def test_a_missing_air_gap_file_is_a_config_error_naming_the_key(tmp_path):
    from stacks.settings import ConfigError

    raw = stack_raw("edge")
    raw["k3s"] = {"airgap": {"binary": str(tmp_path / "nope"), "images": str(tmp_path / "i.tar"),
                             "installScript": str(tmp_path / "install.sh"), "platformImages": str(tmp_path / "b")}}
    raw["kubeflow"] = {"manifestsPath": str(tmp_path / "manifests")}
    s = parse_settings(raw, "edge")
    with pytest.raises(ConfigError, match="k3s.airgap.binary"):
        k3s_plan.staged_sha256(s)


def test_cluster_init_only_bootstraps_the_first_ha_server_joins_a_running_one(cloud, dev):
    first = cloud.node("server-1")
    assert k3s_plan.node_config(cloud, first)["cluster-init"] is True
    # the other servers, each reachable on its address: install.sh joins the first that answers
    assert k3s_plan.join_candidates(cloud, first) == "https://192.0.2.12:6443 https://192.0.2.13:6443"
    assert k3s_plan.join_candidates(cloud, cloud.node("server-2")) == ""
    assert k3s_plan.join_candidates(dev, dev.nodes[0]) == ""


def test_node_removal_runs_on_a_server_that_stays(cloud, dev):
    assert k3s_plan.remover(cloud, cloud.node("server-1")).name == "server-2"
    assert k3s_plan.remover(cloud, cloud.node("agent-1")).name == "server-1"
    assert k3s_plan.remover(dev, dev.nodes[0]) == dev.nodes[0]  # the only server is its own


def test_labels_and_taints_for_the_api_match_the_first_boot_flags(cloud):
    gpu = cloud.node("gpu-1")
    cfg = k3s_plan.node_config(cloud, gpu)
    patch = k3s_plan.node_patch(cloud, gpu)
    assert [f"{k}={v}" for k, v in sorted(patch["labels"].items())] == cfg["node-label"]
    assert [f"{t['key']}={t['value']}:{t['effect']}" if "value" in t else f"{t['key']}:{t['effect']}"
            for t in patch["taints"]] == cfg["node-taint"]
    assert k3s_plan.parse_taint("dedicated:NoExecute") == {"key": "dedicated", "effect": "NoExecute"}