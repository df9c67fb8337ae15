"""Images ahead of need over the SSH bed (components/node_images.py): the program's own command texts,
exec'd over real SSH as a non-root sudo user against simulated K3s hosts, in the engine's order."""

from __future__ import annotations

from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401
from tests.sshbed.test_k3s_lifecycle import HA, bed_calls, deploy, program


def mirrors(endpoint):
    return {"registries": {"mirrors": {"docker.io": {"endpoint": [endpoint]}}}}


def test_a_registries_change_restarts_one_node_at_a_time_without_blocking(bed):
    nodes = HA
    d = deploy(bed, nodes)
    d.up(program(nodes, k3s=mirrors("https://mirror-a.lan")))
    for n in nodes:
        assert "mirror-a.lan" in bed.hosts[n["name"]].read("/etc/rancher/k3s/registries.yaml")
    bed.clear_calls()
    steps = d.up(program(nodes, k3s=mirrors("https://mirror-b.lan")))
    for n in nodes:
        assert "mirror-b.lan" in bed.hosts[n["name"]].read("/etc/rancher/k3s/registries.yaml")
    # the registries commands write the file and restart nothing; each install restarts its node
    assert {s.name.rsplit("-", 1)[-1] for s in steps} >= {"registries", "install"}
    restarts = [(h, c) for h, c in bed_calls(bed) if c.startswith("systemctl restart")]
    # the installs' order: servers one at a time, agents once the first server is back (never all at once)
    hosts = [h for h, _ in restarts]
    assert sorted(hosts) == ["agent-1", "server-1", "server-2", "server-3"], restarts
    assert [h for h in hosts if h.startswith("server")] == ["server-1", "server-2", "server-3"]
    assert hosts[0] == "server-1"
    assert all("--no-block" in c for _, c in restarts), "a blocking restart of a Type=notify unit has no bound"
    registries = [s for s in steps if s.name.endswith("-registries")]
    assert len(registries) == 4 and all("install step" in s.result.stderr for s in registries)
    assert all(bed.nodes()[n["name"]]["ready"] == "true" for n in nodes)
    # the same registries again: nothing runs, nothing restarts
    bed.clear_calls()
    assert d.up(program(nodes, k3s=mirrors("https://mirror-b.lan"))) == []
    assert not [c for _, c in bed_calls(bed) if c.startswith("systemctl restart")]
