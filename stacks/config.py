"""Read the stack's Pulumi config into Settings plus its secrets. The only engine-facing part of stacks/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import pulumi

from .settings import NS, ConfigError, Settings, parse_settings

STRUCTURED_KEYS = ("ssh", "nodes", "k3s", "preflight", "storage", "tls", "gateway", "gpu", "kubeflow", "images")
SECRET_KEYS = ("sshPrivateKey", "k3sToken", "adminPassword")


@dataclass(frozen=True)
class Secrets:
    ssh_private_key: pulumi.Output[str] | None
    k3s_token: pulumi.Output[str] | None
    admin_password: pulumi.Output[str] | None
    # k3s.registries: registries.yaml with its secrets filled in (a secret Output), or None.
    registries: pulumi.Output[str] | None = None
    registry_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


def load() -> tuple[Settings, Secrets]:
    cfg = pulumi.Config(NS)
    raw: dict[str, Any] = {"profile": cfg.get("profile")}
    for key in STRUCTURED_KEYS:
        try:
            value = cfg.get_object(key)
        except pulumi.ConfigTypeError as err:
            raise ConfigError([(key, f"must be a YAML object or list ({err})")]) from None
        if value is not None:
            raw[key] = value
    settings = parse_settings(raw, stack_name=pulumi.get_stack())
    present = {k for k in SECRET_KEYS if pulumi.runtime.get_config(f"{NS}:{k}") is not None}
    if settings.uses_ssh and "sshPrivateKey" not in present:
        raise ConfigError(
            [("sshPrivateKey", "is required for SSH nodes: `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`")]
        )
    secrets = Secrets(
        ssh_private_key=cfg.require_secret("sshPrivateKey") if "sshPrivateKey" in present else None,
        k3s_token=cfg.require_secret("k3sToken") if "k3sToken" in present else None,
        admin_password=cfg.require_secret("adminPassword") if "adminPassword" in present else None,
        **registries(settings, cfg),
    )
    return settings, secrets


def registries(settings: Settings, cfg: pulumi.Config) -> dict[str, Any]:
    """k3s.registries rendered with the secret config keys its `*From` entries name (issue 15)."""
    from components import node_images_plan

    regs = settings.k3s.registries
    if regs is None:
        return {}
    missing = [n for n in regs.secret_keys if pulumi.runtime.get_config(f"{NS}:{n}") is None]
    if missing:
        raise ConfigError([(n, "is named by k3s.registries but not set: `pulumi config set --secret "
                               f"{n} <value>`") for n in missing])
    values = {n: cfg.require_secret(n) for n in regs.secret_keys}
    text = pulumi.Output.all(**values).apply(lambda v: node_images_plan.render_registries(regs, v)) if values \
        else pulumi.Output.from_input(node_images_plan.render_registries(regs, {}))
    return {"registries": pulumi.Output.secret(text), "registry_secrets": values}
