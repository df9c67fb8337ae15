"""The K3s layer's node lifecycle over the SSH bed: the program's own command texts (recorded under the
mocks), exec'd over real SSH as a non-root sudo user, K3s's real install.sh against simulated K3s."""

from __future__ import annotations

import functools
import json
import platform
import threading
import time

import pytest

from components.k3s import k3s_plan
from stacks import versions
from tests import harness
from tests.sshbed.engine import CommandFailed, Deployment
from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
NEXT_VERSION = "v1.34.7+k3s1"
assert versions.K3S_VERSION != NEXT_VERSION
SHORT_WAIT = 4  # seconds: the bound a test gives install.sh where it expects a timeout


def node(name, address, role="server", **extra):
    return {"name": name, "host": address, "role": role, "arch": ARCH, **extra}


HA = [node("server-1", "10.9.0.11"), node("server-2", "10.9.0.12"), node("server-3", "10.9.0.13"),
      node("agent-1", "10.9.0.21", "agent")]


def program(nodes, k3s=None, **overrides):
    """The whole __main__ of an edge-profile stack with these nodes, under the mocks (memoized: the
    evaluation is deterministic, and tests only read the registrations)."""
    key = json.dumps([nodes, k3s, overrides], sort_keys=True)
    # Not for air-gap files: the program hashes their content, which a test changes in place.
    return _program.__wrapped__(key) if (k3s or {}).get("airgap") else _program(key)


@functools.lru_cache(maxsize=None)
def _program(key):
    nodes, k3s, overrides = json.loads(key)
    config = {
        "nodes": nodes,
        "preflight": {"minMemoryMiB": 256, "minDiskGiB": 1},
        "k3s": {"installTimeoutSeconds": 60, **(k3s or {})},
        "kubeflow": {"mode": "none"},  # the K3s layer is what runs here; fewer layers, faster evaluations
        **overrides,
    }
    return harness.run_stack("edge", overrides=config)


def deploy(bed, nodes, wait=None):
    hosts = {n["host"]: bed.host(n["name"] + ("" if n["name"] not in bed.hosts else "-new"), n["host"]) for n in nodes}

    def tweak(name, text):
        return text.replace("\nWAIT_SECONDS=60\n", f"\nWAIT_SECONDS={wait}\n") if wait else text

    return Deployment(hosts, tweak=tweak)


def bed_calls(bed):
    return [tuple(line.split("\t", 1)) for line in (bed.cluster / "calls.log").read_text().splitlines()]


def restarts(bed, host):
    return [c for c in bed.calls(host) if c.startswith("systemctl restart")]


def test_first_install_ha_servers_one_at_a_time_then_the_agent(bed):
    d = deploy(bed, HA)
    d.up(program(HA))
    nodes = bed.nodes()
    assert set(nodes) == {"server-1", "server-2", "server-3", "agent-1"}
    assert {n["version"] for n in nodes.values()} == {versions.K3S_VERSION}
    assert all(n["ready"] == "true" for n in nodes.values())
    # one etcd cluster, bootstrapped by server-1 and joined by the others
    assert set(bed.etcd_members()) == {"server-1", "server-2", "server-3"}
    assert len(set(bed.etcd_members().values())) == 1
    installs = [s.host for s in d.steps if s.name.endswith("-install")]
    assert [h for h in installs if h.startswith("server")] == ["server-1", "server-2", "server-3"]
    assert installs.index("agent-1") > installs.index("server-1")
    restarted = [h for h, c in bed_calls(bed) if c.startswith("systemctl restart")]
    assert restarted.index("server-1") < restarted.index("server-2") < restarted.index("server-3")
    # config.yaml as the program rendered it, 0600, as root only
    cfg = bed.hosts["server-2"].read("/etc/rancher/k3s/config.yaml")
    assert "server: https://10.9.0.11:6443" in cfg and "token: " in cfg
    assert bed.hosts["server-2"].root("stat -c %a /etc/rancher/k3s/config.yaml").stdout.strip() == "600"
    # the installer ran as the login user and escalated with sudo (nothing ran as root over SSH)
    assert all(s.result.ok for s in d.steps)


