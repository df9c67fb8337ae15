"""Images ahead of need over the SSH bed (components/k3s/node_images.py): the program's own command texts,
exec'd over real SSH as a non-root sudo user against simulated K3s hosts, in the engine's order."""

from __future__ import annotations

import pytest

from tests.sshbed.engine import CommandFailed, Deployment
from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401
from tests.sshbed.test_k3s_lifecycle import HA, bed_calls, deploy, node, program


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


def edge_settings(nodes, k3s=None, **overrides):
    """The settings `program()` evaluates (same config), for the plan's expectations."""
    from tests.components.k3s.test_node_images import settings

    config = {"nodes": nodes, "preflight": {"minMemoryMiB": 256, "minDiskGiB": 1},
              "k3s": {"installTimeoutSeconds": 60, **(k3s or {})}, "kubeflow": {"mode": "none"}, **overrides}
    return settings("edge", **config)


def test_the_pre_pull_list_lands_in_the_images_directory_only_once_k3s_runs(bed):
    from components.k3s import node_images_plan as nip

    nodes = [node("edge-1", "10.9.5.1")]
    images = {"images": {"prePull": True}}
    host = bed.host("edge-1", "10.9.5.1")
    target = f"{nip.IMAGES_DIR}/{nip.LIST_FILE}"
    # K3s never becomes ready: the install fails at its deadline and the list is never written.
    bed.hang("edge-1")
    d = Deployment({"10.9.5.1": host}, tweak=lambda name, text: text.replace("\nWAIT_SECONDS=60\n", "\nWAIT_SECONDS=3\n"))
    with pytest.raises(CommandFailed) as failed:
        d.up(program(nodes, **images))
    assert failed.value.name == "k3s-edge-1-install"
    assert not host.exists(target) and not any(s.name.endswith("-prepull") for s in d.steps)
    # Once K3s can start, the next run installs it and then writes the list.
    bed.hang("edge-1", on=False)
    d.up(program(nodes, **images))
    s = edge_settings(nodes, **images)
    assert host.read(target) == nip.prepull_list(s, s.nodes[0]) and host.read(target).count("\n") > 5
    assert host.root(f"stat -c %a {target}").stdout.strip() == "644"
    assert host.root(f"ls {nip.IMAGES_DIR}").stdout.split() == [nip.LIST_FILE]  # no temporary file left
    written = float(host.root(f"stat -c %.9Y {target}").stdout.strip())
    started = (bed.cluster / "nodes" / "edge-1").stat().st_mtime  # the simulated K3s's start (ready=true)
    assert written >= started, "the list must land after K3s runs"
    names = [x.name for x in d.steps]
    assert names.index("k3s-edge-1-prepull") > max(i for i, n in enumerate(names) if n == "k3s-edge-1-install")
    # An unchanged list is left alone; destroy removes it.
    d.up(program(nodes, **images))
    assert float(host.root(f"stat -c %.9Y {target}").stdout.strip()) == written
    d.destroy()
    assert not host.exists(target)


def test_an_air_gapped_bundle_is_imported_once_k3s_runs_and_before_kfp(bed, tmp_path):
    from components.k3s import node_images_plan as nip
    from tests.sshbed.test_k3s_lifecycle import airgap

    nodes = [node("edge-1", "10.9.6.1")]
    bundle = tmp_path / "platform"
    bundle.mkdir()
    for i in range(3):
        (bundle / f"image-{i}.tar").write_bytes(b"\x00archive %d" % i * 64)
    files = {**airgap(tmp_path, bed), "platformImages": str(bundle)}
    del files["registries"]
    # Kubeflow Pipelines on, so the graph holds what must wait for the import (the bed runs the K3s layer).
    run = program(nodes, k3s={"airgap": files}, kubeflow={"mode": "pipelines", "manifestsPath": "./manifests"})
    imp = run.get("k3s-edge-1-platform-images")
    kfp = run.by_type("kubernetes:kustomize/v2:Directory")
    assert kfp and all(run.waits_for(r, imp) and run.waits_for(r, run.get("k3s-nodes-ready")) for r in kfp)
    d = deploy(bed, nodes)
    d.up(run)
    host = bed.hosts["edge-1"]
    # every archive reached the node over SFTP (into a folder the login user may write) and was imported
    assert sorted(host.root(f"ls {nip.BUNDLE_DIR}").stdout.split()) == sorted(p.name for p in bundle.iterdir())
    assert sorted(host.read("/var/lib/rancher/k3s/agent/containerd/imported").split()) == sorted(
        p.name for p in bundle.iterdir())
    calls = bed.calls("edge-1")
    start = calls.index("systemctl restart --no-block k3s")
    imports = [i for i, c in enumerate(calls) if c.startswith("k3s ctr -n k8s.io images import ")]
    assert len(imports) == 3 and min(imports) > start
    names = [x.name for x in d.steps]
    assert names.index("k3s-nodes-ready") > names.index("k3s-edge-1-platform-images")
    # nothing left to pull on a node whose images came in the bundle
    assert not host.exists(f"{nip.IMAGES_DIR}/{nip.LIST_FILE}")
    # the same bundle again: no import runs; destroy removes the bundle folder
    bed.clear_calls()
    d.up(program(nodes, k3s={"airgap": files}, kubeflow={"mode": "pipelines", "manifestsPath": "./manifests"}))
    assert not [c for c in bed.calls("edge-1") if " images import " in c]
    d.destroy()
    assert not host.exists(nip.BUNDLE_DIR)
