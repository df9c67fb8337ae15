"""Secrets only in secret values, across every layer: with every secret set (and with none, so that the
generated ones are used), no secret or generated credential appears in a plain input of any resource or
in a non-secret stack output. The policy pack's `secrets-stay-secret` rule is the engine-side half."""

from __future__ import annotations

import pytest

from policy import validators
from tests import harness

CASES = [(stack, given) for stack in harness.STACKS for given in ("configured", "generated")]


def run_with(stack: str, given: str) -> harness.Run:
    if given == "generated":
        return harness.run_stack(stack)
    secrets = {"k3sToken": harness.FAKE_SECRETS["k3sToken"], "adminPassword": harness.FAKE_SECRETS["adminPassword"]}
    if stack != "dev":
        secrets["sshPrivateKey"] = harness.FAKE_SECRETS["sshPrivateKey"]
    return harness.run_stack(stack, secrets=secrets)


@pytest.mark.parametrize("stack,given", CASES, ids=[f"{s}-{g}" for s, g in CASES])
def test_no_secret_outside_secret_values(stack, given):
    run = run_with(stack, given)
    needles = [s.strip() for s in harness.FAKE_SECRETS.values()] + [harness.GENERATED_PREFIX]
    leaks = []
    for reg in run.registrations:
        for text in harness.strings_outside_secrets(reg.raw_inputs):
            leaks += [f"{reg.type} {reg.name}: {n[:24]}…" for n in needles if n in text]
            leaks += [f"{reg.type} {reg.name}: {what}" for what, pattern in validators.SECRET_PATTERNS.items()
                      if pattern.search(text)]
    for key, value in run.exports.items():
        if not run.secret_exports[key]:
            for text in harness.strings_outside_secrets(value):
                leaks += [f"output {key}: {n[:24]}…" for n in needles if n in text]
    assert not leaks, "\n".join(sorted(set(leaks)))
