"""Smoke-step settings: the `smoke` section (whether `pulumi up` ends with the smoke check, and its
deadline).

Read by the smoke layer (components/smoke/): the login, dashboard, pipeline-run and GPU checks of
docs/smoke-test.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import Reader

SECTIONS = ("smoke",)


@dataclass(frozen=True)
class SmokeSettings:
    """The smoke step at the end of `pulumi up` (components/smoke/smoke_plan.py, docs/smoke-test.md)."""

    enabled: bool = True
    timeout_seconds: int = 1200


def parse_smoke(r: Reader, value: Any) -> SmokeSettings:
    smd = r.obj(value, "smoke", {"enabled", "timeoutSeconds"})
    return SmokeSettings(
        enabled=r.boolean(smd, "enabled", "smoke.enabled", True),
        timeout_seconds=r.integer(smd, "timeoutSeconds", "smoke.timeoutSeconds", 1200, 120, 7200),
    )
