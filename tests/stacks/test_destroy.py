"""A clean `pulumi destroy`: the options that decide it, asserted on every resource of every stack.

Pulumi destroys in reverse dependency order without running the program, so what is asserted here is
what the engine will use: Kubernetes objects depend on the cluster's readiness wait (deleted before any
node), are `deletedWith` the cluster identity (no API calls when the cluster goes with the stack, so a
destroy after the hosts are gone completes), commands that replace an install uninstall first, every agent's uninstall
waits for every server's (agents go first), and the prepare step's delete removes every file it wrote
(executed here with a recording `sudo`, nothing touches this machine).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from tests import harness
from tests.stackdiff import K8S_PROVIDER_TYPE, kubernetes_resources

# Commands whose create only reads or waits: they need no delete.
READ_ONLY_SCRIPTS = {"preflight.sh", "wait-ready.sh", "read-kubeconfig.sh", "joined.sh", "wait-gpu.sh", "kubeflow-capacity.sh",
                     "identity-check.sh",
                     # leaves nothing on the host (its temp dir goes on exit) and deletes its run and pods itself
                     "smoke.sh"}
# Commands undone by another command on the same node (checked by the uninstall tests below): an agent's
# install has no delete of its own, its uninstall sits on a command that waits for every server.
# member.sh notes a Node UID under the runner's K3s data dir (k3s_plan.MEMBERS_DIR), which its uninstall removes.
UNDONE_BY_UNINSTALL = {"install.sh", "member.sh"}


def commands(run: harness.Run) -> list[harness.Registration]:
    return [r for r in run.registrations if r.type in ("command:remote:Command", "command:local:Command")]


def script_name(text: str | None) -> str | None:
    m = re.search(r"# kubeflow-k3s: (\S+)", text or "")
    return m.group(1) if m else None


def param(text: str, key: str) -> str | None:
    m = re.search(rf"^{key}=(\S+)$", text, re.M)
    return m.group(1).strip("'") if m else None


def uninstallers(run: harness.Run) -> dict[str, harness.Registration]:
    """{node name: the command whose delete uninstalls K3s from it}."""
    out = {}
    for r in commands(run):
        if script_name(r.inputs.get("delete")) == "uninstall.sh":
            node = param(r.inputs["delete"], "NODE_NAME")
            assert node not in out, f"two commands uninstall K3s from {node}: {out[node].name}, {r.name}"
            out[node] = r
    return out


def waits_for(run: harness.Run, a: harness.Registration, b: harness.Registration) -> bool:
    return run.waits_for(a, b)


def first_server(run: harness.Run) -> str:
    return next(n for n, v in run.exports["nodes"].items() if v["role"] == "server")


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_node_is_uninstalled_with_k3s_own_script(runs, stack):
    run = runs[stack]
    found = uninstallers(run)
    assert set(found) == set(run.exports["nodes"])
    for node, reg in found.items():
        role = run.exports["nodes"][node]["role"]
        assert param(reg.inputs["delete"], "ROLE") == role
        assert ("k3s-uninstall.sh" if role == "server" else "k3s-agent-uninstall.sh") in reg.inputs["delete"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_agents_are_uninstalled_before_any_server_and_the_first_server_last(runs, stack):
    run = runs[stack]
    found = uninstallers(run)
    roles = {n: v["role"] for n, v in run.exports["nodes"].items()}
    servers = [found[n] for n in roles if roles[n] == "server"]
    for node, reg in found.items():
        if roles[node] == "agent":
            for server in servers:
                assert waits_for(run, reg, server), f"{reg.name} does not wait for {server.name}: destroy could uninstall the server first"
    first = found[first_server(run)]
    for server in servers:
        if server is not first:
            assert waits_for(run, server, first)


@pytest.mark.parametrize("stack", harness.STACKS)
def test_replacing_a_command_runs_the_old_delete_first(runs, stack):
    # remote/local Command replace on `triggers`; Pulumi's default is create-before-delete, which would run
    # the old uninstall after the new install on the same host.
    run = runs[stack]
    for r in commands(run):
        if r.inputs.get("delete") and r.inputs.get("triggers"):
            assert r.delete_before_replace, f"{r.name} has a delete and replace triggers but not deleteBeforeReplace"
        if r.name.endswith("-install"):
            assert r.delete_before_replace, r.name


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_command_that_changes_a_host_has_a_delete(runs, stack):
    run = runs[stack]
    for r in commands(run):
        name = script_name(r.inputs.get("create"))
        if name in UNDONE_BY_UNINSTALL:
            node = param(r.inputs["create"], "NODE_NAME")
            assert node in uninstallers(run), f"{r.name} installs K3s on {node} but no command uninstalls it"
        elif name not in READ_ONLY_SCRIPTS:
            assert r.inputs.get("delete"), f"{r.name} ({name}) changes its host but has no delete: destroy would leave it"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_kubernetes_provider_survives_a_cluster_that_is_gone(runs, stack):
    (provider,) = runs[stack].by_type(K8S_PROVIDER_TYPE)
    assert provider.inputs["deleteUnreachable"] == "true"
    assert provider.inputs["clusterIdentifier"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_kubernetes_resource_goes_with_the_cluster(runs, stack):
    run = runs[stack]
    resources = kubernetes_resources(run)
    if not resources:
        pytest.skip("no Kubernetes resources in this stack yet (layers of issues 3 and 4)")
    (provider,) = run.by_type(K8S_PROVIDER_TYPE)
    # The cluster identity is deleted by every whole-stack destroy (it is in the cluster component, deletedWith
    # nothing), so the engine skips each object's delete (step.go isDeletedWith). It is not the first server's
    # install: docs/k3s.md "A new cluster behind the same stack".
    identity = run.get("k3s-cluster-identity", "random:index/randomId:RandomId")
    assert identity.deleted_with == "" and run.by_urn(identity.parent).type == "kubeflow-k3s:k3s:Cluster"
    ready = run.get("k3s-nodes-ready")
    problems = []
    for r in resources:
        if not r.provider.startswith(provider.urn + "::"):
            problems.append(f"{r.type} {r.name}: provider {r.provider or '(default)'}")
        if r.deleted_with != identity.urn:
            problems.append(f"{r.type} {r.name}: deletedWith {r.deleted_with or '(none)'} instead of {identity.name}")
        if not waits_for(run, r, ready):
            problems.append(f"{r.type} {r.name}: does not wait for {ready.name}, so destroy may remove nodes first")
    assert not problems, "\n".join(problems)


# The prepare step, executed -----------------------------------------------------------------------

SUDO = r"""#!/bin/sh
# Records what would run as root. `tee FILE` writes into the sandbox instead of FILE.
printf '%s' "$*" >> "$SANDBOX/log"; printf '\n' >> "$SANDBOX/log"
[ "$1" = -n ] && shift
case "$1" in
  tee) shift; mkdir -p "$SANDBOX/root$(dirname "$1")"; cat > "$SANDBOX/root$1" ;;
  *) cat >/dev/null 2>&1 || true ;;
