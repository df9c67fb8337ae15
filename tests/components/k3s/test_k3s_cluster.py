"""The K3s layer as the engine sees it: the whole __main__ per stack under mocks."""

from __future__ import annotations

import pytest
import yaml

from tests import harness

COMMAND_TYPES = ("command:remote:Command", "command:local:Command")


def commands(run):
    return [r for r in run.registrations if r.type in COMMAND_TYPES]


def install(run, node):
    return run.get(f"k3s-{node}-install")


EXPECTED_NODES = {
    "dev": {"dev": "server"},
    "edge": {"edge-1": "server"},
    "cloud": {"server-1": "server", "server-2": "server", "server-3": "server", "agent-1": "agent", "gpu-1": "agent"},
}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_each_stack_has_its_nodes_and_roles(runs, stack):
    run = runs[stack]
    nodes = {r.name.removeprefix("k3s-"): r for r in run.by_type("kubeflow-k3s:k3s:Node")}
    assert set(nodes) == set(EXPECTED_NODES[stack])
    for name, role in EXPECTED_NODES[stack].items():
        config = yaml.safe_load(install(run, name).inputs["stdin"])
        assert config["node-name"] == name
        assert ("tls-san" in config) == (role == "server")
        assert f"\nROLE={role}\n" in install(run, name).inputs["create"]


def test_dev_runs_locally_and_ssh_stacks_over_ssh(runs):
    assert {r.type for r in commands(runs["dev"])} == {"command:local:Command"}
    for stack in ("edge", "cloud"):
        assert {r.type for r in commands(runs[stack])} == {"command:remote:Command"}


def test_join_order_in_the_graph(runs):
    run = runs["cloud"]
    assert run.depends_on("k3s-server-2-install", "k3s-server-1-install")
    assert run.depends_on("k3s-server-3-install", "k3s-server-2-install")
    for agent in ("agent-1", "gpu-1"):
        assert run.depends_on(f"k3s-{agent}-install", "k3s-server-1-install")
        # agents join in parallel once the first server is up: they don't wait for the other servers
        assert not run.depends_on(f"k3s-{agent}-install", "k3s-server-2-install")
        assert not run.depends_on(f"k3s-{agent}-install", "k3s-server-3-install")
    assert not run.depends_on("k3s-agent-1-install", "k3s-gpu-1-install")
    assert not run.depends_on("k3s-gpu-1-install", "k3s-agent-1-install")


def test_cluster_init_only_on_the_first_ha_server(runs):
    run = runs["cloud"]
    configs = {n: yaml.safe_load(install(run, n).inputs["stdin"]) for n in EXPECTED_NODES["cloud"]}
    assert [n for n, c in configs.items() if c.get("cluster-init")] == ["server-1"]
    assert {c["server"] for n, c in configs.items() if n != "server-1"} == {"https://192.0.2.11:6443"}
    assert len({c["token"] for c in configs.values()}) == 1


