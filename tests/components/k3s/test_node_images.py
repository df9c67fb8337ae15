"""Images ahead of need: per-node pre-pull lists, the air-gapped platform bundle, registries.yaml.

Lists are checked against the rendered data (components/shared/images_data.json, proven equal to real renders
by tests/contract/test_images.py); the graph under mocks shows who waits for what; the pre-pull script
runs for real in a sandbox. What the SSH test bed (issue 10) should add is in docs/images.md.
"""

from __future__ import annotations

import copy
import os
import pathlib
import stat
import subprocess

import pytest
import yaml

from components.shared import images_plan
from components.k3s import node_images_plan as nip, scripts
from stacks.settings import ConfigError, Registries
from tests import harness
from tests.stacks.settings import raw as raw_settings
from tests.stacks.settings.raw import settings
from tools import images as tool


def problems(stack: str, **overrides) -> dict[str, str]:
    return raw_settings.problems(raw_settings.stack(stack, **overrides), stack)


# K3s versions ---------------------------------------------------------------------------------------

# docs.k3s.io "Import Images": pre-importing while running "is available as of January 2025 releases:
# v1.32.0+k3s1, v1.31.5+k3s1, v1.30.9+k3s1, v1.29.13+k3s1. Before that, K3s pre-imported the images only when booting."
@pytest.mark.parametrize("version,supported", [
    ("v1.32.0+k3s1", True), ("v1.31.5+k3s1", True), ("v1.30.9+k3s1", True), ("v1.29.13+k3s1", True),
    ("v1.31.4+k3s1", False), ("v1.30.8+k3s1", False), ("v1.29.12+k3s1", False), ("v1.28.15+k3s1", False),
    ("v1.34.6+k3s1", True), ("v1.35.0+k3s2", True),
])
def test_pre_pull_only_where_k3s_watches_its_images_directory(version, supported):
    assert nip.prepull_supported(version) is supported
    try:
        s = settings("dev", k3s={"version": version})
    except ConfigError as err:
        # Below the supported floor (stacks/versions.py K3S_MIN_VERSIONS, issue 11): refused before any list
        # is written; the floor is above every release that lacks the running import.
        assert [k for k, _ in err.problems] == ["k3s.version"]
        return
    assert supported, f"{version} is accepted but K3s would not pull a list while running"
    assert nip.prepull_list(s, s.nodes[0])


# Lists per node -------------------------------------------------------------------------------------


def rendered_where(s) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in images_plan.stack_images(s).images:
        out.setdefault(images_plan.qualified(i.ref), set()).add(i.where)
    return out


def test_gpu_operands_only_on_the_gpu_node_and_deployments_off_the_tainted_one():
    s = settings("cloud")
    where = rendered_where(s)
    gpu, agent = s.node("gpu-1"), s.node("agent-1")
    gpu_list, agent_list = set(images_plan.images_for(s, gpu)), set(images_plan.images_for(s, agent))
    operands = {r for r, w in where.items() if w == {"gpu:nvidia"}}
    assert operands and operands <= gpu_list and not operands & agent_list
    # gpu-1 carries the cloud GPU taint: only DaemonSets and GPU operands land there.
    assert all(where[r] & {"every", "gpu:nvidia"} for r in gpu_list)
    assert "ghcr.io/kubeflow/kfp-api-server:2.16.0" in agent_list and "ghcr.io/kubeflow/kfp-api-server:2.16.0" not in gpu_list
    # Every schedulable node gets every image that can run on it; together they cover the stack.
    assert set(images_plan.all_images(s)) == set(where)
    assert images_plan.images_for(s, s.node("server-1")) == images_plan.images_for(s, agent)


