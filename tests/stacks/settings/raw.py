"""Raw stack config as the settings tests start from it: a minimal edge stack, a checked-in stack with
changes, and the problems parse_settings names."""

from __future__ import annotations

import copy

import pytest

from stacks.settings import ConfigError, Settings, parse_settings
from tests.harness import stack_raw

SSH_NODE = {"name": "s1", "host": "192.0.2.11", "role": "server"}


def edge(**changes) -> dict:
    """The smallest edge stack: one SSH server."""
    raw = {"profile": "edge", "ssh": {"user": "ubuntu"}, "nodes": [dict(SSH_NODE)]}
    raw.update(changes)
    return raw


def stack(name: str, **changes) -> dict:
    """A checked-in stack file's config with top-level sections replaced."""
    raw = copy.deepcopy(stack_raw(name))
    raw.update(changes)
    return raw


def settings(name: str, **changes) -> Settings:
    return parse_settings(stack(name, **changes), name)


def problems(raw: dict, stack_name: str = "dev") -> dict[str, str]:
    """{key: message} of the ConfigError parse_settings raises (it must raise)."""
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, stack_name)
    return dict(err.value.problems)
