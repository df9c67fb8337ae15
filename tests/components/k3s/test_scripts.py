"""The shell run on nodes: ShellCheck-clean as rendered, safely parameterised, preflight runs for real."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from components.k3s import k3s_plan, scripts
from stacks.settings import parse_settings
from tests.harness import stack_raw

SHELLCHECK = shutil.which("shellcheck") or str((__import__("pathlib").Path(sys.executable).parent / "shellcheck"))


def shellcheck(text: str) -> subprocess.CompletedProcess:
    return subprocess.run([SHELLCHECK, "--shell=sh", "--severity=style", "-"], input=text, text=True, capture_output=True)


def all_rendered_scripts():
    """Every script with the parameters each stack gives it."""
    for stack in ("dev", "edge", "cloud"):
        s = parse_settings(stack_raw(stack), stack)
        for node in s.nodes:
            yield f"{stack}/{node.name}/preflight", scripts.render("preflight.sh", k3s_plan.preflight_params(s, node))
            prep = k3s_plan.prepare_params(s, node, packages=["open-iscsi", "nfs-common"])
            yield f"{stack}/{node.name}/prepare", scripts.render("prepare.sh", prep)
            yield f"{stack}/{node.name}/unprepare", scripts.render("unprepare.sh", k3s_plan.unprepare_params(node, prep))
            yield f"{stack}/{node.name}/install", scripts.render("install.sh", k3s_plan.install_params(s, node))
            runner = k3s_plan.remover(s, node)
            for name in ("member.sh", "leave.sh"):
                yield f"{stack}/{node.name}/{name}", scripts.render(name, k3s_plan.member_params(s, node, runner))
            yield f"{stack}/{node.name}/uninstall", scripts.render("uninstall.sh", k3s_plan.uninstall_params(node))
            from components.k3s import node_images_plan  # issue 15: pre-pull list, platform bundle, registries.yaml
            for what, text in node_images_plan.node_scripts(s, node).items():
                yield f"{stack}/{node.name}/{what}", text
        yield f"{stack}/joined", scripts.render("joined.sh", {"NODE_NAME": "agent-1"})
        for name in ("stage-dir.sh", "unstage.sh"):
            yield f"{stack}/{name}", scripts.render(name, {"NODE_NAME": "n1", "STAGE_DIR": k3s_plan.STAGE_DIR})
        yield f"{stack}/ready", scripts.render("wait-ready.sh", {"NODE_NAME": "x", "NODES": "a b", "WAIT_SECONDS": 60})
        yield f"{stack}/kubeconfig", scripts.render("read-kubeconfig.sh", {"NODE_NAME": "x"})
        yield f"{stack}/identity-check", scripts.render("identity-check.sh", k3s_plan.identity_check_params(s, "0" * 64))
        if s.kubeflow.mode != "none":
            from components.kubeflow import footprint_guard  # issue 4: the Kubeflow footprint guard
            yield f"{stack}/kubeflow-capacity", footprint_guard.script(s)
        if s.gpu_nodes:
            from components.gpu import gpu_plan  # issue 3: the GPU layer's readiness wait
            yield f"{stack}/wait-gpu", scripts.render("wait-gpu.sh", gpu_plan.wait_params(s))
            for action in ("ensure", "keep"):
                params = {**gpu_plan.runtime_class_params(s), "ACTION": action}
                yield f"{stack}/gpu-runtimeclass-{action}", scripts.render("gpu-runtimeclass.sh", params)
        if s.kubeflow.mode != "none":
            from components.smoke import smoke_plan  # issue 13: the smoke step at the end of `pulumi up`
            yield f"{stack}/smoke", smoke_plan.script(s, "1767225600")


RENDERED = list(all_rendered_scripts())


@pytest.mark.parametrize("name,text", RENDERED, ids=[name for name, _ in RENDERED])
def test_rendered_scripts_pass_shellcheck(name, text):
    result = shellcheck(text)
    assert result.returncode == 0, f"{name}:\n{result.stdout}"


def test_every_script_file_is_rendered_somewhere():
    rendered = {text.split("\n")[1].split(": ")[1] for _, text in all_rendered_scripts()}
    files = {p.name for p in scripts.SCRIPT_DIR.glob("*.sh")} - {"lib.sh"}
    assert files == rendered


def test_shellcheck_catches_a_broken_script():
    # Guard against a ShellCheck that silently passes everything.
    assert shellcheck("#!/bin/sh\nfor f in $(ls *.txt); do echo $f; done\n").returncode != 0


def test_parameters_cannot_break_out_of_their_assignment(tmp_path):
    evil = "x'; touch " + str(tmp_path / "pwned") + "; echo '"
    text = scripts.render("read-kubeconfig.sh", {"NODE_NAME": evil})
    body = text.replace("as_root cat /etc/rancher/k3s/k3s.yaml", 'printf "%s" "$NODE_NAME"')
    out = subprocess.run(["sh", "-c", body], capture_output=True, text=True)
    assert out.stdout == evil and not (tmp_path / "pwned").exists()


def test_remote_wrapper_runs_the_same_script():
    text = scripts.render("read-kubeconfig.sh", {"NODE_NAME": "it's"})
    text = text.replace("as_root cat /etc/rancher/k3s/k3s.yaml", 'echo "$NODE_NAME"')
    out = subprocess.run(["sh", "-c", scripts.as_remote_command(text)], capture_output=True, text=True)
    assert out.stdout == "it's\n"


def run_preflight(**overrides) -> subprocess.CompletedProcess:
    s = parse_settings(stack_raw("dev"), "dev")
    params = k3s_plan.preflight_params(s, s.nodes[0])
    params.update(overrides)
    return subprocess.run(["sh", "-c", scripts.render("preflight.sh", params)], capture_output=True, text=True, timeout=60)


def test_preflight_runs_for_real_and_its_report_parses():
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    result = run_preflight(EXPECT_ARCH=arch, MIN_MEMORY_MIB=256, MIN_DISK_GIB=1)
    report = k3s_plan.parse_preflight_report(result.stdout)
    assert {"os", "arch", "systemd", "memory-cgroup", "sudo", "disk", "memory", "gpu", "curl", "result"} <= set(report)
    assert report["os"][0] == "ok" and report["arch"] == ("ok", arch)
    assert report["memory"][0] == "ok" and report["disk"][0] == "ok" and report["gpu"][0] == "skip"
    failed = [k for k, (status, _) in report.items() if status == "fail" and k != "result"]
    # Exit code and result line agree with the individual checks (this machine may lack systemd).
    assert (result.returncode == 0) == (not failed) == (report["result"][0] == "ok")


def test_preflight_fails_fast_with_actionable_messages():
    result = run_preflight(EXPECT_ARCH="riscv", MIN_MEMORY_MIB=4_000_000, MIN_DISK_GIB=1_000_000, GPU="jetson")
    report = k3s_plan.parse_preflight_report(result.stdout)
    assert result.returncode == 1 and report["result"][0] == "fail"
    assert "config says arch: riscv" in report["arch"][1]
    assert "preflight.minMemoryMiB" in report["memory"][1] and "preflight.minDiskGiB" in report["disk"][1]
    assert report["gpu"][0] == "fail" and "gpu: jetson" in report["gpu"][1]
    assert "preflight failed" in result.stderr


def test_every_command_the_stacks_create_passes_shellcheck(runs):
    from tests import harness

    texts: dict[str, str] = {}
    for stack, run in runs.items():
        for reg in run.registrations:
            if reg.type in ("command:remote:Command", "command:local:Command"):
                for key in ("create", "update", "delete"):
                    text = harness.script(reg.inputs.get(key))
                    if text:
                        texts.setdefault(text, f"{stack}:{reg.name}.{key}")
    assert len(texts) >= 10
    for text, where in texts.items():
        result = shellcheck(text if text.startswith("#!") else "#!/bin/sh\n" + text)
        assert result.returncode == 0, f"{where}:\n{result.stdout}"


@pytest.mark.parametrize("role,script", [("server", "k3s-uninstall.sh"), ("agent", "k3s-agent-uninstall.sh")])
def test_uninstall_runs_k3s_own_script_and_tolerates_k3s_being_gone(tmp_path, role, script):
    marker = tmp_path / "ran"
    fake = tmp_path / script
    fake.write_text(f"#!/bin/sh\necho {role} > {marker}\n")
    fake.chmod(0o755)
    text = scripts.render("uninstall.sh", {"NODE_NAME": "n1", "ROLE": role, "BIN_DIR": str(tmp_path)})
    first = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
    assert first.returncode == 0 and marker.read_text() == f"{role}\n"
    fake.unlink()  # K3s already gone (a second destroy, or a wiped host)
    again = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to uninstall" in again.stderr


def test_bounded_wait_says_what_timed_out_and_what_to_check():
    text = scripts.render("read-kubeconfig.sh", {"NODE_NAME": "n1"}).replace(
        "as_root cat /etc/rancher/k3s/k3s.yaml", 'wait_until 0 "the K3s API" "journalctl -u k3s" false'
    )
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "timed out after 0s waiting for the K3s API. Check: journalctl -u k3s" in result.stderr
    ok = subprocess.run(["sh", "-c", text.replace(" false\n", " true\n")], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0


def test_bounded_wait_is_a_wall_clock_deadline_that_counts_the_checks_too():
    import time

    text = scripts.render("read-kubeconfig.sh", {"NODE_NAME": "n1"}).replace(
        "as_root cat /etc/rancher/k3s/k3s.yaml", 'wait_until 3 "a slow check" "the check" sh -c "sleep 2; false"'
    )
    started = time.monotonic()
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1 and "timed out after 3s waiting for a slow check" in result.stderr
    # counting only its sleeps, the old loop took 2 + 5 + 2 = 9 s; a deadline ends after the next check
    assert elapsed < 6.5, f"took {elapsed:.1f}s"


def test_cluster_readiness_has_one_deadline_for_all_nodes(tmp_path):
    """wait-ready.sh: the time one node takes counts against the others (worst case WAIT_SECONDS, not
    nodes x WAIT_SECONDS), and the message names the node that is not Ready."""
    import time

    fake = tmp_path / "kubectl"
    # `wait --for=condition=Ready node/NAME --timeout=10s`: a node is Ready 2 s after it was first asked about.
    fake.write_text(f"""#!/bin/sh