def test_kubeflow_images_overrides_reach_the_list_of_what_the_node_pulls():
    from tests.arm64 import kfp_arm64_images

    overrides = kfp_arm64_images()
    s = settings("edge", nodes=[{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64"}],
                 kubeflow={"images": overrides})
    listed = set(images_plan.images_for(s, s.nodes[0]))
    # Each replacement carries its own tag (tests/arm64.py), so it stands in the list as written; no
    # upstream name it replaces is pulled.
    assert {images_plan.qualified(r) for r in overrides.values()} <= listed
    assert not any(r.rsplit(":", 1)[0] in overrides or r.split("@")[0] in overrides for r in listed)
    assert len(listed) == len(images_plan.images_for(settings("edge"), settings("edge").nodes[0]))


# The graph --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "cloud"])
def test_each_node_pre_pulls_its_list_once_k3s_runs_and_nothing_waits(runs, stack):
    run = runs[stack]
    s = settings(stack)
    prepulls = [r for r in run.registrations if r.name.endswith("-prepull")]
    assert len(prepulls) == len(s.nodes)
    for node in s.nodes:
        r = run.get(f"k3s-{node.name}-prepull")
        assert run.depends_on(r.name, f"k3s-{node.name}-install")
        assert run.ancestors(r.name)[0] == f"k3s-{node.name}"
        text = harness.script(r.inputs["create"])
        params = nip.prepull_params(node, nip.prepull_list(s, node))
        assert f"LIST_SHA256={params['LIST_SHA256']}" in text
        assert "/var/lib/rancher/k3s/agent/images" in text and r.inputs.get("delete")
    waiting = [r.name for r in run.registrations for p in prepulls if p.urn in r.dependencies]
    assert not waiting, f"{waiting} wait for a pre-pull: it must stay off the critical path"


def test_no_pre_pull_when_switched_off_or_on_edge(runs):
    assert not [r for r in runs["edge"].registrations if r.name.endswith("-prepull")]
    run = harness.run_stack("dev", overrides={"images": {"prePull": False}})
    assert not [r for r in run.registrations if r.name.endswith("-prepull")]


# The pre-pull script, run ------------------------------------------------------------------------------

FAKE_SUDO = "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n"


def run_script(tmp_path: pathlib.Path, name: str, params: dict) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sudo").write_text(FAKE_SUDO)
    (bin_dir / "sudo").chmod(stat.S_IRWXU)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    return subprocess.run(["sh", "-c", scripts.render(name, params)], env=env, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_the_pre_pull_script_writes_the_list_whole_and_once(tmp_path):
    s = settings("dev")
    node = s.nodes[0]
    text = nip.prepull_list(s, node)
    params = {**nip.prepull_params(node, text), "IMAGES_DIR": str(tmp_path / "agent" / "images")}
    first = run_script(tmp_path, "prepull.sh", params)
    assert first.returncode == 0, first.stderr
    target = tmp_path / "agent" / "images" / nip.LIST_FILE
    assert target.read_text() == text and text.count("\n") == len(images_plan.images_for(s, node))
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in (tmp_path / "agent").iterdir()] == ["images"]  # no temporary file left
    again = run_script(tmp_path, "prepull.sh", params)
    assert "unchanged" in again.stderr
    gone = run_script(tmp_path, "unprepull.sh", {"NODE_NAME": node.name, "IMAGES_DIR": params["IMAGES_DIR"],
                                                 "LIST_FILE": nip.LIST_FILE})
    assert gone.returncode == 0 and not target.exists()


def test_the_registries_script_writes_the_file_and_never_restarts_k3s(tmp_path):
    # A restart here would run on every node at once (each node's command depends only on its own
    # prepare step) and block on the Type=notify unit; the install command restarts instead.
    params = {"NODE_NAME": "n", "REGISTRIES_FILE": str(tmp_path / "etc" / "registries.yaml")}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(FAKE_SUDO)
    (bin_dir / "systemctl").write_text(  # k3s runs, k3s-agent does not
        f"#!/bin/sh\necho \"$*\" >> {tmp_path}/systemctl.log\n[ \"$1\" != is-active ] || [ \"$3\" = k3s ]\n")
    for f in ("sudo", "systemctl"):
        (bin_dir / f).chmod(stat.S_IRWXU)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    text = scripts.render("registries.sh", params)
    said = []
    for content in ("mirrors: {}\n", "mirrors: {}\n", "mirrors: {docker.io: {}}\n"):
        r = subprocess.run(["sh", "-c", text], env=env, input=content, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        said.append(r.stderr)
    assert "unchanged" in said[1] and "install step" in said[2]
    assert (tmp_path / "etc" / "registries.yaml").read_text() == "mirrors: {docker.io: {}}\n"
    assert oct((tmp_path / "etc" / "registries.yaml").stat().st_mode & 0o777) == "0o600"
    log = (tmp_path / "systemctl.log")
    assert not log.exists() or "restart" not in log.read_text()


# Air gap ---------------------------------------------------------------------------------------------

AIRGAP = {"binary": "./airgap/k3s", "images": "./airgap/k3s-airgap-images-amd64.tar.zst",
          "installScript": "./airgap/install.sh"}


def test_an_air_gapped_stack_needs_the_bundle_or_a_mirror_and_local_manifests():
    found = problems("edge", k3s={"airgap": AIRGAP})
    assert "k3s.airgap.platformImages" in found and "tools.images bundle" in found["k3s.airgap.platformImages"]
    assert "kubeflow.manifestsPath" in found and "tools.images manifests" in found["kubeflow.manifestsPath"]
    # A local mirror instead of a bundle is fine; a bare platform (mode none) needs no manifests.
    ok = settings("edge", k3s={"airgap": AIRGAP, "registries": {"mirrors": {"docker.io": {"endpoint": ["https://mirror.local:5000"]}}}},
                  kubeflow={"manifestsPath": "./manifests"})
    assert ok.k3s.registries is not None
    both = problems("edge", k3s={"airgap": {**AIRGAP, "registries": "./r.yaml"}, "registries": {"mirrors": {}}},
                    kubeflow={"manifestsPath": "./m"})
    assert "k3s.airgap.registries" in both


@pytest.fixture
def bundle(tmp_path) -> pathlib.Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    for ref in ("ghcr.io/kubeflow/kfp-api-server:2.16.0", "docker.io/library/mysql:8.4"):
        (folder / tool.archive_name(ref)).write_bytes(b"\0" * 1024)
    return folder


def test_the_bundle_is_imported_before_anything_is_applied(bundle, tmp_path):
    from tests.components.k3s.test_k3s_cluster import airgap_files

    k3s_files = airgap_files(tmp_path)  # real files: the program hashes what it stages
    del k3s_files["registries"]
    run = harness.run_stack("edge", overrides={"k3s": {"airgap": {**k3s_files, "platformImages": str(bundle)}},
                                               "kubeflow": {"manifestsPath": "./manifests"}})
    copies = [r for r in run.by_type("command:remote:CopyToRemote") if r.name.startswith("k3s-edge-1-platform-image-")]
    assert {c.inputs["remotePath"] for c in copies} == {f"{nip.BUNDLE_DIR}/{p.name}" for p in bundle.iterdir()}
    imp = run.get("k3s-edge-1-platform-images")
    assert "k3s ctr -n k8s.io images import" in harness.script(imp.inputs["create"]).replace('"$k3s"', "k3s")
    for c in copies:
        assert run.depends_on(imp.name, c.name) and run.depends_on(c.name, "k3s-edge-1-platform-images-dir")
    assert run.depends_on(imp.name, "k3s-edge-1-install")
    assert run.depends_on("k3s-nodes-ready", imp.name)
    kfp = [r for r in run.by_type("kubernetes:kustomize/v2:Directory")]
    assert kfp and all(run.waits_for(d, imp) for d in kfp)
    # Nothing left to pull: no pre-pull list on a node whose images came in the bundle.
    assert not [r for r in run.registrations if r.name.endswith("-prepull")]
    folder = run.get("k3s-edge-1-platform-images-dir")
    assert nip.BUNDLE_DIR in folder.inputs["delete"]


def test_the_preflight_counts_the_bundle_on_the_disk(bundle):
    (bundle / "big.tar").write_bytes(b"\0")
    os.truncate(bundle / "big.tar", 3 * 2**30)  # sparse: 3 GiB of archive
    s = settings("edge", k3s={"airgap": {**AIRGAP, "platformImages": str(bundle)}}, kubeflow={"manifestsPath": "./m"})
    from components.k3s import k3s_plan

    assert k3s_plan.preflight_params(s, s.nodes[0])["IMAGES_DISK_GIB"] == 7  # staged + imported, rounded up
    assert k3s_plan.preflight_params(settings("dev"), settings("dev").nodes[0])["IMAGES_DISK_GIB"] == 0
    d = settings("dev", images={"diskGiB": 12})
    assert k3s_plan.preflight_params(d, d.nodes[0])["IMAGES_DISK_GIB"] == 12


def test_a_missing_bundle_is_a_config_error_naming_the_key(tmp_path):
    s = settings("edge", k3s={"airgap": {**AIRGAP, "platformImages": str(tmp_path / "nothing")}}, kubeflow={"manifestsPath": "./m"})
    with pytest.raises(ConfigError) as err:
        nip.bundle_files(s)
    assert err.value.problems[0][0] == "k3s.airgap.platformImages"


# registries.yaml ---------------------------------------------------------------------------------------

REGISTRIES = {
    "mirrors": {"docker.io": {"endpoint": ["https://mirror.example.com:5000"]},
                "ghcr.io": {"endpoint": ["https://mirror.example.com:5000"], "rewrite": {"^(.*)$": "ghcr/$1"}}},
    "configs": {"mirror.example.com:5000": {"auth": {"username": "puller", "passwordFrom": "mirrorPassword"},
                                            "tls": {"ca_file": "/etc/ssl/mirror-ca.pem"}}},
}


def test_registries_settings_reject_plain_secrets_and_bad_values():
    bad = copy.deepcopy(REGISTRIES)
    bad["configs"]["mirror.example.com:5000"]["auth"]["password"] = "hunter2"
    bad["mirrors"]["docker.io"]["endpoint"] = "mirror.example.com"
    bad["configs"]["mirror.example.com:5000"]["tls"]["ca_file"] = "relative.pem"
    found = problems("dev", k3s={"registries": bad})
    assert "passwordFrom" in found["k3s.registries.configs.mirror.example.com:5000.auth.password"]
    assert "k3s.registries.mirrors.docker.io.endpoint" in found
    assert "k3s.registries.configs.mirror.example.com:5000.tls.ca_file" in found
    s = settings("dev", k3s={"registries": REGISTRIES}, mirrorPassword="x")
    assert s.k3s.registries.secret_keys == ("mirrorPassword",)


def test_registries_yaml_is_k3s_format_with_the_secret_filled_in():
    regs = Registries(**{k: v for k, v in REGISTRIES.items()})
    doc = yaml.safe_load(nip.render_registries(regs, {"mirrorPassword": "s3cret"}))
    assert doc["mirrors"]["docker.io"] == {"endpoint": ["https://mirror.example.com:5000"]}
    assert doc["mirrors"]["ghcr.io"]["rewrite"] == {"^(.*)$": "ghcr/$1"}
    assert doc["configs"]["mirror.example.com:5000"] == {
        "auth": {"username": "puller", "password": "s3cret"}, "tls": {"ca_file": "/etc/ssl/mirror-ca.pem"}}


def test_registries_yaml_reaches_every_node_as_a_secret_before_its_install():
    secret = "mirror-s3cret-value"
    run = harness.run_stack("cloud", overrides={"k3s": {"apiEndpoint": "k8s.example.com", "registries": REGISTRIES}},
                            secrets={"sshPrivateKey": "k", "mirrorPassword": secret})
    s = settings("cloud")
    for node in s.nodes:
        r = run.get(f"k3s-{node.name}-registries")
        assert harness.is_secret(r.raw_inputs["stdin"])
        assert yaml.safe_load(r.inputs["stdin"])["configs"]["mirror.example.com:5000"]["auth"]["password"] == secret
        assert run.depends_on(f"k3s-{node.name}-install", r.name)
        assert run.depends_on(r.name, f"k3s-{node.name}-prepare")
        config = yaml.safe_load(run.get(f"k3s-{node.name}-install").inputs["stdin"])
        assert config["private-registry"] == nip.REGISTRIES_FILE
    for reg in run.registrations:
        assert not any(secret in t for t in harness.strings_outside_secrets(reg.raw_inputs)), reg.name


def test_a_registries_change_restarts_k3s_through_the_serialized_installs_only():
    """Changing a mirror or rotating the password changes each install's stdin (an update, never a
    replacement), so the restart is install.sh's bounded one, in the installs' order: servers one at a
    time, agents after them; the registries commands themselves run in parallel and restart nothing."""
    overrides = {"k3s": {"apiEndpoint": "k8s.example.com", "registries": REGISTRIES}}
    one = harness.run_stack("cloud", overrides=overrides, secrets={"sshPrivateKey": "k", "mirrorPassword": "old"})
    two = harness.run_stack("cloud", overrides=overrides, secrets={"sshPrivateKey": "k", "mirrorPassword": "new"})
    s = settings("cloud")
    for node in s.nodes:
        a, b = one.get(f"k3s-{node.name}-install"), two.get(f"k3s-{node.name}-install")
        assert a.inputs["stdin"] != b.inputs["stdin"], node.name
        assert a.inputs["triggers"] == b.inputs["triggers"] and a.inputs["update"] == b.inputs["update"]
        assert harness.is_secret(b.raw_inputs["stdin"])
        marker = b.inputs["stdin"].splitlines()[-1]
        assert marker.startswith("# k3s.registries sha256 ") and "new" not in marker
        assert yaml.safe_load(b.inputs["stdin"])["private-registry"] == nip.REGISTRIES_FILE  # still valid YAML
        reg = two.get(f"k3s-{node.name}-registries")
        assert "systemctl" not in reg.inputs["create"]
    servers = [n.name for n in s.servers]
    for prev, nxt in zip(servers, servers[1:]):
        assert two.depends_on(f"k3s-{nxt}-install", f"k3s-{prev}-install")
    for agent in s.agents:
        assert two.depends_on(f"k3s-{agent.name}-install", f"k3s-{s.first_server.name}-install")
    # without k3s.registries the install's stdin carries no marker (no restart for stacks that do not use it)
    plain = harness.run_stack("cloud", overrides={"k3s": {"apiEndpoint": "k8s.example.com"}}, secrets={"sshPrivateKey": "k"})
    assert "k3s.registries" not in plain.get(f"k3s-{s.first_server.name}-install").inputs["stdin"]


def test_a_registry_secret_that_is_not_set_is_a_config_error():
    with pytest.raises(Exception) as err:
        harness.run_stack("dev", overrides={"k3s": {"registries": REGISTRIES}})
    assert "mirrorPassword" in str(err.value) and "pulumi config set --secret" in str(err.value)


# The tool ------------------------------------------------------------------------------------------------


def test_the_tool_prints_a_stack_and_refuses_a_bad_one_in_one_line(capsys):
    assert tool.main(["edge"]) == 0
    out = capsys.readouterr().out.split()
    assert out == images_plan.all_images(settings("edge"))
    assert tool.main(["nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no stack 'nope'" in err and "edge" in err
    assert tool.main(["cloud", "--node", "gpu-9"]) == 2
    assert "no node 'gpu-9'" in capsys.readouterr().err


def test_the_bundle_command_line_without_network(capsys, tmp_path):
    """--dry-run prints the skopeo commands: one docker-archive per image, for the stack's architecture,
    named with the reference `ctr images import` restores."""
    assert tool.main(["bundle", "edge", "--out", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    refs = images_plan.all_images(settings("edge"))
    assert len(lines) == len(refs)
    for ref, line in zip(refs, lines):
        arch = settings("edge").nodes[0].arch  # the shipped edge host's architecture
        assert line.startswith("skopeo copy ") and f"--override-arch {arch}" in line and "--override-os linux" in line
        assert f"docker://{ref}" in line
        assert f"docker-archive:{tmp_path / tool.archive_name(ref)}:{ref}" in line
    assert not list(tmp_path.iterdir())  # nothing written
    assert tool.main(["bundle", "cloud", "--out", str(tmp_path), "--dry-run", "--arch", "amd64"]) == 0


def test_the_manifests_command_line_without_network(capsys, tmp_path):
    assert tool.main(["manifests", "--manifests", str(tmp_path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "git clone --depth 1 --branch v3.7.3 https://github.com/argoproj/argo-workflows.git" in out
    assert "jobset/releases/download/v0.10.1/manifests.yaml" in out


def test_the_edge_files_air_gap_example_is_a_valid_configuration():
    """Uncommenting the air-gap block of Pulumi.edge.yaml gives settings the program accepts."""
    text = (harness.ROOT / "Pulumi.edge.yaml").read_text()
    block = text.split("# Air-gapped hosts:", 1)[1].split("\n", 1)[1]
    uncommented = "\n".join(line.replace("  # ", "  ", 1).split("   #")[0] for line in block.splitlines())
    extra = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(uncommented).items()}
    s = settings("edge", **extra)
    assert s.k3s.airgap.platform_images == "./airgap/platform" and s.kubeflow.manifests_path == "./airgap/manifests"
