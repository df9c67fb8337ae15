"""tools/graph.py: the component graph and critical path of each stack, and the diagrams in docs/graph.md
(linked from the README)."""

from __future__ import annotations

import re

import pytest

from tests import harness
from tools import graph

REGENERATE = "venv/bin/python -m tools.graph --update-readme"


@pytest.fixture(scope="module")
def graphs(runs):
    return {stack: graph.build(run) for stack, run in runs.items()}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_readme_embeds_the_current_diagram(runs, stack):
    text = graph.DOC.read_text()
    found = graph.embedded(text, stack)
    assert found, f"docs/graph.md has no <!-- graph:{stack} --> ... <!-- /graph:{stack} --> block; add the markers and run {REGENERATE}"
    assert found == graph.block(stack, graph.markdown(runs[stack])), (
        f"the {stack} diagram in docs/graph.md is out of date: run {REGENERATE}"
    )


@pytest.mark.parametrize("stack", harness.STACKS)
def test_counts(graphs, runs, stack):
    g = graphs[stack]
    run = runs[stack]
    assert len(g.resources) == sum(1 for r in run.registrations if r.type != "pulumi:pulumi:Stack" and (r.custom or r.remote))
    assert len(g.components) == sum(1 for r in run.registrations if r.type != "pulumi:pulumi:Stack" and not r.custom and not r.remote)
    assert set(g.owner) == set(g.resources)


@pytest.mark.parametrize("stack", harness.STACKS)
def test_critical_path_is_a_chain_of_waits_and_the_longest(graphs, stack):
    g = graphs[stack]
    path = g.critical
    assert not g.waits[path[0]], "the chain starts with a resource that waits for nothing"
    for before, after in zip(path, path[1:]):
        assert before in g.waits[after], f"{g.resources[after].name} does not wait for {g.resources[before].name}"
    # Independent check: longest chain by relaxation over the wait relation.
    depth = {u: 1 for u in g.resources}
    for _ in range(len(g.resources)):
        changed = False
        for u, deps in g.waits.items():
            best = max((depth[d] + 1 for d in deps), default=1)
            if best > depth[u]:
                depth[u], changed = best, True
        if not changed:
            break
    assert g.depth == max(depth.values())


def test_the_critical_path_walks_the_k3s_join_order(graphs):
    # cloud: three servers join one after another before anything Kubernetes can start.
    names = [graphs["cloud"].resources[u].name for u in graphs["cloud"].critical]
    installs = [n for n in names if re.fullmatch(r"k3s-server-\d-install", n)]
    assert installs == ["k3s-server-1-install", "k3s-server-2-install", "k3s-server-3-install"]
    assert names.index("k3s-nodes-ready") > names.index("k3s-server-3-install")


@pytest.mark.parametrize("stack", harness.STACKS)
def test_mermaid_declares_every_node_it_links_and_marks_the_critical_path(graphs, stack):
    text = graph.mermaid(graphs[stack])
    assert text.startswith("flowchart LR\n")
    declared = set(re.findall(r"^\s*(c_\w+)\[", text, re.M))
    linked = set(re.findall(r"^\s*(c_\w+) --> (c_\w+)$", text, re.M))
    assert linked and {n for pair in linked for n in pair} <= declared
    (marked,) = re.findall(r"^\s*class (\S+) critical$", text, re.M)
    assert set(marked.split(",")) <= declared
    assert text.count("subgraph") == text.count("\n  end") + text.count("\n    end") + text.count("\n      end")


def test_update_readme_replaces_only_between_markers():
    text = "intro\n<!-- graph:dev -->\nold\n<!-- /graph:dev -->\noutro\n"
    assert graph.update_readme(text, {"dev": "new\n"}) == "intro\n<!-- graph:dev -->\nnew\n<!-- /graph:dev -->\noutro\n"
    with pytest.raises(SystemExit):
        graph.update_readme("no markers", {"dev": "new\n"})


def test_command_prints_a_stack(capsys):
    assert graph.main(["edge"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("```mermaid\nflowchart LR") and "**edge**:" in out
