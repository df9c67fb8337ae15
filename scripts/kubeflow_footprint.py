#!/usr/bin/env python3
"""Print the Kubeflow footprint (CPU and memory requests) of each stack, per component.

    venv/bin/python scripts/kubeflow_footprint.py            # every Pulumi.<stack>.yaml
    venv/bin/python scripts/kubeflow_footprint.py dev cloud

The figures are the ones the footprint guard compares with the nodes' allocatable CPU and memory
before it lets `pulumi up` install Kubeflow (components/kubeflow/footprint.py). Reads only the stack files.
"""

from __future__ import annotations

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.kubeflow import footprint  # noqa: E402
from stacks.config import namespace_problems  # noqa: E402
from stacks.settings import NS, ConfigError, parse_settings  # noqa: E402
from tools import cli  # noqa: E402


def stack_settings(stack: str):
    config = (yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
    problems = namespace_problems(config)
    if problems:
        raise ConfigError(problems)
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NS}:")}
    settings = parse_settings(raw, stack)
    for warning in settings.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return settings


def main(argv: list[str]) -> int:
    stacks = argv or cli.stack_names()
    cli.check_stacks(stacks)
    for i, stack in enumerate(stacks):
        with cli.evaluating(stack):
            settings = stack_settings(stack)
        fp = footprint.footprint(settings)
        if i:
            print()
        print(f"== {stack} (profile {settings.profile}, kubeflow.mode {settings.kubeflow.mode})")
        print(fp.table() if fp.needs else "no Kubeflow")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, sys.argv[1:]))
