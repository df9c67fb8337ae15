"""What the command-line tools (tools.graph, tools.benchmark, scripts/kubeflow_footprint.py) share: the
stacks there are, one line for a stack that cannot be evaluated (no traceback), each warning once."""

from __future__ import annotations

import contextlib
import pathlib
import sys
from typing import Iterator

import pulumi
import yaml
from pulumi.errors import RunError

from stacks.settings import ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent


class StackError(Exception):
    """A stack that cannot be evaluated; str() is the one line to print."""


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def check_stacks(stacks: list[str]) -> None:
    for stack in stacks:
        if not (ROOT / f"Pulumi.{stack}.yaml").is_file():
            raise StackError(f"no stack {stack!r}: Pulumi.{stack}.yaml does not exist (stacks: {', '.join(stack_names())})")


def one_line(stack: str, err: BaseException) -> str:
    if isinstance(err, ConfigError):
        return f"stack {stack}: invalid stack configuration: " + "; ".join(
            f"{key if ':' in key else 'kubeflow-k3s:' + key}: {msg}" for key, msg in err.problems)
    return f"stack {stack}: {type(err).__name__}: {' '.join(str(err).split())}"


@contextlib.contextmanager
def evaluating(stack: str) -> Iterator[None]:
    """Turns what a bad stack raises into StackError (one line)."""
    try:
        yield
    except (ConfigError, RunError, OSError, yaml.YAMLError, ValueError) as err:
        raise StackError(one_line(stack, err)) from None


@contextlib.contextmanager
def warnings_once() -> Iterator[None]:
    """pulumi.log.warn prints each message once, however often the tool evaluates a stack."""
    original, seen = pulumi.log.warn, set()

    def warn(msg: str, *args, **kwargs) -> None:
        if msg not in seen:
            seen.add(msg)
            original(msg, *args, **kwargs)

    pulumi.log.warn = warn
    try:
        yield
    finally:
        pulumi.log.warn = original


def run(main, argv: list[str] | None = None) -> int:
    """main(argv) with each warning once and a StackError as one line on stderr (exit 2)."""
    with warnings_once():
        try:
            return main(argv)
        except StackError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
