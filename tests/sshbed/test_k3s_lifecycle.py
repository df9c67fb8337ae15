"""The K3s layer's node lifecycle over the SSH bed: install, change, upgrade, air gap, destroy. The
program's own command texts (recorded under the mocks), exec'd over real SSH as a non-root sudo user,
K3s's real install.sh against simulated K3s (tests/sshbed/lifecycle.py has the shared parts)."""

from __future__ import annotations

import threading
import time

import pytest

from components.k3s import k3s_plan
from stacks import versions
from tests.sshbed.engine import CommandFailed, Deployment
from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401
from tests.sshbed.lifecycle import (HA, NEXT_VERSION, SHORT_WAIT, airgap, bed_calls, deploy, node, program,
                                    restarts)


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
