"""Configuration that cannot lie (issue 14): every stack configuration the program used to accept while it
ignored or overrode what the user wrote is now an error naming the key, or a warning in `pulumi preview`.

The table goes through stacks/config.load(), the program's own entry, with the config as the engine passes
it (pulumi.runtime.set_all_config with the secret keys; harness.load_config builds it from the stack files).
Reserved Kubeflow user names (`kubeflow`, `istio-system`) are issue 9's and not in this table.
"""

from __future__ import annotations

import copy

import pulumi
import pytest

from components.k3s import k3s_plan
from stacks import config as stack_config
from stacks import versions
from stacks.settings import NS, ConfigError, parse_settings
from tests import harness

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake user@laptop"
CLOUD_NODES = harness.yaml.safe_load((harness.ROOT / "Pulumi.cloud.yaml").read_text())["config"][f"{NS}:nodes"]
OTHER_MINOR = f"v1.{int(versions.KUBERNETES_MINOR.split('.')[1]) - 1}.9+k3s1"


def load(stack: str, overrides: dict | None = None, secrets: dict | None = None, extra: dict | None = None,
         drop: tuple[str, ...] = ()):
    """config.load() for `stack` with `overrides` (plain values), `secrets` (set with --secret) and `extra`
    (raw namespaced keys, e.g. a misspelled namespace)."""
    values, secret_keys = harness.load_config(stack, overrides, secrets, drop)
    values.update({k: v if isinstance(v, str) else harness.json.dumps(v) for k, v in (extra or {}).items()})
    pulumi.runtime.set_all_config(values, secret_keys)
    try:
        return stack_config.load()
    finally:
        pulumi.runtime.set_all_config({}, [])


def nodes_with(index: int, **changes) -> list[dict]:
    nodes = copy.deepcopy(CLOUD_NODES)
    nodes[index].update(changes)
    return nodes


ERROR, WARNING = "error", "warning"

