"""Stacks the Kubeflow user tests exercise: the checked-in ones, and cloud variants with more users
(contributors, a tiny quota), an outside identity provider, image overrides and a mixed-architecture
cluster (an arm64 agent next to amd64 nodes)."""

from __future__ import annotations

import copy

from tests import harness
from tests.harness import stack_raw

ARM_AGENT = {"name": "arm-1", "host": "192.0.2.41", "role": "agent", "arch": "arm64",
             "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithArm1HostKey00000000000000000"}
IMAGES = {
    "ghcr.io/dexidp/dex": "registry.example.com/mirror/dex",  # no tag: keeps upstream's
    "ghcr.io/kubeflow/kfp-api-server": "registry.example.com/kfp/api-server:2.16.0-patched",
    "ghcr.io/kubeflow/kfp-driver": "registry.example.com/kfp/driver:2.16.0-patched",
    "ghcr.io/kubeflow/kfp-frontend": "registry.example.com/kfp/frontend:2.16.0-patched",
}


def _kubeflow(**changes) -> dict:
    kf = copy.deepcopy(stack_raw("cloud")["kubeflow"])
    kf.update(changes)
    return kf


USERS = [
    {"name": "alice", "email": "alice@example.com", "quota": {"cpu": "8", "memory": "32Gi", "gpu": "1"},
     "contributors": ["bob@example.com"]},
    {"name": "bob", "email": "bob@example.com", "quota": {"cpu": "50m"}},
    {"name": "carol", "email": "carol@example.com"},
]

# name -> (stack, overrides, extra secrets)
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "cloud-users": ("cloud", {"kubeflow": _kubeflow(users=USERS, images=IMAGES),
                              "nodes": [*stack_raw("cloud")["nodes"], ARM_AGENT]}, {}),
    "cloud-oidc": ("cloud", {"kubeflow": _kubeflow(users=USERS, identityProvider={
        "type": "oidc", "issuer": "https://login.example.com", "clientId": "kubeflow"})},
        {"identityProviderSecret": "FAKE-IDP-CLIENT-SECRET-9f2"}),
}


def raw(name: str) -> tuple[str, dict]:
    """(stack, raw settings) of a checked-in stack or a variant."""
    if name in VARIANTS:
        stack, overrides, _ = VARIANTS[name]
        out = copy.deepcopy(stack_raw(stack))
        out.update(copy.deepcopy(overrides))
        return stack, out
    return name, copy.deepcopy(stack_raw(name))


_runs: dict[str, harness.Run] = {}


def run(name: str, runs: dict[str, harness.Run] | None = None) -> harness.Run:
    if runs is not None and name in runs:
        return runs[name]
    if name not in _runs:
        stack, overrides, secrets = VARIANTS[name]
        _runs[name] = harness.run_stack(stack, overrides=overrides,
                                        secrets={"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"], **secrets})
    return _runs[name]


def run_settings(name: str):
    """The parsed settings of a checked-in stack or a variant."""
    from stacks.settings import parse_settings

    stack, out = raw(name)
    return parse_settings(out, stack)