def test_recreate_with_changed_config_restarts_and_helper_text_alone_does_not(bed):
    nodes = [node("edge-1", "10.9.1.1")]
    d = deploy(bed, nodes)
    d.up(program(nodes))
    host = bed.hosts["edge-1"]
    assert len(restarts(bed, "edge-1")) == 1
    # A failed first `up` leaves no state: Pulumi creates the install again, now with another config.
    d.forget("k3s-edge-1-install")
    d.up(program([{**nodes[0], "extraConfig": {"kubelet-arg": ["max-pods=150"]}}]))
    assert "max-pods=150" in host.read("/etc/rancher/k3s/config.yaml")
    assert len(restarts(bed, "edge-1")) == 2, "a re-created install with a new config.yaml must restart K3s"
    # Only the shared helpers' text changes (e.g. a new version of lib.sh): updates run, no restart.
    bed.clear_calls()
    d.tweak = lambda name, text: text.replace("# Shared helpers,", "# Shared helpers (edited),")
    d.forget("k3s-edge-1-install")
    d.up(program([{**nodes[0], "extraConfig": {"kubelet-arg": ["max-pods=150"]}}]))
    assert ("k3s-edge-1-install", "create") in d.ran()
    assert restarts(bed, "edge-1") == [], "same config, version and files: K3s keeps running"
    d.tweak = lambda name, text: text
    d.up(program([{**nodes[0], "extraConfig": {"kubelet-arg": ["max-pods=150"]}}], k3s={"tlsSans": ["k3s.lan"]}))
    assert ("k3s-edge-1-install", "update") in d.ran() and len(restarts(bed, "edge-1")) == 1


def test_a_label_or_taint_change_updates_config_yaml_and_restarts_nothing(bed):
    """K3s applies node-label/node-taint only at registration; the NodePatch carries later changes, so a
    restart would only interrupt the node's pods for nothing."""
    nodes = [node("edge-1", "10.9.1.1", labels={"zone": "a"})]
    d = deploy(bed, nodes)
    d.up(program(nodes))
    bed.clear_calls()
    d.up(program([{**nodes[0], "labels": {"zone": "b"}, "taints": ["dedicated=ml:NoSchedule"]}]))
    assert ("k3s-edge-1-install", "update") in d.ran()
    config = bed.hosts["edge-1"].read("/etc/rancher/k3s/config.yaml")
    assert "zone=b" in config and "dedicated=ml:NoSchedule" in config  # for a later re-registration
    assert restarts(bed, "edge-1") == [], "a label or taint change must not restart K3s"
    # Anything else in config.yaml still restarts it.
    d.up(program([{**nodes[0], "labels": {"zone": "b"}, "taints": ["dedicated=ml:NoSchedule"],
                   "extraConfig": {"kubelet-arg": ["max-pods=150"]}}]))
    assert len(restarts(bed, "edge-1")) == 1


def test_update_to_a_new_version_restarts_every_node_on_it(bed):
    nodes = [HA[0], HA[3]]
    d = deploy(bed, nodes)
    d.up(program(nodes))
    bed.clear_calls()
    upgrade = d.up(program(nodes, k3s={"version": NEXT_VERSION}))
    assert {n["version"] for n in bed.nodes().values()} == {NEXT_VERSION}
    assert len(restarts(bed, "server-1")) == 1 and len(restarts(bed, "agent-1")) == 1
    assert f"k3s version {NEXT_VERSION}" in bed.hosts["agent-1"].run("k3s --version").stdout
    # and the cluster's readiness is checked again, after every node restarted on it
    order = [(s.name, s.op) for s in upgrade]
    assert ("k3s-nodes-ready", "create") in order
    assert order.index(("k3s-nodes-ready", "create")) > max(order.index((f"k3s-{n}-install", "update")) for n in ("server-1", "agent-1"))