# (case, stack, overrides, secrets, extra namespaced keys, outcome, key named, words of the message)
CASES = [
    # Typos in keys and namespaces
    ("top-level gpus", "edge", {"gpus": {"timeSlicing": 2}}, None, None, ERROR, "gpus", "did you mean 'gpu'"),
    ("top-level kubflow", "edge", {"kubflow": {"mode": "full"}}, None, None, ERROR, "kubflow", "did you mean 'kubeflow'"),
    ("top-level storgae", "dev", {"storgae": {"default": "longhorn"}}, None, None, ERROR, "storgae", "did you mean 'storage'"),
    ("namespace kubeflow_k3s", "dev", None, None, {"kubeflow_k3s:gpu": {"timeSlicing": 2}}, ERROR,
     "kubeflow_k3s:gpu", "kubeflow-k3s:gpu"),
    ("namespace kubeflowk3s", "dev", None, None, {"kubeflowk3s:kubeflow": {"mode": "none"}}, ERROR,
     "kubeflowk3s:kubeflow", "unknown namespace"),
    ("namespace kubeflow-k3", "dev", None, None, {"kubeflow-k3:tls": {"host": "a.example.com"}}, ERROR,
     "kubeflow-k3:tls", "unknown namespace"),
    ("nested typo k3s.extraconfig", "dev", {"k3s": {"extraconfig": {"cluster-cidr": "10.52.0.0/16"}}}, None, None, ERROR,
     "k3s.extraconfig", "did you mean 'extraConfig'"),
    ("K3s flag typo tls-sans", "dev", {"k3s": {"extraConfig": {"tls-sans": ["a.example.com"]}}}, None, None, ERROR,
     "k3s.extraConfig.tls-sans", "did you mean 'tls-san'"),
    ("component typo katbi", "dev", {"kubeflow": {"components": {"katbi": True}}}, None, None, ERROR,
     "kubeflow.components.katbi", "did you mean 'katib'"),
    # extraConfig keys the program owns
    ("write-kubeconfig-mode 0644", "dev", {"k3s": {"extraConfig": {"write-kubeconfig-mode": "0644"}}}, None, None, ERROR,
     "k3s.extraConfig.write-kubeconfig-mode", "0600"),
    ("write-kubeconfig-mode on a node", "dev", {"nodes": [{"name": "dev", "role": "server", "connection": "local",
                                                           "extraConfig": {"write-kubeconfig-mode": "0644"}}]},
     None, None, ERROR, "nodes[0].extraConfig.write-kubeconfig-mode", "0600"),
    ("secrets-encryption false on cloud", "cloud", {"k3s": {"apiEndpoint": "k8s.example.com",
                                                            "extraConfig": {"secrets-encryption": False}}},
     None, None, ERROR, "k3s.extraConfig.secrets-encryption", "k3s.secretsEncryption"),
    ("secrets-encryption false on a cloud node", "cloud", {"nodes": nodes_with(0, extraConfig={"secrets-encryption": False})},
     None, None, ERROR, "nodes[0].extraConfig.secrets-encryption", "k3s.secretsEncryption"),
    ("tls-san-security false on cloud", "cloud", {"k3s": {"apiEndpoint": "k8s.example.com",
                                                          "extraConfig": {"tls-san-security": False}}},
     None, None, ERROR, "k3s.extraConfig.tls-san-security", "must stay true"),
    ("node-label through extraConfig", "edge", {"k3s": {"extraConfig": {"node-label": ["a=b"]}}}, None, None, ERROR,
     "k3s.extraConfig.node-label", "labels"),
    ("default-local-storage-path", "edge", {"k3s": {"extraConfig": {"default-local-storage-path": "/data"}}}, None, None,
     ERROR, "k3s.extraConfig.default-local-storage-path", "storage.localPath"),
    # Keys every server of an HA cluster must agree on, in one server's extraConfig
    ("cluster-cidr on one HA server", "cloud", {"nodes": nodes_with(1, extraConfig={"cluster-cidr": "10.52.0.0/16"})},
     None, None, ERROR, "nodes[1].extraConfig.cluster-cidr", "k3s.extraConfig"),
    ("flannel-backend on one HA server", "cloud", {"nodes": nodes_with(2, extraConfig={"flannel-backend": "wireguard-native"})},
     None, None, ERROR, "nodes[2].extraConfig.flannel-backend", "every server"),
    ("disable servicelb on one HA server", "cloud", {"nodes": nodes_with(0, extraConfig={"disable": ["servicelb"]})},
     None, None, ERROR, "nodes[0].extraConfig.disable", "every server"),
    ("cluster-domain on one HA server", "cloud", {"nodes": nodes_with(0, extraConfig={"cluster-domain": "corp.local"})},
     None, None, ERROR, "nodes[0].extraConfig.cluster-domain", "every server"),
    # Cross-node and cross-key checks
    ("two nodes on one host", "cloud", {"nodes": nodes_with(3, host="192.0.2.11")}, None, None, ERROR,
     "nodes[3].host", "nodes[0]"),
    ("two nodes on one host, port 22 spelled out", "cloud", {"nodes": nodes_with(4, host="192.0.2.21", port=22)}, None, None,
     ERROR, "nodes[4].host", "nodes[3]"),
    ("httpNodePort == httpsNodePort", "cloud", {"gateway": {"httpNodePort": 30443}}, None, None, ERROR,
     "gateway.httpsNodePort", "must differ"),
    ("cluster-cidr /33", "dev", {"k3s": {"extraConfig": {"cluster-cidr": "10.42.0.0/33"}}}, None, None, ERROR,
     "k3s.extraConfig.cluster-cidr", "CIDR"),
    ("service-cidr with host bits", "dev", {"k3s": {"extraConfig": {"service-cidr": "10.43.0.1/16"}}}, None, None, ERROR,
     "k3s.extraConfig.service-cidr", "CIDR"),
    ("cluster-dns not an IP", "dev", {"k3s": {"extraConfig": {"cluster-dns": "dns.local"}}}, None, None, ERROR,
     "k3s.extraConfig.cluster-dns", "IP address"),
    ("overlapping cluster and service CIDRs", "dev",
     {"k3s": {"extraConfig": {"cluster-cidr": "10.42.0.0/16", "service-cidr": "10.42.128.0/17"}}}, None, None, ERROR,
     "k3s.extraConfig.service-cidr", "overlaps"),
    # Secrets
    ("sshPrivateKey is a public key", "edge", None, {"sshPrivateKey": PUBLIC_KEY}, None, ERROR, "sshPrivateKey", "public key"),
    ("adminPassword 12341234", "dev", None, {"adminPassword": "12341234"}, None, ERROR, "adminPassword", "example password"),
    # Warnings: settings the stack ignores
    ("tls on edge (pipelines)", "edge", {"tls": {"host": "kfp.example.com"}}, None, None, WARNING, "tls", "ignored"),
    ("gateway on edge (pipelines)", "edge", {"gateway": {"serviceType": "NodePort"}}, None, None, WARNING, "gateway", "ignored"),
    ("gpu settings without a GPU node", "dev", {"gpu": {"timeSlicing": 4}}, None, None, WARNING, "gpu", "no node has gpu"),
    ("users with mode: pipelines", "edge", {"kubeflow": {"users": [{"name": "alice", "email": "alice@example.com"}]}},
     None, None, WARNING, "kubeflow.users", "ignored"),
    ("adminEmail with mode: pipelines", "edge", {"kubeflow": {"adminEmail": "ops@example.com"}}, None, None, WARNING,
     "kubeflow.adminEmail", "ignored"),
    ("component switches with mode: pipelines", "edge", {"kubeflow": {"components": {"katib": True}}}, None, None, WARNING,
     "kubeflow.components", "ignored"),
    ("adminPassword with mode: pipelines", "edge", None, {"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"],
                                                          "adminPassword": "a-long-admin-password"}, None, WARNING,
     "adminPassword", "ignored"),
    ("node ports with a LoadBalancer gateway", "dev", {"gateway": {"httpNodePort": 31080}}, None, None, WARNING,
     "gateway.httpNodePort", "ignored"),
    ("tls.email with the self-signed issuer", "dev", {"tls": {"email": "ops@example.com"}}, None, None, WARNING,
     "tls.email", "ignored"),
    # Warnings: secrets, placeholders, versions, paths
    ("adminPassword without --secret", "dev", {"adminPassword": "a-long-admin-password"}, None, None, WARNING,
     "adminPassword", "--secret"),
    ("sshPrivateKey without --secret", "edge", {"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"]}, {}, None, WARNING,
     "sshPrivateKey", "--secret"),
    ("empty k3sToken", "dev", None, {"k3sToken": ""}, None, WARNING, "k3sToken", "empty"),
    ("placeholder host key", "cloud", None, None, None, WARNING, "nodes[0].hostKey", "placeholder"),
    ("placeholder bastion host key", "cloud", None, None, None, WARNING, "ssh.bastion.hostKey", "placeholder"),
    ("K3s minor other than the tested one", "dev", {"k3s": {"version": OTHER_MINOR}}, None, None, WARNING,
     "k3s.version", f"tested with {versions.KUBERNETES_MINOR}"),
    ("manifestsPath that does not exist", "dev", {"kubeflow": {"manifestsPath": "/nonexistent/kubeflow-manifests"}},
     None, None, WARNING, "kubeflow.manifestsPath", "does not exist"),
    ("air-gap files that do not exist", "edge", {"k3s": {"airgap": {
        "binary": "./no-airgap/k3s", "images": "./no-airgap/images.tar.zst", "installScript": "./no-airgap/install.sh",
        "platformImages": "./no-airgap/platform"}}, "kubeflow": {"manifestsPath": "./no-airgap/manifests"}},
     None, None, WARNING, "k3s.airgap.images", "does not exist"),
]


