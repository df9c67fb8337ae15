"""Every registration of every stack, compared with a committed snapshot (tests/data/registrations/).

A restructuring of the code (moving modules, splitting packages) must not change what a stack
registers: type, name, URN, parent, inputs, dependencies, deletedWith, provider, custom timeouts and
every other resource option. This test evaluates each stack under the mocks (tests/harness.py) with a
recorder that keeps the whole RegisterResource request, and compares it with the snapshot.

The program's own file paths and line numbers (the request's source position, which names the module
and line that registered the resource) are dropped: moving a module changes them without changing
anything Pulumi diffs. The repository's absolute path is replaced by `<root>` wherever it appears.

When a change is meant to alter the registrations, regenerate the snapshots with
`UPDATE_REGISTRATIONS=1 venv/bin/python -m pytest tests/test_registrations_unchanged.py` and review
the diff in git.
"""

from __future__ import annotations

import json
import os

import pytest
from google.protobuf import json_format

from tests import harness

DATA = harness.ROOT / "tests" / "data" / "registrations"
# Request fields that record where in the program a resource was registered, not what it is.
DROPPED = ("sourcePosition", "stackTrace", "parentStackTraceHandle")
# URN lists whose order is the order the engine's futures resolved in, not part of the resource.
UNORDERED = ("dependencies", "urns")


def normalise(value, key=None):
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items() if k not in DROPPED}
    if isinstance(value, list) and key in UNORDERED:
        return sorted(normalise(v) for v in value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return value.replace(str(harness.ROOT), "<root>")
    return value


def snapshot(stack: str) -> list[dict]:
    """Every RegisterResource request of `stack`, by URN, as plain JSON (plus the URN it got)."""
    recorded: list[dict] = []
    original = harness.Recorder.RegisterResource

    def record(self, request):
        response = original(self, request)
        entry = json_format.MessageToDict(request, preserving_proto_field_name=False)
        entry["urn"] = response.urn
        recorded.append(normalise(entry))
        return response

    harness.Recorder.RegisterResource = record
    try:
        harness.run_stack(stack)
    finally:
        harness.Recorder.RegisterResource = original
    # Resources register as their inputs resolve: the order varies between runs, the set does not.
    return sorted(recorded, key=lambda entry: entry["urn"])


def dump(entries: list[dict]) -> str:
    return json.dumps(entries, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("stack", harness.STACKS)
def test_registrations_match_the_snapshot(stack):
    path = DATA / f"{stack}.json"
    current = dump(snapshot(stack))
    if os.environ.get("UPDATE_REGISTRATIONS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current)
    expected = path.read_text()
    if current == expected:
        return
    before, after = json.loads(expected), json.loads(current)
    assert len(before) == len(after), f"{stack}: {len(before)} registrations in the snapshot, {len(after)} now"
    for old, new in zip(before, after):
        assert old == new, f"{stack}: registration {old.get('urn')} changed:\n{dump([old])}\n->\n{dump([new])}"
    assert current == expected
