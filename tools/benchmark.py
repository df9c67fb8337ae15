"""How long each stack takes to evaluate offline, how many resources it has, how long its chain of waits is.

    venv/bin/python -m tools.benchmark                 # every stack, 5 evaluations each
    venv/bin/python -m tools.benchmark cloud -n 20     # one stack, more samples
    venv/bin/python -m tools.benchmark --json          # machine-readable

Not a test (timings depend on the machine): run it before and after a change and compare, so that a
change that slows previews (program evaluation is the part of `pulumi preview` this repository owns) or
lengthens the install chain (the critical path `pulumi up` must walk one step after another) is seen in
review. Evaluation uses the test mocks (tests/harness.py): no engine, no providers, no hosts.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time

from tests import harness
from tools import cli, graph


def measure(stack: str, samples: int) -> dict:
    harness.run_stack(stack)  # warm-up: imports and caches, not what a change costs
    times = []
    run = None
    for _ in range(samples):
        start = time.perf_counter()
        run = harness.run_stack(stack)
        times.append(time.perf_counter() - start)
    assert run is not None
    g = graph.build(run)
    return images_row(stack, run, g) | {
        "stack": stack,
        "evaluation_ms_median": round(statistics.median(times) * 1000, 1),
        "evaluation_ms_min": round(min(times) * 1000, 1),
        "evaluation_ms_max": round(max(times) * 1000, 1),
        "samples": samples,
        "resources": len(g.resources),
        "components": len(g.components),
        "critical_path_length": g.depth,
        "critical_path": [g.resources[u].name for u in g.critical],
    }


def images_row(stack: str, run: harness.Run, g: graph.Graph) -> dict:
    """Issue 15: images the stack runs, how many K3s pre-pulls per node as soon as it runs (their pulls
    leave the chain of waits: each was pulled when its workload was created, at the end of it), and
    the critical path with pre-pull off, for comparison."""
    from components.shared import images_plan
    from components.k3s import node_images_plan
    from tools import images

    s = images.stack_settings(stack)
    lists = {n.name: node_images_plan.prepull_list(s, n).split() for n in s.nodes}
    off = graph.build(harness.run_stack(stack, overrides={"images": {"prePull": False}}))
    return {
        "images": len(images_plan.all_images(s)),
        "prepulled_images": len({r for refs in lists.values() for r in refs}),
        "prepulled_per_node": {n: len(refs) for n, refs in lists.items()},
        "prepull_commands": sum(1 for r in run.registrations if r.name.endswith("-prepull")),
        "critical_path_length_without_prepull": off.depth,
    }


def table(rows: list[dict]) -> str:
    head = ("| stack | evaluation (median, min–max) | resources | components | critical path (pre-pull off → on) "
            "| images | pre-pulled off the critical path |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['stack']} | {r['evaluation_ms_median']} ms ({r['evaluation_ms_min']}–{r['evaluation_ms_max']}, "
            f"n={r['samples']}) | {r['resources']} | {r['components']} | "
            f"{r['critical_path_length_without_prepull']} → {r['critical_path_length']} | {r['images']} | "
            f"{r['prepulled_images']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", help=f"default: {' '.join(harness.STACKS)}")
    parser.add_argument("-n", "--samples", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("pulumi").setLevel(logging.ERROR)
    stacks = list(args.stacks or harness.STACKS)
    cli.check_stacks(stacks)
    rows = []
    for stack in stacks:
        with cli.evaluating(stack):
            rows.append(measure(stack, max(1, args.samples)))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        for r in rows:
            print(f"\n{r['stack']} critical path ({r['critical_path_length']}): {' → '.join(r['critical_path'])}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