@pytest.mark.parametrize("stack", harness.STACKS)
def test_each_node_runs_preflight_then_prepare_then_install(runs, stack):
    run = runs[stack]
    for node in EXPECTED_NODES[stack]:
        assert run.depends_on(f"k3s-{node}-prepare", f"k3s-{node}-preflight")
        assert run.depends_on(f"k3s-{node}-install", f"k3s-{node}-prepare")
        for step in ("preflight", "prepare", "install"):
            assert run.ancestors(f"k3s-{node}-{step}")[:2] == [f"k3s-{node}", "k3s"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_readiness_and_kubeconfig(runs, stack):
    run = runs[stack]
    for node in EXPECTED_NODES[stack]:
        assert run.depends_on("k3s-nodes-ready", f"k3s-{node}-install")
    read = run.get("k3s-kubeconfig")
    assert read.inputs["logging"] == "none"
    assert {"stdout", "stderr"} <= set(read.additional_secret_outputs)
    assert run.depends_on("k3s-kubeconfig", f"k3s-{next(iter(EXPECTED_NODES[stack]))}-install")


@pytest.mark.parametrize("stack", harness.STACKS)
def test_provider_from_the_rewritten_kubeconfig(runs, stack):
    run = runs[stack]
    provider = run.get("k3s-k8s", "pulumi:providers:kubernetes")
    assert harness.is_secret(provider.raw_inputs["kubeconfig"])
    kubeconfig = yaml.safe_load(provider.inputs["kubeconfig"])
    endpoint = {"dev": "127.0.0.1", "edge": "192.0.2.40", "cloud": "k8s.example.com"}[stack]
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{endpoint}:6443"
    assert kubeconfig["current-context"] == f"kubeflow-k3s-{stack}"
    assert provider.inputs["clusterIdentifier"] == f"kubeflow-k3s-{stack}"
    assert provider.inputs["deleteUnreachable"] == "true"
    assert run.depends_on("k3s-k8s", "k3s-kubeconfig")
    assert run.exports["kubeconfig"] == provider.inputs["kubeconfig"] and run.secret_exports["kubeconfig"]


def uninstaller(run, node, role):
    """The command whose delete uninstalls K3s from `node`."""
    return run.get(f"k3s-{node}-install" if role == "server" else f"k3s-{node}-teardown")


@pytest.mark.parametrize("stack", harness.STACKS)
def test_install_lifecycle_options(runs, stack):
    run = runs[stack]
    for node, role in EXPECTED_NODES[stack].items():
        reg = install(run, node)
        assert reg.delete_before_replace, "the old uninstall must run before the new install"
        identity = [role, "local" if stack == "dev" else reg.inputs["connection"]["host"]]
        assert reg.inputs["triggers"] == identity
        # create and update are one idempotent text: what restarts K3s is decided on the node (a digest)
        assert reg.inputs["create"] == reg.inputs["update"] and "kubeflow-k3s: install.sh" in reg.inputs["update"]
        assert reg.custom_timeouts["create"] and reg.custom_timeouts["delete"]
        remover = uninstaller(run, node, role)
        assert f"\nROLE={role}\n" in remover.inputs["delete"] and "kubeflow-k3s: uninstall.sh" in remover.inputs["delete"]
        assert remover.delete_before_replace and remover.inputs["triggers"] == identity
        assert run.depends_on("k3s-nodes-ready", remover.name)
        if role == "agent":
            assert "delete" not in reg.inputs or not reg.inputs["delete"]


def test_destroy_uninstalls_agents_before_any_server(runs):
    # Pulumi deletes a resource only after everything that depends on it: each agent's uninstall waits
    # for every server, and the servers' uninstalls run in reverse join order.
    run = runs["cloud"]
    servers = [n for n, r in EXPECTED_NODES["cloud"].items() if r == "server"]
    for agent in (n for n, r in EXPECTED_NODES["cloud"].items() if r == "agent"):
        for server in servers:
            assert run.depends_on(f"k3s-{agent}-teardown", f"k3s-{server}-install")
    assert run.depends_on("k3s-server-3-install", "k3s-server-2-install")
    assert run.depends_on("k3s-server-2-install", "k3s-server-1-install")


def test_prepare_files_are_removed_on_destroy(runs):
    reg = runs["edge"].get("k3s-edge-1-prepare")
    assert "/etc/sysctl.d/90-kubeflow-k3s.conf" in reg.inputs["create"]
    assert "kubeflow-k3s: unprepare.sh" in reg.inputs["delete"]
    assert "SYSCTL_FILE=/etc/sysctl.d/90-kubeflow-k3s.conf" in reg.inputs["delete"]
    assert "MODULES_FILE=/etc/modules-load.d/kubeflow-k3s.conf" in reg.inputs["delete"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_token_and_config_travel_only_as_secrets(runs, stack):
    run = runs[stack]
    token = yaml.safe_load(install(run, next(iter(EXPECTED_NODES[stack]))).inputs["stdin"])["token"]
    assert token.startswith(harness.GENERATED_PREFIX)
    for reg in run.registrations:
        if reg.type in COMMAND_TYPES and "stdin" in reg.raw_inputs:
            assert harness.is_secret(reg.raw_inputs["stdin"]), reg.name
        for text in harness.strings_outside_secrets(reg.raw_inputs):
            assert token not in text, f"token in plain input of {reg.name}"
            assert "FAKE-SSH-KEY" not in text, f"SSH key in plain input of {reg.name}"
    for key, value in run.exports.items():
        if not run.secret_exports[key]:
            assert token not in str(value) and "client-key-data" not in str(value), key


def test_a_configured_token_is_used_instead_of_a_generated_one():
    run = harness.run_stack("edge", secrets={"sshPrivateKey": "k", "k3sToken": harness.FAKE_SECRETS["k3sToken"]})
    # (Kubeflow's generated credentials are RandomPasswords too; none of them belongs to K3s.)
    assert not [r for r in run.by_type("random:index/randomPassword:RandomPassword") if r.name.startswith("k3s")]
    config = yaml.safe_load(run.get("k3s-edge-1-install").inputs["stdin"])
    assert config["token"] == harness.FAKE_SECRETS["k3sToken"]
    for reg in run.registrations:
        assert not any(harness.FAKE_SECRETS["k3sToken"] in t for t in harness.strings_outside_secrets(reg.raw_inputs))


@pytest.mark.parametrize("stack", ["edge", "cloud"])
def test_ssh_connections(runs, stack):
    for reg in commands(runs[stack]):
        assert reg.inputs["addPreviousOutputInEnv"] is False  # would need sshd AcceptEnv
        assert "environment" not in reg.inputs
        conn = reg.inputs["connection"]
        assert conn["user"] == "ubuntu" and conn["dialErrorLimit"] == 20
        assert harness.is_secret(reg.raw_inputs["connection"])
        assert reg.inputs["create"].startswith("/bin/sh -c ")
    cloud_conn = runs["cloud"].get("k3s-server-2-install").inputs["connection"]
    assert cloud_conn["hostKey"].startswith("ssh-ed25519 ") and cloud_conn["proxy"]["host"] == "198.51.100.10"
    assert cloud_conn["proxy"]["hostKey"].startswith("ssh-ed25519 ")


def test_missing_ssh_key_fails_before_any_resource():
    from stacks.settings import ConfigError

    with pytest.raises(ConfigError) as err:
        harness.run_stack("edge", secrets={})
    assert "sshPrivateKey" in str(err.value)
    assert [r.type for r in err.value.recorded] == ["pulumi:pulumi:Stack"]


def test_invalid_stack_config_fails_before_any_resource():
    from stacks.settings import ConfigError

    with pytest.raises(ConfigError) as err:
        harness.run_stack("cloud", overrides={"k3s": {"version": "latest"}})
    assert "kubeflow-k3s:k3s.version" in str(err.value)
    assert [r.type for r in err.value.recorded] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_component_registers_outputs_and_parents_its_children(runs, stack):
    run = runs[stack]
    components = [r for r in run.registrations if not r.custom and r.type != "pulumi:pulumi:Stack" and not r.remote]
    assert components
    for comp in components:
        assert comp.urn in run.component_outputs, f"{comp.type} {comp.name} did not call register_outputs"
    stack_urn = run.by_type("pulumi:pulumi:Stack")[0].urn
    for reg in run.registrations:
        if reg.custom and not reg.type.startswith("pulumi:providers:"):
            assert reg.parent != stack_urn, f"{reg.type} {reg.name} is not inside a component"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_kubernetes_resource_uses_the_cluster_provider(runs, stack):
    run = runs[stack]
    provider = run.get("k3s-k8s", "pulumi:providers:kubernetes")
    for reg in run.registrations:
        if reg.type.startswith("kubernetes:"):
            assert reg.provider.startswith(provider.urn), f"{reg.type} {reg.name} uses {reg.provider!r}"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_two_runs_give_identical_inputs(stack):
    def snapshot(run):
        return sorted(
            (r.type, r.name, repr(r.inputs), r.parent, tuple(sorted(r.dependencies)), r.deleted_with)
            for r in run.registrations
        )

    assert snapshot(harness.run_stack(stack)) == snapshot(harness.run_stack(stack))


def test_warning_for_unpinned_host_key_reaches_the_log(caplog):
    harness.run_stack("edge")
    assert any("nodes[0].hostKey is not set" in r.getMessage() for r in caplog.records)
    caplog.clear()
    harness.run_stack("cloud")
    assert not any("hostKey is not set" in r.getMessage() for r in caplog.records)


def airgap_files(directory) -> dict[str, str]:
    """k3s.airgap with real (tiny) files: the program hashes them."""
    names = {"binary": "k3s", "images": "k3s-airgap-images-amd64.tar.zst", "installScript": "install.sh",
             "registries": "registries.yaml"}
    for key, name in names.items():
        (directory / name).write_text(f"{key}\n")
    return {key: str(directory / name) for key, name in names.items()}


def test_airgapped_edge_copies_files_and_installs_without_downloads(tmp_path):
    run = harness.run_stack("edge", overrides={"k3s": {"airgap": airgap_files(tmp_path)}, "kubeflow": {"manifestsPath": "./manifests"}})
    copies = {r.name: r for r in run.by_type("command:remote:CopyToRemote")}
    assert {c.inputs["remotePath"] for c in copies.values()} == {
        "/var/lib/kubeflow-k3s/staged/k3s",
        "/var/lib/kubeflow-k3s/staged/k3s-airgap-images-amd64.tar.zst",
        "/var/lib/kubeflow-k3s/staged/install.sh",
        "/var/lib/kubeflow-k3s/staged/registries.yaml",
    }
    inst = run.get("k3s-edge-1-install")
    for name in copies:
        assert run.depends_on("k3s-edge-1-install", name)
        assert run.depends_on(name, "k3s-edge-1-stage-dir"), "the folder exists before the SFTP put"
        assert run.ancestors(name)[0] == "k3s-edge-1"
    assert "\nINSTALL_URL=''\n" in harness.script(inst.inputs["create"])
    assert "\nNEED_CURL=true\n" in run.get("k3s-edge-1-preflight").inputs["create"]  # the smoke step's node
    config = yaml.safe_load(inst.inputs["stdin"])
    assert config["private-registry"] == "/etc/rancher/k3s/registries.yaml"


def test_online_install_fetches_the_pinned_installer(runs):
    create = runs["edge"].get("k3s-edge-1-install").inputs["create"]
    assert "raw.githubusercontent.com/k3s-io/k3s/v1.34" in create and "get.k3s.io" not in create
    assert not runs["edge"].by_type("command:remote:CopyToRemote")


def test_default_kubernetes_provider_is_disabled():
    project = yaml.safe_load((harness.ROOT / "Pulumi.yaml").read_text())
    assert project["config"]["pulumi:disable-default-providers"]["value"] == ["kubernetes"]
    assert project["runtime"]["options"]["virtualenv"] == "venv"


def test_config_errors_print_without_a_traceback():
    from pulumi.errors import RunError

    from stacks.settings import ConfigError

    assert issubclass(ConfigError, RunError)


def test_each_node_leaves_through_a_server_that_stays(runs):
    run = runs["cloud"]
    installs = {n: run.get(f"k3s-{n}-install") for n in EXPECTED_NODES["cloud"]}
    for name, role in EXPECTED_NODES["cloud"].items():
        member = run.get(f"k3s-{name}-member")
        runner = "server-2" if name == "server-1" else "server-1"
        assert member.inputs["connection"]["host"] == installs[runner].inputs["connection"]["host"]
        assert "kubeflow-k3s: leave.sh" in member.inputs["delete"] and f"\nMEMBER={name}\n" in member.inputs["delete"]
        # deleted before the node's uninstall and before its runner's; skipped only when the cluster goes
        assert run.waits_for(member, uninstaller(run, name, role)) and run.waits_for(member, installs[runner])
        assert member.deleted_with == run.get("k3s-lifetime").urn
        assert member.delete_before_replace and member.inputs["triggers"] == installs[name].inputs["triggers"]
        assert run.ancestors(member.name)[0] == f"k3s-{name}"
    # a cluster's only server has nothing to leave, but keeps the command: shrinking an HA cluster to it
    # updates the command (a new runner) instead of deleting it, which would drain the server that stays
    for stack in ("dev", "edge"):
        [member] = [r for r in runs[stack].registrations if r.name.endswith("-member")]
        assert member.inputs.get("delete") is None and "kubeflow-k3s: member.sh" in member.inputs["create"]
    lifetime = run.get("k3s-lifetime")
    assert run.ancestors(lifetime.name)[0] == "k3s" and not lifetime.deleted_with


@pytest.mark.parametrize("stack", harness.STACKS)
def test_labels_and_taints_are_applied_through_the_api_after_registration(runs, stack):
    run = runs[stack]
    for name in EXPECTED_NODES[stack]:
        patch = run.get(f"k3s-{name}-labels", "kubernetes:core/v1:NodePatch")
        config = yaml.safe_load(install(run, name).inputs["stdin"])
        assert patch.inputs["metadata"]["name"] == name
        assert patch.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
        # the same labels and taints as the first boot's K3s flags
        assert sorted(f"{k}={v}" for k, v in patch.inputs["metadata"].get("labels", {}).items()) == config.get("node-label", [])
        taints = [f"{t['key']}={t['value']}:{t['effect']}" if t.get("value") else f"{t['key']}:{t['effect']}"
                  for t in patch.inputs.get("spec", {}).get("taints", [])]
        assert taints == config.get("node-taint", [])
        assert run.depends_on(patch.name, "k3s-nodes-ready") and run.ancestors(patch.name)[0] == f"k3s-{name}"
    gpu = runs["cloud"].get("k3s-gpu-1-labels").inputs
    assert gpu["metadata"]["labels"]["accelerator"] == "nvidia-h100"
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in gpu["spec"]["taints"]


def test_a_changed_label_changes_only_the_node_patch_not_the_install():
    base = harness.run_stack("edge")
    changed = harness.run_stack("edge", overrides={"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server",
                                                              "labels": {"zone": "shelf-2"}}]})
    assert changed.get("k3s-edge-1-labels").inputs["metadata"]["labels"] == {"zone": "shelf-2"}
    # K3s's node-label in config.yaml changes too (for a re-registration); it is left out of the restart
    # digest (tests/sshbed: no restart), and the Node object itself is corrected by the patch.
    assert "zone=shelf-2" in changed.get("k3s-edge-1-install").inputs["stdin"]
    assert base.get("k3s-edge-1-install").inputs["create"] == changed.get("k3s-edge-1-install").inputs["create"]