def test_agent_upgrade_waits_for_every_server_as_a_non_root_user(bed):
    nodes = HA
    d = deploy(bed, nodes, wait=20)
    d.up(program(nodes))
    new = program(nodes, k3s={"version": NEXT_VERSION})
    agent_install = new.get("k3s-agent-1-install")
    agent = bed.hosts["agent-1"]
    text = d.tweak(agent_install.name, agent_install.inputs["update"])
    assert agent.run("id -u").stdout.strip() != "0"
    finished = {}

    def upgrade_agent():
        finished["result"] = agent.run(text, stdin=agent_install.inputs["stdin"])
        finished["at"] = time.monotonic()

    worker = threading.Thread(target=upgrade_agent)
    worker.start()
    time.sleep(2)
    assert bed.nodes()["agent-1"]["version"] == versions.K3S_VERSION, "the agent went ahead of the servers"
    servers_done = None
    for server in ("server-1", "server-2", "server-3"):
        reg = new.get(f"k3s-{server}-install")
        assert bed.hosts[server].run(reg.inputs["update"], stdin=reg.inputs["stdin"]).ok
        servers_done = time.monotonic()
    worker.join(60)
    result = finished["result"]
    assert result.ok, result.stderr
    assert "waiting for every server to run" in result.stderr
    assert finished["at"] >= servers_done and bed.nodes()["agent-1"]["version"] == NEXT_VERSION


def test_agent_upgrade_fails_when_the_server_versions_cannot_be_read(bed):
    nodes = [HA[0], HA[3]]
    d = deploy(bed, nodes, wait=SHORT_WAIT)
    d.up(program(nodes))
    bed.hosts["agent-1"].root("rm -f /var/lib/rancher/k3s/agent/kubelet.kubeconfig")
    bed.hosts["agent-1"].root("mkdir -p /var/lib/rancher/k3s/agent && touch /var/lib/rancher/k3s/agent/kubelet.kubeconfig && chmod 000 /var/lib/rancher/k3s/agent/kubelet.kubeconfig")
    bed.hosts["server-1"].root("systemctl stop k3s")  # the API is gone: versions unreadable
    reg = program(nodes, k3s={"version": NEXT_VERSION}).get("k3s-agent-1-install")
    result = bed.hosts["agent-1"].run(d.tweak(reg.name, reg.inputs["update"]), stdin=reg.inputs["stdin"])
    assert result.exit_status == 1 and "timed out after 4s waiting for every server to run" in result.stderr
    assert bed.nodes()["agent-1"]["version"] == versions.K3S_VERSION


def test_a_hung_service_start_ends_within_its_bound_with_a_hint(bed):
    nodes = [node("edge-1", "10.9.1.1")]
    d = deploy(bed, nodes, wait=SHORT_WAIT)
    bed.hang("edge-1")
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        d.up(program(nodes))
    elapsed = time.monotonic() - started
    assert failed.value.name == "k3s-edge-1-install"
    assert f"timed out after {SHORT_WAIT}s waiting for the K3s API on edge-1" in failed.value.result.stderr
    assert "Check: journalctl -u k3s" in failed.value.result.stderr
    assert failed.value.result.seconds < SHORT_WAIT + 8, f"install took {failed.value.result.seconds:.1f}s"
    assert elapsed < 60
    # the next run, once K3s can start, completes (the failed create is created again)
    bed.hang("edge-1", on=False)
    d.up(program(nodes))
    assert bed.nodes()["edge-1"]["ready"] == "true"


