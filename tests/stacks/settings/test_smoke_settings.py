"""stacks/settings/smoke.py: the `smoke` section."""

from __future__ import annotations

from tests.stacks.settings.raw import problems, settings, stack


def test_the_smoke_step_is_on_by_default_with_a_bounded_deadline():
    for name in ("dev", "edge", "cloud"):
        smoke = settings(name).smoke
        assert smoke.enabled is True and 120 <= smoke.timeout_seconds <= 7200
    off = settings("edge", smoke={"enabled": False, "timeoutSeconds": 600}).smoke
    assert (off.enabled, off.timeout_seconds) == (False, 600)


def test_smoke_settings_validate():
    found = problems(stack("edge", smoke={"enabled": "yes", "timeoutSeconds": 5, "retries": 2}), "edge")
    assert {"smoke.enabled", "smoke.timeoutSeconds", "smoke.retries"} <= set(found)
    assert "from 120 to 7200" in found["smoke.timeoutSeconds"] and "did you mean" not in found["smoke.retries"]