def test_the_kubeconfig_is_read_again_when_the_first_server_changes(runs):
    read = runs["cloud"].get("k3s-kubeconfig")
    assert read.inputs["triggers"] == install(runs["cloud"], "server-1").inputs["triggers"]


# The cluster identity (docs/k3s.md "A new cluster behind the same stack") -----------------------------

IDENTITY_TYPE = "random:index/randomId:RandomId"


def rehosted(stack: str, host: str) -> dict:
    """Overrides that move the stack's first server to `host` (docs/k3s.md: a dead server is replaced so)."""
    from tests.stackdiff import stack_config

    nodes = [dict(n) for n in stack_config(stack)["nodes"]]
    nodes[0]["host"] = host
    if "hostKey" in nodes[0]:  # the new host's own key
        nodes[0]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithNewHostKey0000000000000000000"
    return {"nodes": nodes}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_the_cluster_identity_follows_the_ca_of_the_kubeconfig(runs, stack):
    from components.k3s.kubeconfig import ca_digest

    run = runs[stack]
    identity = run.get("k3s-cluster-identity", IDENTITY_TYPE)
    digest = ca_digest(harness.K3S_KUBECONFIG)
    assert identity.inputs["keepers"] == {"caSha256": digest}
    assert not harness.is_secret(identity.raw_inputs["keepers"]["caSha256"])  # a CA is public; previews show it
    assert run.depends_on(identity.name, "k3s-kubeconfig")
    assert run.ancestors(identity.name)[0] == "k3s"
    # Not deletedWith the first install: an engine that replaces deletedWith dependents (pulumi/pulumi#23818)
    # would then replace the identity, and with it every Kubernetes object, on any first-server re-host.
    assert identity.deleted_with == ""


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_kubernetes_object_is_deleted_with_the_identity_and_waits_for_its_check(runs, stack):
    from tests.stackdiff import kubernetes_resources

    run = runs[stack]
    identity = run.get("k3s-cluster-identity", IDENTITY_TYPE)
    check = run.get("k3s-identity-check")
    marker = run.get("k3s-identity-marker", "kubernetes:core/v1:ConfigMap")
    resources = kubernetes_resources(run)
    assert marker in resources and len(resources) > 1
    for r in resources:
        assert r.deleted_with == identity.urn, f"{r.type} {r.name}: deletedWith {r.deleted_with!r}"
        if r is not marker:
            assert run.waits_for(r, check), f"{r.type} {r.name} does not wait for the identity check"
    # what talks to the API from the first server after the check: the smoke step, the GPU waits
    for r in commands(run):
        if any(s in r.inputs["create"] for s in ("smoke.sh", "wait-gpu.sh", "gpu-runtimeclass.sh")):
            assert run.waits_for(r, check), r.name