def test_the_table_covers_the_issue():
    assert len(CASES) >= 34 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case,stack,overrides,secrets,extra,outcome,key,words", CASES, ids=[c[0] for c in CASES])
def test_no_stack_configuration_is_silently_accepted(case, stack, overrides, secrets, extra, outcome, key, words):
    if outcome == ERROR:
        with pytest.raises(ConfigError) as err:
            load(stack, overrides, secrets, extra)
        found = dict(err.value.problems)
        assert key in found, f"{case}: {err.value}"
        assert words in found[key], f"{case}: {found[key]}"
        shown = key if ":" in key else f"{NS}:{key}"
        assert f"  {shown}: " in str(err.value)
    else:
        settings, _ = load(stack, overrides, secrets, extra)
        lines = [w for w in settings.warnings() if w.startswith(f"{NS}:{key} ")]
        assert lines and words in lines[0], f"{case}: {settings.warnings()}"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_the_checked_in_stacks_warn_only_about_what_is_really_there(stack):
    settings, _ = load(stack)
    warnings = settings.warnings()
    assert len(warnings) == len(set(warnings))
    placeholders = [w for w in warnings if "placeholder" in w]
    assert bool(placeholders) == (stack == "cloud")  # Pulumi.cloud.yaml ships ...ReplaceWith... host keys
    assert not [w for w in warnings if "ignored" in w or "--secret" in w or "tested with" in w]


def test_an_empty_k3s_token_is_generated_instead():
    _, secrets = load("dev", secrets={"k3sToken": ""})
    assert secrets.k3s_token is None


def test_each_warning_reaches_the_log_once(caplog):
    harness.run_stack("dev", {"gpu": {"timeSlicing": 2}, "tls": {"email": "ops@example.com"}})
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{NS}:")]
    assert any(m.startswith(f"{NS}:gpu ") for m in messages) and len(messages) == len(set(messages))


# Accepted now: what `pulumi config set --path` stores, and one rule for booleans

def test_a_number_is_a_kubernetes_quantity():
    raw = {"profile": "laptop", "nodes": [{"name": "dev", "role": "server", "connection": "local"}],
           "kubeflow": {"users": [{"name": "alice", "email": "alice@example.com", "quota": {"cpu": 8, "memory": "32Gi", "gpu": 1}}]}}
    quota = parse_settings(raw).kubeflow.users[0].quota
    assert (quota.cpu, quota.memory, quota.gpu) == ("8", "32Gi", "1")
    raw["kubeflow"]["users"][0]["quota"] = {"cpu": -1}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    assert "kubeflow.users[0].quota.cpu" in dict(err.value.problems)


