"""Storage planning: one default StorageClass, Longhorn replicas vs nodes, host packages where needed."""

from __future__ import annotations

import copy

import pytest

from components.k3s import k3s_plan
from components.storage import storage_plan
from stacks.settings import parse_settings
from tests.harness import stack_raw


def settings_of(stack: str, **storage):
    raw = copy.deepcopy(stack_raw(stack))
    if storage:
        raw["storage"] = storage
    return parse_settings(raw, stack)


def defaults(classes: dict[str, bool]) -> list[str]:
    return [name for name, is_default in classes.items() if is_default]


def server_disables(settings) -> list[str]:
    return k3s_plan.node_config(settings, settings.first_server)["disable"]


CASES = [
    ("dev", {}, "local-path"),
    ("edge", {}, "local-path"),
    ("cloud", {}, "longhorn"),
    ("dev", {"default": "longhorn"}, "longhorn"),
    ("edge", {"default": "local-path", "longhorn": {"replicas": 1}}, "local-path"),
    ("cloud", {"default": "nfs", "longhorn": {}, "nfs": {"server": "10.0.0.5", "path": "/exports/k8s"}}, "nfs-client"),
    ("cloud", {"default": "longhorn", "nfs": {"server": "nfs.example.com", "path": "/k8s"}}, "longhorn"),
]


@pytest.mark.parametrize("stack,storage,expected", CASES)
def test_exactly_one_default_class_and_k3s_agrees(stack, storage, expected):
    s = settings_of(stack, **storage)
    classes = storage_plan.storage_classes(s)
    assert defaults(classes) == [expected] == [storage_plan.default_class(s)]
    # K3s re-marks local-path default on every start: it runs only when it is the default.
    local_path_runs = "local-storage" not in server_disables(s)
    assert local_path_runs == (expected == "local-path")
    if "longhorn" in classes:
        assert storage_plan.longhorn_values(s)["persistence"]["defaultClass"] == (expected == "longhorn")
    if "nfs-client" in classes:
        assert storage_plan.nfs_values(s)["storageClass"]["defaultClass"] == (expected == "nfs-client")


def test_agents_never_carry_server_only_disables():
    s = settings_of("cloud")
    assert "disable" not in k3s_plan.node_config(s, s.node("agent-1"))


def test_local_path_host_path_is_configurable():
    s = settings_of("edge", localPath="/data/k3s-storage")
    assert k3s_plan.node_config(s, s.first_server)["default-local-storage-path"] == "/data/k3s-storage"


def test_host_packages_only_where_longhorn_or_nfs_is_enabled():
    for stack in ("dev", "edge"):
        s = settings_of(stack)
        assert storage_plan.host_requirements(s, s.first_server) == {"packages": [], "services": [], "modules": []}
    s = settings_of("cloud")
    for node in s.nodes:  # every node may attach a volume, GPU nodes included
        req = storage_plan.host_requirements(s, node)
        assert req == {"packages": ["open-iscsi", "nfs-common"], "services": ["iscsid"], "modules": ["iscsi_tcp"]}
    s = settings_of("edge", nfs={"server": "10.0.0.5", "path": "/k8s"})
    assert storage_plan.host_requirements(s, s.first_server) == {"packages": ["nfs-common"], "services": [], "modules": []}


def test_prepare_params_carry_the_host_requirements():
    s = settings_of("cloud")
    params = k3s_plan.prepare_params(s, s.first_server, **storage_plan.host_requirements(s, s.first_server))
    assert params["PACKAGES"] == "open-iscsi nfs-common"
    assert params["SERVICES"] == "iscsid"
    assert params["MODULES"].split() == ["overlay", "br_netfilter", "iscsi_tcp"]