@pytest.mark.parametrize("stack", harness.STACKS)
def test_the_identity_check_runs_on_the_first_server_after_the_marker(runs, stack):
    from components.k3s import k3s_plan
    from components.k3s.kubeconfig import ca_digest

    run = runs[stack]
    first = next(iter(EXPECTED_NODES[stack]))
    check = run.get("k3s-identity-check")
    marker = run.get("k3s-identity-marker", "kubernetes:core/v1:ConfigMap")
    digest = ca_digest(harness.K3S_KUBECONFIG)
    assert check.inputs["triggers"] == [digest]
    assert check.inputs.get("connection") == install(run, first).inputs.get("connection")
    script = harness.script(check.inputs["create"])
    assert "# kubeflow-k3s: identity-check.sh" in script and f"\nCA_DIGEST={digest}\n" in script
    assert not check.inputs.get("delete") and not check.delete_before_replace  # read-only; a failed create keeps the old digest
    assert run.waits_for(check, marker) and run.ancestors(check.name)[0] == "k3s"
    # The marker: in kube-system, content that never changes (an update would re-create it on a new cluster
    # and hide that nothing else was), after the nodes are Ready, through the cluster's provider.
    assert (marker.inputs["metadata"]["namespace"], marker.inputs["metadata"]["name"]) == k3s_plan.IDENTITY_MARKER
    assert digest not in repr(marker.inputs) and marker.inputs["data"]["stack"] == stack
    assert run.depends_on(marker.name, "k3s-nodes-ready") and run.ancestors(marker.name)[0] == "k3s"
    assert marker.provider.startswith(run.get("k3s-k8s", "pulumi:providers:kubernetes").urn + "::")


