"""The K3s layer's cluster membership over the SSH bed: nodes that leave, are re-hosted or change role,
the first server replaced, a new cluster behind the stack (tests/sshbed/lifecycle.py has the shared parts)."""

from __future__ import annotations

import pytest

from tests.sshbed.engine import CommandFailed
from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401
from tests.sshbed.lifecycle import HA, SHORT_WAIT, airgap, bed_calls, deploy, node, program, restarts


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
