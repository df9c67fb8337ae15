"""Render the shell scripts in components/k3s/scripts/ into command text.

A script is `lib.sh` + parameter assignments + the script body. Parameters are quoted with
shlex.quote, so no value can break out of its assignment. Secrets are never parameters: they travel
on the command's stdin (see install.sh).
"""

from __future__ import annotations

import functools
import pathlib
import shlex
from typing import Mapping

SCRIPT_DIR = pathlib.Path(__file__).parent / "scripts"


@functools.cache
def _read(name: str) -> str:
    return (SCRIPT_DIR / name).read_text()


def render(name: str, params: Mapping[str, object]) -> str:
    """The full POSIX sh text of script `name` with `params` assigned before the body."""
    lines = ["#!/bin/sh", f"# kubeflow-k3s: {name}", _read("lib.sh").rstrip("\n")]
    for key in sorted(params):
        value = params[key]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"{key}={shlex.quote(text)}")
    lines.append(_read(name).rstrip("\n"))
    return "\n".join(lines) + "\n"


def as_remote_command(script: str) -> str:
    """Wrap a script for SSH: the remote login shell may not be POSIX, so hand the text to /bin/sh."""
    return "/bin/sh -c " + shlex.quote(script)