def test_rehosting_the_first_server_of_an_ha_cluster_changes_no_kubernetes_object(runs):
    # The new host joins the running cluster: the same CA, other client certificates in its kubeconfig.
    from tests.stackdiff import compare, kubernetes_resources

    before = runs["cloud"]
    after = harness.run_stack("cloud", overrides=rehosted("cloud", "192.0.2.19"),
                              kubeconfig=lambda host: harness.k3s_kubeconfig(client=host))
    change = compare(before, after)
    names = {before.by_urn(u).name for u in change.changed}
    assert {"k3s-server-1-install", "k3s-kubeconfig", "k3s-k8s"} <= names, change.describe()
    assert yaml.safe_load(after.get("k3s-k8s").inputs["kubeconfig"])["users"][0]["user"] != \
        yaml.safe_load(before.get("k3s-k8s").inputs["kubeconfig"])["users"][0]["user"]
    # The provider is updated (same clusterIdentifier), the identity, its marker and check stay, and no
    # Kubernetes object changes or is deletedWith anything that does (an engine would replace it with it).
    assert after.get("k3s-k8s").inputs["clusterIdentifier"] == before.get("k3s-k8s").inputs["clusterIdentifier"]
    assert not {"k3s-cluster-identity", "k3s-identity-marker"} & names, change.describe()
    assert after.get("k3s-identity-check").inputs["triggers"] == before.get("k3s-identity-check").inputs["triggers"]
    for r in kubernetes_resources(after):
        assert r.urn not in change.changed and r.urn not in change.added, r.name
        assert r.deleted_with not in change.changed, f"{r.name} is deletedWith {r.deleted_with}, which changes"


