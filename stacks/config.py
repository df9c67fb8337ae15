"""Read the stack's Pulumi config into Settings plus its secrets. The only engine-facing part of stacks/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from .settings import NS, ConfigError, Settings, parse_settings, password_problem

STRUCTURED_KEYS = ("ssh", "nodes", "k3s", "preflight", "storage", "tls", "gateway", "gpu", "kubeflow")
SECRET_KEYS = ("sshPrivateKey", "k3sToken", "adminPassword", "identityProviderSecret")


@dataclass(frozen=True)
class Secrets:
    ssh_private_key: pulumi.Output[str] | None
    k3s_token: pulumi.Output[str] | None
    admin_password: pulumi.Output[str] | None
    # the client secret (oidc, github, google) or bind password (ldap) of kubeflow.identityProvider
    identity_provider_secret: pulumi.Output[str] | None = None


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
    # The program sees the plain config value; checking it here fails `pulumi preview` with the key named,
    # before bcrypt would raise inside an apply half-way through `pulumi up`.
    problem = password_problem("adminPassword", pulumi.runtime.get_config(f"{NS}:adminPassword"))
    if problem:
        raise ConfigError([problem])
    if settings.kubeflow.identity_provider is not None and "identityProviderSecret" not in present:
        kind = settings.kubeflow.identity_provider.type
        what = "bind password" if kind == "ldap" else "client secret"
        raise ConfigError([("identityProviderSecret", f"kubeflow.identityProvider ({kind}) needs its {what}: "
                            "`pulumi config set --secret identityProviderSecret`")])
    secrets = Secrets(
        ssh_private_key=cfg.require_secret("sshPrivateKey") if "sshPrivateKey" in present else None,
        k3s_token=cfg.require_secret("k3sToken") if "k3sToken" in present else None,
        admin_password=cfg.require_secret("adminPassword") if "adminPassword" in present else None,
        identity_provider_secret=(cfg.require_secret("identityProviderSecret")
                                  if "identityProviderSecret" in present else None),
    )
    return settings, secrets