def airgap(tmp_path, bed, version=versions.K3S_VERSION, registries="mirrors: {}\n"):
    files = tmp_path / "airgap"
    files.mkdir(exist_ok=True)
    (files / "k3s").write_text((bed.cluster / "k3s.template").read_text().replace("@VERSION@", version))
    (files / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd images")
    (files / "install.sh").write_text((bed.cluster / "install.sh").read_text())
    (files / "registries.yaml").write_text(registries)
    return {"binary": str(files / "k3s"), "images": str(files / "k3s-airgap-images-amd64.tar.zst"),
            "installScript": str(files / "install.sh"), "registries": str(files / "registries.yaml")}


def test_air_gapped_first_install_and_a_changed_staged_file_reinstalls(bed, tmp_path):
    nodes = [node("edge-1", "10.9.1.1")]
    d = deploy(bed, nodes)
    files = airgap(tmp_path, bed)
    d.up(program(nodes, k3s={"airgap": files}))
    host = bed.hosts["edge-1"]
    assert not [c for c in bed.calls("edge-1") if c.startswith("curl ") and "releases" in c], "no downloads"
    assert host.read("/etc/rancher/k3s/registries.yaml") == "mirrors: {}\n"
    assert host.exists("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")
    assert bed.nodes()["edge-1"]["ready"] == "true"
    bed.clear_calls()
    pathlib_ = __import__("pathlib")
    pathlib_.Path(files["registries"]).write_text("mirrors:\n  docker.io:\n    endpoint: [https://registry.lan]\n")
    d.up(program(nodes, k3s={"airgap": files}))
    assert "registry.lan" in host.read("/etc/rancher/k3s/registries.yaml")
    assert len(restarts(bed, "edge-1")) == 1, "a new registries.yaml must restart K3s"
    # a new binary (a new version staged) too
    bed.clear_calls()
    files = airgap(tmp_path, bed, version=NEXT_VERSION, registries=pathlib_.Path(files["registries"]).read_text())
    d.up(program(nodes, k3s={"airgap": files, "version": NEXT_VERSION}))
    assert bed.nodes()["edge-1"]["version"] == NEXT_VERSION and len(restarts(bed, "edge-1")) == 1
    d.destroy()
    assert not host.exists(k3s_plan.STAGE_DIR) and not host.exists("/usr/local/bin/k3s")


def test_a_staged_registries_yaml_dropped_from_the_stack_is_not_installed_again(bed, tmp_path):
    """Copies have no delete: the staged registries.yaml stays in the staging folder when the stack moves from
    k3s.airgap.registries to k3s.registries. The install must not put it over the file registries.sh wrote."""
    nodes = [node("edge-1", "10.9.1.1")]
    d = deploy(bed, nodes)
    files = airgap(tmp_path, bed, registries="mirrors:\n  docker.io:\n    endpoint: [https://staged.lan]\n")
    d.up(program(nodes, k3s={"airgap": files}))
    host = bed.hosts["edge-1"]
    assert "staged.lan" in host.read("/etc/rancher/k3s/registries.yaml")
    without = {k: v for k, v in files.items() if k != "registries"}
    mirror = {"mirrors": {"docker.io": {"endpoint": ["https://mirror.lan"]}}}
    steps = d.up(program(nodes, k3s={"airgap": without, "registries": mirror}))
    assert [s.name for s in steps].index("k3s-edge-1-registries") < [s.name for s in steps].index("k3s-edge-1-install")
    assert "mirror.lan" in host.read("/etc/rancher/k3s/registries.yaml")
    assert not host.exists(f"{k3s_plan.STAGE_DIR}/registries.yaml"), "the stale staged copy is removed"
    # the next update leaves the file registries.sh wrote alone too
    d.up(program(nodes, k3s={"airgap": without, "registries": mirror, "version": NEXT_VERSION}))
    assert "mirror.lan" in host.read("/etc/rancher/k3s/registries.yaml")


def test_removing_nodes_drains_and_deletes_them_from_a_remaining_server(bed):
    d = deploy(bed, HA)
    d.up(program(HA))
    bed.clear_calls()
    d.up(program(HA[:3]))  # agent-1 leaves
    assert "agent-1" not in bed.nodes()
    calls = bed_calls(bed)
    drain = next(i for i, (h, c) in enumerate(calls) if h == "server-1" and " drain agent-1" in c)
    delete = next(i for i, (h, c) in enumerate(calls) if h == "server-1" and "delete node agent-1" in c)
    stop = next(i for i, (h, c) in enumerate(calls) if h == "agent-1" and c.startswith("systemctl stop k3s-agent"))
    assert drain < delete < stop, "drain and delete from a server that stays, then uninstall"
    assert not bed.hosts["agent-1"].exists("/usr/local/bin/k3s")
    # the name is free again: a new host may take it
    bed.remove_host("agent-1")
    new_agent = node("agent-1", "10.9.0.22", "agent")
    d.hosts[new_agent["host"]] = bed.host("agent-1b", new_agent["host"])
    d.up(program([*HA[:3], new_agent]))
    assert bed.nodes()["agent-1"]["address"] == "10.9.0.22"
    # servers leave (3 -> 1): their etcd members go with their Nodes (K3s), server-1 keeps a quorum of one
    d.up(program([HA[0], new_agent]))
    assert set(bed.nodes()) == {"server-1", "agent-1"}
    assert set(bed.etcd_members()) == {"server-1"}
    assert not bed.hosts["server-3"].exists("/usr/local/bin/k3s")


def test_removing_a_server_with_the_server_that_would_remove_it_still_drains_both(bed):
    """server-1's leave runs on server-2 and server-2's on server-1: both go in one `up`, and neither
    drain may be skipped (it was, when a leave went with its runner's install)."""
    d = deploy(bed, HA[:3])
    d.up(program(HA[:3]))
    bed.clear_calls()
    d.up(program([HA[2]]))
    leaves = {s.name: s for s in d.steps if s.name.endswith("-member") and s.op == "delete"}
    assert set(leaves) == {"k3s-server-1-member", "k3s-server-2-member"}, "server-3 stays: never drained"
    assert ("k3s-server-3-member", "update") in d.ran(), "server-3's membership now runs on itself"
    assert all("drained and deleted" in s.result.stderr for s in leaves.values())
    assert set(bed.nodes()) == {"server-3"} and set(bed.etcd_members()) == {"server-3"}
    for gone in ("server-1", "server-2"):
        assert not bed.hosts[gone].exists("/usr/local/bin/k3s")


def test_replacing_the_first_server_joins_the_existing_cluster(bed):
    d = deploy(bed, HA[:3])
    d.up(program(HA[:3]))
    cluster = set(bed.etcd_members().values())
    assert len(cluster) == 1
    bed.remove_host("server-1")  # the machine died
    new_first = node("server-1", "10.9.0.14")
    d.hosts[new_first["host"]] = bed.host("server-1b", new_first["host"])
    # Its old host is gone, so its uninstall cannot run: the documented steps (docs/k3s.md) are to delete
    # the Node from a server that stays, then `pulumi state delete` what ran on the dead host.
    assert bed.hosts["server-2"].run("sudo -n k3s kubectl delete node server-1").ok
    for name in [n for n, r in d.state.items() if (r.inputs.get("connection") or {}).get("host") == "10.9.0.11"]:
        d.forget(name)
    d.up(program([new_first, *HA[1:3]]))
    members = bed.etcd_members()
    assert set(members) == {"server-1", "server-2", "server-3"}
    assert set(members.values()) == cluster, "the new first server started a second cluster"
    cfg = bed.hosts["server-1b"].read("/etc/rancher/k3s/config.yaml")
    assert "cluster-init" not in cfg and "server: https://10.9.0.12:6443" in cfg
    assert ("k3s-kubeconfig", "create") in d.ran(), "the kubeconfig is read again from the new first server"
    # the stale membership of the dead host is replaced after the new install: it leaves the new Node alone
    stale = next(s for s in d.steps if (s.name, s.op) == ("k3s-server-1-member", "delete"))
    assert "is a newer registration" in stale.result.stderr and bed.nodes()["server-1"]["ready"] == "true"
    # A later update (here a label, which restarts nothing) keeps the join: config.yaml does not go back to
    # cluster-init, so its digest is unchanged and K3s keeps running.
    bed.clear_calls()
    steps = d.up(program([{**new_first, "labels": {"zone": "a"}}, *HA[1:3]]))
    assert ("k3s-server-1-install", "update") in [(s.name, s.op) for s in steps]
    cfg = bed.hosts["server-1b"].read("/etc/rancher/k3s/config.yaml")
    assert "cluster-init" not in cfg and "server: https://10.9.0.12:6443" in cfg
    assert restarts(bed, "server-1b") == [], "a joined first server must not restart on every update"
    # the join is recorded inside K3s's data dir, which K3s's uninstall removes
    assert bed.hosts["server-1b"].read("/var/lib/rancher/k3s/kubeflow-k3s.joined") == "https://10.9.0.12:6443\n"


def without_downloaders(host):
    """Hide curl (the bed's stub and the machine's) and wget in the host's sandbox: an overlay over /usr/bin."""
    ov = host.dir / "ov" / "usr-bin"
    (ov / "upper").mkdir(parents=True)
    (ov / "work").mkdir()
    done = host.root(f"mount -t overlay overlay -o lowerdir=/usr/bin,upperdir={ov}/upper,workdir={ov}/work /usr/bin"
                     " && rm -f /usr/bin/curl /usr/bin/wget /usr/local/bin/curl /usr/local/bin/wget")
    assert done.returncode == 0, done.stderr
    assert host.run("command -v curl || command -v wget").exit_status != 0


def test_a_first_ha_server_without_curl_or_wget_fails_instead_of_bootstrapping_unasked(bed, tmp_path):
    """Air-gapped, nothing else needs curl: without curl or wget the first server cannot ask the others
    whether a cluster already runs, and must not start one of its own without asking."""
    d = deploy(bed, HA[:3])
    without_downloaders(bed.hosts["server-1"])
    with pytest.raises(CommandFailed) as failed:
        d.up(program(HA[:3], k3s={"airgap": airgap(tmp_path, bed)}))
    assert failed.value.name == "k3s-server-1-install"
    assert "neither curl nor wget" in failed.value.result.stderr
    assert bed.nodes() == {} and bed.etcd_members() == {}, "no cluster was bootstrapped"
    assert not bed.hosts["server-1"].exists("/etc/rancher/k3s/config.yaml")


def test_a_new_single_server_is_a_new_cluster_and_up_stops_until_refresh(bed):
    # docs/k3s.md "A new cluster behind the same stack", with an engine that does not re-create what is in
    # state (this bed's engine; Pulumi CLIs without pulumi/pulumi#23818).
    edge = [node("edge-1", "10.9.0.41")]
    d = deploy(bed, edge)
    d.up(program(edge))
    assert ("k3s-identity-marker", "create") in d.ran() and ("k3s-identity-check", "create") in d.ran()
    old_cluster = bed.nodes()["edge-1"]["cluster"]
    bed.remove_host("edge-1")  # the machine died, and its cluster (the only server's datastore) with it
    (bed.cluster / "nodes" / "edge-1").unlink()
    for name in [n for n in d.state if n.startswith("k3s-edge-1-")]:
        d.forget(name)
    new = [node("edge-1", "10.9.0.42")]
    d.hosts[new[0]["host"]] = bed.host("edge-1b", new[0]["host"])
    for _ in range(2):  # fails the same way until the state is refreshed
        with pytest.raises(CommandFailed) as failed:
            d.up(program(new))
        assert failed.value.name == "k3s-identity-check"
        message = " ".join(failed.value.result.stderr.split())
        assert "https://10.9.0.42:6443 is a new, empty cluster" in message
        assert "run `pulumi refresh`" in message and "then `pulumi up`" in message
    assert bed.nodes()["edge-1"]["cluster"] != old_cluster
    d.forget("k3s-identity-marker")  # what `pulumi refresh` drops: the new cluster does not have it
    d.up(program(new))
    assert d.ran()[-2:] == [("k3s-identity-marker", "create"), ("k3s-identity-check", "update")]


def test_replacing_a_reachable_first_server_drains_it_first(bed):
    d = deploy(bed, HA[:3])
    d.up(program(HA[:3]))
    new_first = node("server-1", "10.9.0.14")
    d.hosts[new_first["host"]] = bed.host("server-1-new", new_first["host"])
    d.up(program([new_first, *HA[1:3]]))
    order = [(s.name, s.op, s.host) for s in d.steps]
    leave = order.index(("k3s-server-1-member", "delete", "server-2"))
    uninstall = order.index(("k3s-server-1-install", "delete", "server-1"))
    install = order.index(("k3s-server-1-install", "create", "server-1-new"))
    assert leave < uninstall < install
    assert len(set(bed.etcd_members().values())) == 1 and bed.nodes()["server-1"]["address"] == "10.9.0.14"


MIRROR = {"registries": {"mirrors": {"docker.io": {"endpoint": ["https://mirror.lan"]}}}}


def unit(host, name):
    return host.read(f"/run/k3sbed/units/{name}").strip() if host.exists(f"/run/k3sbed/units/{name}") else "inactive"


def test_swapping_roles_uninstalls_the_old_role_before_the_new_one_starts(bed):
    """An agent promoted to a server: its uninstall lives on its teardown command, which the engine deletes
    only at the end of `up`; K3s's k3s-agent-uninstall.sh would then stop every k3s* unit, the new server's
    too. The install of the new role removes the old role first and keeps registries.yaml."""
    before = [node("s-1", "10.9.7.1"), node("s-2", "10.9.7.2"), node("n-3", "10.9.7.3"),
              node("n-4", "10.9.7.4", "agent")]
    after = [*before[:2], {**before[2], "role": "agent"}, {**before[3], "role": "server"}]
    d = deploy(bed, before)
    d.up(program(before, k3s=MIRROR))
    steps = d.up(program(after, k3s=MIRROR))
    promoted = bed.hosts["n-4"]
    nodes = bed.nodes()
    assert (nodes["n-4"]["role"], nodes["n-4"]["ready"]) == ("server", "true")
    assert (nodes["n-3"]["role"], nodes["n-3"]["ready"]) == ("agent", "true")
    assert set(bed.etcd_members()) == {"s-1", "s-2", "n-4"}
    assert unit(promoted, "k3s") == "active", "the old agent's uninstall stopped the new server"
    assert not promoted.exists("/etc/systemd/system/k3s-agent.service")
    assert not promoted.exists("/usr/local/bin/k3s-agent-uninstall.sh")
    assert "mirror.lan" in promoted.read("/etc/rancher/k3s/registries.yaml")
    install = next(s for s in steps if s.name == "k3s-n-4-install")
    assert "uninstalling the K3s agent first" in install.result.stderr
    teardown = next(s for s in steps if (s.name, s.op) == ("k3s-n-4-teardown", "delete"))
    assert "nothing to uninstall" in teardown.result.stderr
    # The other direction, as it runs when the server's own uninstall has not run first.
    reg = program(before, k3s=MIRROR).get("k3s-n-4-install")
    result = promoted.run(reg.inputs["create"], stdin=reg.inputs["stdin"])
    assert result.ok, result.stderr
    assert "uninstalling the K3s server first" in result.stderr
    assert unit(promoted, "k3s") == "inactive" and unit(promoted, "k3s-agent") == "active"
    assert not promoted.exists("/usr/local/bin/k3s-uninstall.sh")
    assert (bed.nodes()["n-4"]["role"], bed.nodes()["n-4"]["ready"]) == ("agent", "true")
    assert "mirror.lan" in promoted.read("/etc/rancher/k3s/registries.yaml")
    assert promoted.root("stat -c %a /etc/rancher/k3s/registries.yaml").stdout.strip() == "600"


def test_an_updated_agent_is_done_only_once_its_node_is_ready_at_the_new_version(bed):
    """The cluster readiness command does not run again on an update: the agent's install itself waits."""
    nodes = [HA[0], HA[3]]
    d = deploy(bed, nodes, wait=SHORT_WAIT)
    d.up(program(nodes))
    bed.not_ready("agent-1")  # after its restart, the agent's service runs but its Node stays NotReady
    with pytest.raises(CommandFailed) as failed:
        d.up(program(nodes, k3s={"version": NEXT_VERSION}))
    assert failed.value.name == "k3s-agent-1-install"
    err = failed.value.result.stderr
    assert f"timed out after {SHORT_WAIT}s waiting for node agent-1 to be Ready and run {NEXT_VERSION}" in err
    assert "Check: kubectl describe node agent-1" in err
    bed.not_ready("agent-1", on=False)
    d.up(program(nodes, k3s={"version": NEXT_VERSION}))  # the failed update runs again
    assert (bed.nodes()["agent-1"]["ready"], bed.nodes()["agent-1"]["version"]) == ("true", NEXT_VERSION)


def test_leaving_waits_for_an_api_that_does_not_answer_and_never_skips_the_drain(bed):
    nodes = [HA[0], HA[3]]
    d = deploy(bed, nodes, wait=SHORT_WAIT)
    d.up(program(nodes))
    server = bed.hosts["server-1"]
    leave = d.tweak("k3s-agent-1-member", program(nodes).get("k3s-agent-1-member").inputs["delete"])
    server.root("systemctl stop k3s")  # the API on the server that removes agent-1 does not answer
    result = server.run(leave)
    assert result.exit_status == 1, "an unanswered API is not a node that left"
    assert f"timed out after {SHORT_WAIT}s waiting for the K3s API on server-1 to answer whether node agent-1" in result.stderr
    assert "Check: journalctl -u k3s -n 100 on server-1" in result.stderr
    assert "agent-1" in bed.nodes() and not any(" drain " in c for c in bed.calls("server-1"))
    server.root("systemctl start k3s")
    result = server.run(leave)
    assert result.ok and "drained and deleted" in result.stderr and "agent-1" not in bed.nodes()
    # a node that really is gone: nothing to drain, and that is success
    result = server.run(leave)
    assert result.ok and "node agent-1 is not in the cluster" in result.stderr


def test_destroy_twice(bed):
    nodes = [HA[0], HA[3]]
    d = deploy(bed, nodes)
    run = program(nodes)
    d.up(run)
    bed.hosts["agent-1"].root("mkdir -p /var/lib/longhorn/replicas")  # volume data Longhorn left
    steps = d.destroy()
    unprepare = next(s for s in steps if s.name == "k3s-agent-1-prepare")
    assert "kept /var/lib/longhorn (Longhorn volume data" in unprepare.result.stderr
    assert bed.hosts["agent-1"].exists("/var/lib/longhorn/replicas"), "user data is kept"
    assert {(s.name, s.op) for s in steps} >= {("k3s-agent-1-teardown", "delete"), ("k3s-server-1-install", "delete")}
    assert not any(s.name.endswith("-member") for s in steps), "a whole-stack destroy drains nothing"
    for host in bed.hosts.values():
        assert not host.exists("/usr/local/bin/k3s") and not host.exists("/etc/rancher/k3s")
        assert not host.exists(k3s_plan.SYSCTL_FILE)
    # an interrupted destroy is run again: every delete tolerates what is already gone
    d.state = {r.name: r for r in Deployment._managed(run)}
    again = d.destroy()
    assert again and all(s.result.ok for s in again)
    assert any("nothing to uninstall" in s.result.stderr for s in again)


def raspberry_pi_ubuntu(host):
    """Make the sandbox look like Ubuntu on a Raspberry Pi without the vxlan module (linux-modules-extra-raspi)."""
    done = host.root(
        "mount -t tmpfs tmpfs /sys/firmware && mkdir -p /sys/firmware/devicetree/base"
        " && printf 'Raspberry Pi 4 Model B Rev 1.4\\000' > /sys/firmware/devicetree/base/model"
        " && mount -t tmpfs tmpfs /sys/module"
        # /etc/os-release is a symlink into /usr/lib (not overlaid): replace the link, never write through it
        " && rm -f /etc/os-release && printf 'ID=ubuntu\\nVERSION_ID=\"24.04\"\\n' > /etc/os-release"
        " && printf '#!/bin/sh\\nexit 1\\n' > /usr/local/bin/modinfo && chmod 755 /usr/local/bin/modinfo"
    )
    assert done.returncode == 0, done.stderr


def test_preflight_on_raspberry_pi_ubuntu_needs_the_vxlan_module(bed):
    pi = node("pi-1", "10.9.2.1")
    host = bed.host("pi-1", pi["host"])
    raspberry_pi_ubuntu(host)
    reg = program([pi]).get("k3s-pi-1-preflight")
    result = host.run(reg.inputs["create"])
    report = k3s_plan.parse_preflight_report(result.stdout)
    assert result.exit_status == 1 and report["vxlan"][0] == "fail"
    assert "sudo apt install linux-modules-extra-raspi" in report["vxlan"][1]
    # another flannel backend does not need vxlan
    reg = program([{**pi, "extraConfig": {"flannel-backend": "wireguard-native"}}]).get("k3s-pi-1-preflight")
    report = k3s_plan.parse_preflight_report(host.run(reg.inputs["create"]).stdout)
    assert report["vxlan"][0] == "skip"


def test_host_packages_wait_for_the_apt_lock_of_a_fresh_vm(bed):
    from components.k3s import scripts
    from stacks.settings import parse_settings
    from tests.harness import stack_raw

    host = bed.host("vm-1", "10.9.3.1")
    s = parse_settings(stack_raw("edge"), "edge")
    text = scripts.render("prepare.sh", k3s_plan.prepare_params(s, s.nodes[0], packages=["open-iscsi"]))
    assert host.run(scripts.as_remote_command(text)).ok
    apt = [c for c in bed.calls("vm-1") if c.startswith("apt-get")]
    assert len(apt) == 2 and all("DPkg::Lock::Timeout=600" in c for c in apt), apt