def test_cloud_gpu_node_holds_replicas_because_longhorn_tolerates_its_taint():
    s = settings_of("cloud")
    assert "nvidia.com/gpu=true:NoSchedule" in k3s_plan.node_taints(s, s.node("gpu-1"))
    assert storage_plan.replica_nodes(s) == ["server-1", "server-2", "server-3", "agent-1", "gpu-1"]
    values = storage_plan.longhorn_values(s)
    assert values["global"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    # Longhorn's syntax: `key:effect` is operator Exists.
    assert values["defaultSettings"]["taintToleration"] == "nvidia.com/gpu:NoSchedule"


def test_adding_a_first_gpu_node_leaves_longhorns_taint_toleration_alone():
    # Longhorn refuses a taint-toleration change while volumes are attached: it is there from the start.
    raw = copy.deepcopy(stack_raw("cloud"))
    without = [n for n in raw["nodes"] if n.get("gpu") != "nvidia"]
    before = storage_plan.longhorn_values(parse_settings({**raw, "nodes": without}, "cloud"))
    after = storage_plan.longhorn_values(parse_settings(raw, "cloud"))
    assert before["defaultSettings"]["taintToleration"] == after["defaultSettings"]["taintToleration"]
    assert before["global"] == after["global"]


def test_nodes_with_other_hard_taints_hold_no_replicas():
    raw = copy.deepcopy(stack_raw("cloud"))
    raw["nodes"][3]["taints"] = ["dedicated=infra:NoSchedule"]  # agent-1
    raw["nodes"][4]["taints"] = ["spot=true:PreferNoSchedule"]  # gpu-1: soft taints do not count
    s = parse_settings(raw, "cloud")
    assert storage_plan.replica_nodes(s) == ["server-1", "server-2", "server-3", "gpu-1"]


@pytest.mark.parametrize("nodes,expected", [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_default_replicas_are_three_capped_at_eligible_nodes(nodes, expected):
    raw = {"profile": "edge", "ssh": {"user": "u"}, "storage": {"default": "longhorn"},
           "nodes": [{"name": "s1", "host": "192.0.2.1", "role": "server"}]
           + [{"name": f"a{i}", "host": f"192.0.2.{10 + i}", "role": "agent"} for i in range(nodes - 1)]}
    s = parse_settings(raw, "edge")
    assert storage_plan.longhorn_replicas(s) == expected
    values = storage_plan.longhorn_values(s)
    assert values["persistence"]["defaultClassReplicaCount"] == expected
    assert values["defaultSettings"]["defaultReplicaCount"] == f'{{"v1":"{expected}"}}'
    assert ("csi" in values) == (nodes == 1)  # single node: one CSI sidecar of each kind
    assert not storage_plan.problems(s)


def test_more_replicas_than_eligible_nodes_is_refused_naming_the_key():
    raw = {"profile": "edge", "ssh": {"user": "u"}, "storage": {"default": "longhorn", "longhorn": {"replicas": 3}},
           "nodes": [{"name": "s1", "host": "192.0.2.1", "role": "server"},
                     {"name": "a1", "host": "192.0.2.2", "role": "agent", "taints": ["infra=true:NoExecute"]}]}
    found = dict(storage_plan.problems(parse_settings(raw, "edge")))
    assert list(found) == ["storage.longhorn.replicas"]
    assert "only 1 node(s)" in found["storage.longhorn.replicas"] and "s1" in found["storage.longhorn.replicas"]


def test_longhorn_uninstall_is_not_blocked_by_its_deletion_guard():
    values = storage_plan.longhorn_values(settings_of("cloud"))
    assert values["defaultSettings"]["deletingConfirmationFlag"] is True
    assert values["preUpgradeChecker"]["jobEnabled"] is False


def test_nfs_values_point_at_the_configured_export():
    s = settings_of("cloud", default="longhorn", nfs={"server": "10.0.0.5", "path": "/exports/k8s"})
    values = storage_plan.nfs_values(s)
    assert values["nfs"]["server"] == "10.0.0.5" and values["nfs"]["path"] == "/exports/k8s"
    assert values["storageClass"]["name"] == "nfs-client"


def test_disabling_local_storage_while_it_is_the_default_is_refused():
    raw = copy.deepcopy(stack_raw("edge"))
    raw["k3s"] = {"extraConfig": {"disable": ["local-storage"]}}
    found = dict(storage_plan.problems(parse_settings(raw, "edge")))
    assert list(found) == ["k3s.extraConfig.disable"]