n=${{3#node/}}; now=$(date +%s%N)
[ -f {tmp_path}/first-$n ] || echo "$now" > {tmp_path}/first-$n
[ $((now - $(cat {tmp_path}/first-$n))) -ge 2000000000 ]
""")
    fake.chmod(0o755)
    text = scripts.render("wait-ready.sh", {"NODE_NAME": "x", "NODES": "a b", "WAIT_SECONDS": 3})
    assert "as_root /usr/local/bin/k3s kubectl wait" in text
    text = text.replace("as_root /usr/local/bin/k3s kubectl", str(fake))
    started = time.monotonic()
    result = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    # a took 2-3 s of the 3: b has what is left (at least 1 s), not 3 s of its own
    assert result.returncode == 1, "node b got a fresh deadline"
    assert "waiting for node b to be Ready" in result.stderr and "Check: kubectl describe node b" in result.stderr
    assert elapsed < 5.5, f"took {elapsed:.1f}s"


# The cluster identity check (docs/k3s.md "A new cluster behind the same stack"), against a stub k3s.
K3S_STUB = """#!/bin/sh
case "$*" in
  *--raw=/readyz*) exit 0 ;;
  *"get configmap -n kube-system kubeflow-k3s-identity"*)
    case "$MARKER" in present) echo configmap/kubeflow-k3s-identity ;; absent) ;; *) echo "connection refused" >&2; exit 1 ;; esac ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def run_identity_check(tmp_path, marker: str) -> subprocess.CompletedProcess:
    stub = tmp_path / "k3s"
    stub.write_text(K3S_STUB)
    stub.chmod(0o755)
    s = parse_settings(stack_raw("edge"), "edge")
    text = scripts.render("identity-check.sh", k3s_plan.identity_check_params(s, "ab" * 32))
    assert text.count("as_root /usr/local/bin/k3s") == 2
    text = text.replace("as_root /usr/local/bin/k3s", str(stub))
    return subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "MARKER": marker})


def test_identity_check_passes_when_the_stack_objects_are_in_the_cluster(tmp_path):
    result = run_identity_check(tmp_path, "present")
    assert result.returncode == 0, result.stderr
    assert "CA sha256 " + "ab" * 32 in result.stderr


def test_identity_check_on_a_new_empty_cluster_fails_naming_it_and_the_recovery(tmp_path):
    result = run_identity_check(tmp_path, "absent")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "https://192.0.2.40:6443 is a new, empty cluster" in message and "sha256 " + "ab" * 32 in message
    assert "run `pulumi refresh`" in message and "then `pulumi up`" in message


def test_identity_check_does_not_mistake_an_api_error_for_a_new_cluster(tmp_path):
    result = run_identity_check(tmp_path, "error")
    assert result.returncode == 1
    assert "could not read configmap kube-system/kubeflow-k3s-identity" in result.stderr
    assert "new, empty cluster" not in result.stderr