esac
exit 0
"""
ID = "#!/bin/sh\n[ \"$1\" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id \"$@\"\n"


def run_as_user(tmp_path, text: str) -> list[list[str]]:
    """Run command text with `sudo` and `id` replaced; return the commands it ran as root."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    # apt-get is only looked up (`command -v`); it runs through sudo, which records it.
    for name, body in (("sudo", SUDO), ("id", ID), ("apt-get", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(stat.S_IRWXU)
    log = tmp_path / "log"
    log.write_text("")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SANDBOX": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(["sh", "-c", text], env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return [line.split() for line in log.read_text().splitlines()]


WRITERS = {"tee": -1, "install": -1, "cp": -1, "mv": -1}


def written_files(calls: list[list[str]]) -> set[str]:
    out = set()
    for args in calls:
        args = [a for a in args if a != "-n"]
        if args and args[0] in WRITERS and args[-1].startswith("/"):
            out.add(args[-1])
    return out


def removed_files(calls: list[list[str]]) -> set[str]:
    return {a for args in calls if args and [x for x in args if x != "-n"][0] == "rm" for a in args if a.startswith("/")}



@pytest.mark.parametrize("stack", harness.STACKS)
def test_prepare_delete_removes_every_file_prepare_wrote(runs, stack, tmp_path):
    run = runs[stack]
    prepares = [r for r in commands(run) if script_name(r.inputs.get("create")) == "prepare.sh"]
    assert len(prepares) == len(run.exports["nodes"])
    for r in prepares:
        box = tmp_path / r.name
        box.mkdir()
        written = written_files(run_as_user(box, r.inputs["create"]))
        assert written, f"{r.name} wrote no file as root?"
        removed = removed_files(run_as_user(box, r.inputs["delete"]))
        assert written <= removed, f"{r.name}: its delete leaves {sorted(written - removed)} on the host"


@pytest.mark.parametrize("stack", ["dev", "edge"])
def test_destroy_removes_the_air_gap_staging_files(stack, tmp_path):
    from tests.components.k3s.test_k3s_cluster import airgap_files

    files = tmp_path / "airgap"
    files.mkdir()
    run = harness.run_stack(stack, overrides={"k3s": {"airgap": airgap_files(files)}, "kubeflow": {"manifestsPath": "./manifests"}})
    staged = {r.inputs["remotePath"] for r in run.by_type("command:remote:CopyToRemote")}
    for r in commands(run):
        if "-stage-" in r.name:
            staged |= set(re.findall(r"(/var/lib/kubeflow-k3s/staged/\S+?)'?$", r.inputs["create"].strip()))
    assert staged, "no staged files found"
    removed: set[str] = set()
    for i, r in enumerate(commands(run)):
        if r.inputs.get("delete"):
            box = tmp_path / str(i)
            box.mkdir()
            removed |= removed_files(run_as_user(box, r.inputs["delete"]))
    left = {p for p in staged if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in removed)}
    assert not left, f"destroy leaves the staged files {sorted(left)} on the host"