def test_a_new_single_server_is_a_new_cluster_identity(runs):
    # The edge stack's only server is replaced: K3s starts a new cluster with a new CA.
    from components.k3s.kubeconfig import ca_digest
    from tests.stackdiff import compare, kubernetes_resources

    before = runs["edge"]
    new_ca = harness.k3s_kubeconfig(ca="new-cluster", client="new-host")
    after = harness.run_stack("edge", overrides=rehosted("edge", "192.0.2.41"), kubeconfig=lambda host: new_ca)
    change = compare(before, after)
    identity = after.get("k3s-cluster-identity", IDENTITY_TYPE)
    assert identity.urn in change.changed and identity.inputs["keepers"] == {"caSha256": ca_digest(new_ca)}
    # An engine with pulumi/pulumi#23818 replaces every object deletedWith the identity: created again on the
    # new cluster. One without it sees them unchanged: the check runs (new digest) and the marker, unchanged
    # in state, is not in the new cluster, so it fails before any of them.
    assert after.get("k3s-identity-check").inputs["triggers"] == [ca_digest(new_ca)]
    assert after.get("k3s-identity-marker").urn not in change.changed
    for r in kubernetes_resources(after):
        assert r.deleted_with == identity.urn, r.name


def test_a_renewed_client_certificate_leaves_the_identity_alone(runs):
    # docs/architecture.md: after K3s renews the admin certificate, the kubeconfig is read again.
    from tests.stackdiff import compare

    after = harness.run_stack("edge", kubeconfig=lambda host: harness.k3s_kubeconfig(client="renewed"))
    change = compare(runs["edge"], after)
    # Only the provider's kubeconfig (an update: same clusterIdentifier); the read itself is re-run by hand
    # (`pulumi up --replace`), so its inputs are the same here.
    assert {after.by_urn(u).name for u in change.changed} == {"k3s-k8s"}, change.describe()
