"""The command-line tools answer a bad stack with one line and a non-zero exit (no traceback), and print
each warning once however often they evaluate a stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import harness
from tools import benchmark, cli, graph

TOOLS = [
    [sys.executable, "-m", "tools.graph"],
    [sys.executable, "-m", "tools.benchmark", "-n", "1"],
    [sys.executable, "scripts/kubeflow_footprint.py"],
]


@pytest.mark.parametrize("command", TOOLS, ids=["graph", "benchmark", "footprint"])
def test_an_unknown_stack_is_one_line(command):
    done = subprocess.run([*command, "nosuch"], cwd=harness.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: no stack 'nosuch': Pulumi.nosuch.yaml does not exist (stacks: {', '.join(cli.stack_names())})"
    ]


@pytest.mark.parametrize("main", [graph.main, lambda argv: benchmark.main([*argv, "-n", "1"])], ids=["graph", "benchmark"])
def test_a_bad_stack_config_is_one_line(monkeypatch, capsys, main):
    original = harness.run_stack
    monkeypatch.setattr(harness, "run_stack", lambda stack, *a, **k: original(stack, {"gpus": {"timeSlicing": 2}}))
    assert cli.run(main, ["edge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    prefix = "error: stack edge: invalid stack configuration: kubeflow-k3s:gpus: unknown setting (did you mean 'gpu'?); allowed: "
    assert len(err) == 1 and err[0].startswith(prefix), err
    allowed = err[0][len(prefix):].split(", ")
    assert allowed == sorted(allowed, key=str.lower) and {"gpu", "kubeflow", "k3s", "nodes"} <= set(allowed)


def test_the_footprint_script_names_a_misspelled_namespace(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("kubeflow_footprint", harness.ROOT / "scripts" / "kubeflow_footprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "Pulumi.typo.yaml").write_text(
        "config:\n  kubeflow-k3s:profile: laptop\n  kubeflow_k3s:gpu: {timeSlicing: 2}\n"
        "  kubeflow-k3s:nodes: [{name: dev, role: server, connection: local}]\n")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    assert cli.run(module.main, ["typo"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: stack typo: invalid stack configuration: kubeflow_k3s:gpu: unknown namespace")


def test_the_benchmark_prints_each_warning_once(capsys, caplog):
    # edge warns about its unpinned host key; the benchmark evaluates it 1 + n times.
    assert cli.run(benchmark.main, ["edge", "-n", "3", "--json"]) == 0
    seen = [r.getMessage() for r in caplog.records if "hostKey is not set" in r.getMessage()]
    seen += [l for l in capsys.readouterr().err.splitlines() if "hostKey is not set" in l]
    assert len(seen) == 1
