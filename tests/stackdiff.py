"""Compare two offline evaluations of a stack: which resources a settings change touches.

`evaluate_change(stack, {"k3s.version": "v1.34.7+k3s1"})` runs the stack as checked in and again with the
setting changed (a dotted path into the stack's config, merged into the stack file's value), and returns
a `Change`: the resources whose inputs differ, the ones added and the ones removed, keyed by URN. That is
what `pulumi preview --diff` would show as update/replace, create and delete.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from tests import harness

K8S_PROVIDER_TYPE = "pulumi:providers:kubernetes"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def stack_config(stack: str) -> dict[str, Any]:
    """The `kubeflow-k3s:` keys of Pulumi.<stack>.yaml, without the namespace."""
    data = yaml.safe_load((harness.ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    prefix = f"{harness.PROJECT}:"
    return {k[len(prefix):]: v for k, v in (data.get("config") or {}).items() if k.startswith(prefix)}


def overrides_for(stack: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Turn {"a.b.c": value} into harness overrides of top-level keys, keeping the stack file's siblings."""
    base = stack_config(stack)
    out: dict[str, Any] = {}
    for path, value in changes.items():
        top, *rest = path.split(".")
        if not rest:
            out[top] = value
            continue
        current = out.get(top, copy.deepcopy(base.get(top)) or {})
        node = current
        for key in rest[:-1]:
            node = node.setdefault(key, {})
        node[rest[-1]] = value
        out[top] = current
    return out


@dataclass
class Change:
    before: harness.Run
    after: harness.Run
    changed: set[str]  # URNs whose inputs differ
    added: set[str]
    removed: set[str]

    @property
    def touched(self) -> set[str]:
        return self.changed | self.added | self.removed

    def registration(self, urn: str) -> harness.Registration:
        run = self.before if urn in {r.urn for r in self.before.registrations} else self.after
        return run.by_urn(urn)

    def names(self, urns: set[str] | None = None) -> list[str]:
        return sorted(f"{self.registration(u).type}::{self.registration(u).name}" for u in (self.touched if urns is None else urns))

    def describe(self) -> str:
        return (
            f"changed: {self.names(self.changed)}\nadded: {self.names(self.added)}\nremoved: {self.names(self.removed)}"
        )


def compare(before: harness.Run, after: harness.Run) -> Change:
    a = {r.urn: r for r in before.registrations}
    b = {r.urn: r for r in after.registrations}
    changed = {urn for urn in a.keys() & b.keys() if a[urn].inputs != b[urn].inputs}
    return Change(before, after, changed, set(b) - set(a), set(a) - set(b))


def evaluate_change(stack: str, changes: dict[str, Any], before: harness.Run | None = None) -> Change:
    before = before or harness.run_stack(stack)
    after = harness.run_stack(stack, overrides=overrides_for(stack, changes))
    return compare(before, after)


def ancestors(run: harness.Run, urn: str) -> list[harness.Registration]:
    out = []
    parent = run.by_urn(urn).parent
    while parent:
        try:
            reg = run.by_urn(parent)
        except StopIteration:
            break
        out.append(reg)
        parent = reg.parent
    return out


def under(change: Change, urn: str, roots: set[str]) -> bool:
    """Is `urn` one of `roots` or a descendant of one (in whichever run has it)?"""
    if urn in roots:
        return True
    run = change.before if urn in {r.urn for r in change.before.registrations} else change.after
    return any(r.urn in roots for r in ancestors(run, urn))


def provider_urns(run: harness.Run) -> set[str]:
    return {r.urn for r in run.registrations if r.type == K8S_PROVIDER_TYPE}


def kubernetes_resources(run: harness.Run) -> list[harness.Registration]:
    """Every resource created through the Kubernetes provider (custom objects and provider-side components)."""
    return [r for r in run.registrations if r.type.startswith("kubernetes:")]


def install_commands(run: harness.Run) -> list[harness.Registration]:
    return [r for r in run.registrations if r.type.startswith("command:") and r.name.endswith("-install")]


def bump_version(version: str) -> str:
    """v1.19.4 -> v1.19.5, 0.20.0 -> 0.20.1 (the last number + 1)."""
    head, _, last = version.rpartition(".")
    digits = "".join(c for c in last if c.isdigit())
    rest = last[len(digits):]
    return f"{head}.{int(digits) + 1}{rest}" if digits else version + ".1"
