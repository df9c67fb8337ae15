"""Print a stack's component graph as a Mermaid diagram, with its critical path and counts.

    venv/bin/python -m tools.graph cloud            # the diagram of one stack (Markdown, to stdout)
    venv/bin/python -m tools.graph --update-readme  # rewrite every stack's diagram in docs/graph.md
    venv/bin/python -m tools.graph --check          # exit 1 when docs/graph.md's diagrams are out of date

The stack is evaluated offline with the mocks the tests use (tests/harness.py): no engine, no hosts, no
cluster. What is drawn:

- a *resource* is every custom resource plus every provider-side component (Helm v4 Chart, kustomize and
  yaml v2 groups, which render in the provider); a *component* is every component of the program;
- each resource belongs to its parent component; one box per component that owns resources, nested in
  boxes of the components above it, labelled with its type and its number of resources;
- an arrow B --> A when a resource of A waits for a resource of B (a dependency, explicit or through an
  input), i.e. arrows point the way `pulumi up` proceeds;
- the critical path: the longest chain of waits between resources (each resource one step). Its
  components and the arrows between them are drawn in red; its depth is that chain's length.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from dataclasses import dataclass

from tests import harness
from tools import cli

# The diagrams live in docs/graph.md (the README links to it); `--update-readme` keeps its old name.
DOC = harness.ROOT / "docs" / "graph.md"
README = DOC
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Graph:
    stack: str
    resources: dict[str, harness.Registration]  # urn -> registration
    components: dict[str, harness.Registration]
    owner: dict[str, str]  # resource urn -> component urn ("" for the stack itself)
    waits: dict[str, set[str]]  # resource urn -> resource urns it waits for
    critical: list[str]  # resource urns, first to last

    @property
    def depth(self) -> int:
        return len(self.critical)


def is_resource(reg: harness.Registration) -> bool:
    return reg.type != STACK_TYPE and (reg.custom or reg.remote)


def build(run: harness.Run) -> Graph:
    regs = {r.urn: r for r in run.registrations}
    resources = {u: r for u, r in regs.items() if is_resource(r)}
    components = {u: r for u, r in regs.items() if not is_resource(r) and r.type != STACK_TYPE}
    children: dict[str, list[str]] = {}
    for r in regs.values():
        children.setdefault(r.parent, []).append(r.urn)

    @functools.cache
    def leaves(urn: str) -> frozenset[str]:
        """A dependency on a component means waiting for every resource under it."""
        if urn in resources:
            return frozenset([urn])
        out: set[str] = set()
        for child in children.get(urn, []):
            out |= leaves(child)
        return frozenset(out)

    waits = {u: set().union(*(leaves(d) for d in r.dependencies if d in regs)) - {u} if r.dependencies else set()
             for u, r in resources.items()}
    owner = {u: (r.parent if r.parent in components else "") for u, r in resources.items()}

    # Longest chain of waits (the graph is a DAG: Pulumi refuses cycles). Ties go to the smaller name.
    @functools.cache
    def chain(urn: str) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for dep in sorted(waits[urn], key=lambda d: resources[d].name):
            candidate = chain(dep)
            if len(candidate) > len(best):
                best = candidate
        return best + (urn,)

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    critical: tuple[str, ...] = ()
    for urn in sorted(resources, key=lambda u: resources[u].name):
        candidate = chain(urn)
        if len(candidate) > len(critical):
            critical = candidate
    return Graph(run.stack, resources, components, owner, waits, list(critical))


def _id(name: str) -> str:
    return "c_" + re.sub(r"\W", "_", name)


def _short_type(typ: str) -> str:
    return typ.rsplit(":", 1)[-1]


def mermaid(graph: Graph) -> str:
    """The flowchart text (deterministic: sorted by name)."""
    comps = graph.components
    owned: dict[str, int] = {}
    for urn, comp in graph.owner.items():
        owned[comp] = owned.get(comp, 0) + 1
    # One box per component that owns resources; a component with sub-components becomes a subgraph
    # holding its own box (when it owns resources) and its sub-components.
    kids: dict[str, list[str]] = {}
    for urn, reg in comps.items():
        kids.setdefault(reg.parent if reg.parent in comps else "", []).append(urn)

    @functools.cache
    def has_content(urn: str) -> bool:
        return bool(owned.get(urn)) or any(has_content(k) for k in kids.get(urn, []))

    critical_components = {graph.owner[u] for u in graph.critical}
    lines = ["flowchart LR"]

    def box(urn: str) -> str:
        if not urn:
            return f'{_id("stack")}["stack<br/>{owned[""]} resources"]'
        reg = comps[urn]
        return f'{_id(reg.name)}["{reg.name}<br/>{_short_type(reg.type)} · {owned[urn]}"]'

    def render(urn: str, indent: int) -> None:
        sub = sorted((k for k in kids.get(urn, []) if has_content(k)), key=lambda k: comps[k].name)
        pad = " " * indent
        if not sub:
            lines.append(pad + box(urn))
            return
        reg = comps[urn]
        lines.append(pad + f'subgraph {_id(reg.name)}_group["{reg.name} ({_short_type(reg.type)})"]')
        if owned.get(urn):
            lines.append(pad + "  " + box(urn))
        for k in sub:
            render(k, indent + 2)
        lines.append(pad + "end")

    if owned.get(""):
        lines.append("  " + box(""))
    for urn in sorted((k for k in kids.get("", []) if has_content(k)), key=lambda k: comps[k].name):
        render(urn, 2)

    def node(comp: str) -> str:
        return _id(comps[comp].name) if comp else _id("stack")

    edges: set[tuple[str, str]] = set()
    for urn, deps in graph.waits.items():
        for dep in deps:
            a, b = graph.owner[dep], graph.owner[urn]
            if a != b:
                edges.add((a, b))
    critical_edges = {(graph.owner[x], graph.owner[y]) for x, y in zip(graph.critical, graph.critical[1:])
                      if graph.owner[x] != graph.owner[y]}
    ordered = sorted(edges, key=lambda e: (node(e[0]), node(e[1])))
    for a, b in ordered:
        lines.append(f"  {node(a)} --> {node(b)}")
    lines.append("  classDef critical fill:#fde2e1,stroke:#c0392b,stroke-width:3px")
    if critical_components:
        lines.append("  class " + ",".join(sorted(node(c) for c in critical_components)) + " critical")
    marked = [str(i) for i, e in enumerate(ordered) if e in critical_edges]
    if marked:
        lines.append(f"  linkStyle {','.join(marked)} stroke:#c0392b,stroke-width:3px")
    return "\n".join(lines)


def summary(graph: Graph) -> str:
    path, last = [], None
    for urn in graph.critical:
        comp = graph.owner[urn]
        name = graph.components[comp].name if comp else "stack"
        if name != last:
            path.append(name)
            last = name
    return (
        f"**{graph.stack}**: {len(graph.resources)} resources, {len(graph.components)} components, "
        f"longest chain of waits {graph.depth} resources "
        f"(`{graph.resources[graph.critical[0]].name}` … `{graph.resources[graph.critical[-1]].name}`), "
        f"through {' → '.join(path)}."
    )


def markdown(run: harness.Run) -> str:
    graph = build(run)
    return f"```mermaid\n{mermaid(graph)}\n```\n\n{summary(graph)}\n"


def block(stack: str, body: str) -> str:
    return f"<!-- graph:{stack} -->\n{body}<!-- /graph:{stack} -->"


def marker_pattern(stack: str) -> re.Pattern:
    return re.compile(rf"<!-- graph:{re.escape(stack)} -->\n.*?<!-- /graph:{re.escape(stack)} -->", re.S)


def embedded(text: str, stack: str) -> str | None:
    found = marker_pattern(stack).search(text)
    return found.group(0) if found else None


def update_readme(text: str, bodies: dict[str, str]) -> str:
    for stack, body in bodies.items():
        if not marker_pattern(stack).search(text):
            raise SystemExit(f"{DOC.relative_to(harness.ROOT)} has no <!-- graph:{stack} --> ... <!-- /graph:{stack} --> markers")
        text = marker_pattern(stack).sub(lambda _m: block(stack, body), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.graph", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", help=f"stacks to draw (default: {' '.join(harness.STACKS)})")
    parser.add_argument("--update-readme", "--update-docs", action="store_true", dest="update_readme",
                        help="rewrite the diagrams embedded in docs/graph.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/graph.md's diagrams are out of date")
    args = parser.parse_args(argv)
    stacks = args.stacks or list(harness.STACKS)
    cli.check_stacks(stacks)
    bodies = {}
    for stack in stacks:
        with cli.evaluating(stack):
            bodies[stack] = markdown(harness.run_stack(stack))
    if args.update_readme or args.check:
        text = DOC.read_text()
        new = update_readme(text, bodies)
        if args.check:
            stale = [s for s in stacks if embedded(text, s) != embedded(new, s)]
            if stale:
                print(f"docs/graph.md diagrams out of date: {', '.join(stale)}; run: venv/bin/python -m tools.graph --update-readme")
                return 1
            print("docs/graph.md diagrams are up to date")
            return 0
        if new != text:
            DOC.write_text(new)
        print(f"docs/graph.md: diagrams of {', '.join(stacks)} {'updated' if new != text else 'already up to date'}")
        return 0
    for stack in stacks:
        print(bodies[stack])
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
