"""Shared fixtures: each stack evaluated once per test session under mocks (see harness.py)."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests import harness

UPSTREAM = pathlib.Path(os.environ.get("KUBEFLOW_K3S_UPSTREAM", harness.ROOT.parent / "shared" / "upstream"))


@pytest.fixture(scope="session")
def runs() -> dict[str, harness.Run]:
    """{stack: Run} for dev, edge and cloud with their checked-in stack files."""
    return {stack: harness.run_stack(stack) for stack in harness.STACKS}


@pytest.fixture(scope="session")
def upstream() -> pathlib.Path:
    """The pinned upstream reference data (../shared/upstream, or $KUBEFLOW_K3S_UPSTREAM)."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream reference data not found at {UPSTREAM} (set KUBEFLOW_K3S_UPSTREAM)")
    return UPSTREAM