@pytest.mark.parametrize("value,expected", [("false", False), ("true", True), ("False", False), (False, False), (True, True)])
def test_component_switches_follow_the_boolean_rule_of_every_other_key(value, expected):
    raw = {"profile": "laptop", "nodes": [{"name": "dev", "role": "server", "connection": "local"}],
           "kubeflow": {"components": {"katib": value}}, "k3s": {"secretsEncryption": value}}
    settings = parse_settings(raw)
    assert settings.kubeflow.components["katib"] is expected and settings.k3s.secrets_encryption is expected


@pytest.mark.parametrize("value", ["yes", 1, "no"])
def test_every_boolean_refuses_the_same_values(value):
    raw = {"profile": "laptop", "nodes": [{"name": "dev", "role": "server", "connection": "local"}],
           "kubeflow": {"components": {"katib": value}}, "k3s": {"secretsEncryption": value}}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    found = dict(err.value.problems)
    assert found["kubeflow.components.katib"] == found["k3s.secretsEncryption"]


# Merged, never replacing: tls-san and disable

@pytest.mark.parametrize("value", [["extra.example.com", "203.0.113.7"], "extra.example.com,203.0.113.7"])
def test_tls_san_is_added_to_the_addresses_the_program_needs(value):
    raw = harness.yaml.safe_load((harness.ROOT / "Pulumi.cloud.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in raw.items()}
    raw["k3s"]["extraConfig"] = {"tls-san": value, "disable": ["metrics-server"]}
    raw["nodes"][1]["extraConfig"] = {"tls-san": ["server-2.example.com"]}
    settings = parse_settings(raw, "cloud")
    needed = k3s_plan.tls_sans(settings)
    for node in settings.servers:
        cfg = k3s_plan.node_config(settings, node)
        assert cfg["tls-san"][: len(needed)] == needed
        assert {"extra.example.com", "203.0.113.7"} <= set(cfg["tls-san"])
        assert ("server-2.example.com" in cfg["tls-san"]) == (node.name == "server-2")
        assert {"traefik", "local-storage", "metrics-server"} <= set(cfg["disable"])
        # The profile's floors hold after merging.
        assert cfg["secrets-encryption"] is True and cfg["write-kubeconfig-mode"] == "0600"


def test_cluster_wide_keys_are_fine_in_k3s_extra_config_and_on_a_single_server():
    raw = harness.yaml.safe_load((harness.ROOT / "Pulumi.cloud.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in raw.items()}
    raw["k3s"]["extraConfig"] = {"cluster-cidr": "10.52.0.0/16", "service-cidr": "10.53.0.0/16,fd00:53::/112"}
    settings = parse_settings(raw, "cloud")
    assert all(k3s_plan.node_config(settings, n)["cluster-cidr"] == "10.52.0.0/16" for n in settings.servers)
    single = {"profile": "edge", "ssh": {"user": "u"},
              "nodes": [{"name": "s1", "host": "192.0.2.11", "role": "server", "extraConfig": {"cluster-cidr": "10.52.0.0/16"}}]}
    assert parse_settings(single).nodes[0].extra_config["cluster-cidr"] == "10.52.0.0/16"


def test_every_cluster_wide_key_is_accepted_where_it_belongs():
    """The error for a cluster-wide key in one server's extraConfig says "set it in k3s.extraConfig": that
    must then be accepted (it was not for secrets-encryption-provider, a real K3s server flag)."""
    from stacks import k3s_flags

    owned = set(k3s_flags.OWNED_KEYS) | set(k3s_flags.MANAGED_KEYS)
    base = {"profile": "edge", "ssh": {"user": "u"}, "nodes": [{"name": "s1", "host": "192.0.2.11", "role": "server"}]}
    refused = []
    for key in sorted(k3s_flags.CLUSTER_WIDE_KEYS - owned):
        raw = {**base, "k3s": {"extraConfig": {key: "10.52.0.0/16" if key in k3s_flags.CIDR_KEYS else "x"}}}
        try:
            parse_settings(raw, "edge")
        except ConfigError as err:
            refused += [(k, m) for k, m in err.problems if "unknown" in m]
    assert not refused, refused


def test_two_nodes_behind_one_address_on_different_ports_are_two_machines():
    raw = harness.yaml.safe_load((harness.ROOT / "Pulumi.cloud.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in raw.items()}
    raw["nodes"][4].update(host="192.0.2.21", port=2222)
    assert parse_settings(raw, "cloud").node("gpu-1").port == 2222
