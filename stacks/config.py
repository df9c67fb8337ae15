"""Read the stack's Pulumi config into Settings plus its secrets. The only engine-facing part of stacks/."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import pulumi

from .settings import NS, SECRET_KEYS, SECTIONS, ConfigError, Settings, did_you_mean, parse_settings, password_problem

# The layers' sections (stacks/settings/), read with get_object; `profile` is a plain string.
STRUCTURED_KEYS = tuple(k for k in SECTIONS if k != "profile")


@dataclass(frozen=True)
class Secrets:
    ssh_private_key: pulumi.Output[str] | None
    k3s_token: pulumi.Output[str] | None
    admin_password: pulumi.Output[str] | None
    # k3s.registries: registries.yaml with its secrets filled in (a secret Output), or None.
    registries: pulumi.Output[str] | None = None
    registry_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    # the client secret (oidc, github, google) or bind password (ldap) of kubeflow.identityProvider
    identity_provider_secret: pulumi.Output[str] | None = None


# Kubeflow's example password (kubeflow/manifests 26.03 common/dex/base), blocked also by the policy pack.
EXAMPLE_PASSWORD = "12341234"


def all_config() -> dict[str, Any]:
    """Every config key the engine passed, namespaced: the language host hands the program the whole
    stack config as the JSON bag PULUMI_CONFIG (pulumi.runtime.get_config_env), the mocks and the
    Automation API through set_all_config (pulumi.runtime.config.CONFIG). pulumi.Config reads one key
    at a time, so an unknown key is seen only by listing them all here."""
    found = dict(pulumi.runtime.get_config_env())
    found.update(pulumi.runtime.config.CONFIG.get())
    return found


def secret_config_keys() -> set[str]:
    """The config keys stored encrypted (`pulumi config set --secret`), from both places the engine uses."""
    return set(pulumi.runtime.config._SECRET_KEYS.get()) | set(pulumi.runtime.get_config_secret_keys_env())


def _squash(namespace: str) -> str:
    return "".join(c for c in namespace.lower() if c.isalnum())


def namespace_problems(keys) -> list[tuple[str, str]]:
    """Keys under a misspelled project namespace (`kubeflow_k3s:gpu`, `kubeflowk3s:nodes`): Pulumi passes
    them on without a word, and the program would never read them."""
    problems = []
    for full in sorted(keys):
        namespace, sep, key = str(full).partition(":")
        if not sep or namespace == NS:
            continue
        if _squash(namespace) == _squash(NS) or did_you_mean(namespace, [NS]):
            problems.append((full, f"unknown namespace {namespace!r}: this program reads {NS}:{key}"))
    return problems


def _config_value(key: str, value: Any) -> Any:
    """A structured value as pulumi.Config.get_object would return it (the engine passes JSON text)."""
    if key == "profile" or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def load() -> tuple[Settings, Secrets]:
    cfg = pulumi.Config(NS)
    everything = all_config()
    problems = namespace_problems(everything)
    raw: dict[str, Any] = {"profile": cfg.get("profile")}
    for full, value in everything.items():
        namespace, _, key = full.partition(":")
        if namespace == NS and key not in STRUCTURED_KEYS and key not in SECRET_KEYS and key != "profile":
            raw[key] = _config_value(key, value)  # unknown to the model: parse_settings names it
    for key in STRUCTURED_KEYS:
        try:
            value = cfg.get_object(key)
        except pulumi.ConfigTypeError as err:
            raise ConfigError([(key, f"must be a YAML object or list ({err})")]) from None
        if value is not None:
            raw[key] = value
    try:
        settings = parse_settings(raw, stack_name=pulumi.get_stack())
    except ConfigError as err:
        raise ConfigError(problems + err.problems) from None
    present = {k for k in SECRET_KEYS if pulumi.runtime.get_config(f"{NS}:{k}") is not None}
    problems += secret_problems(present)
    if settings.uses_ssh and "sshPrivateKey" not in present:
        problems.append(
            ("sshPrivateKey", "is required for SSH nodes: `pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`")
        )
    # The program sees the plain config value; checking it here fails `pulumi preview` with the key named,
    # before bcrypt would raise inside an apply half-way through `pulumi up`.
    problem = password_problem("adminPassword", pulumi.runtime.get_config(f"{NS}:adminPassword"))
    if problem:
        problems.append(problem)
    if settings.kubeflow.identity_provider is not None and "identityProviderSecret" not in present:
        kind = settings.kubeflow.identity_provider.type
        what = "bind password" if kind == "ldap" else "client secret"
        problems.append(("identityProviderSecret", f"kubeflow.identityProvider ({kind}) needs its {what}: "
                         "`pulumi config set --secret identityProviderSecret`"))
    if problems:
        raise ConfigError(problems)
    notices = secret_warnings(present, secret_config_keys()) + ignored_secret_warnings(settings, present)
    if notices:
        settings = dataclasses.replace(settings, notices=settings.notices + tuple(notices))
    if pulumi.runtime.get_config(f"{NS}:k3sToken") == "":
        present.discard("k3sToken")  # generated instead (secret_warnings says so)
    secrets = Secrets(
        ssh_private_key=cfg.require_secret("sshPrivateKey") if "sshPrivateKey" in present else None,
        k3s_token=cfg.require_secret("k3sToken") if "k3sToken" in present else None,
        admin_password=cfg.require_secret("adminPassword") if "adminPassword" in present else None,
        **registries(settings, cfg),
        identity_provider_secret=(cfg.require_secret("identityProviderSecret")
                                  if "identityProviderSecret" in present else None),
    )
    return settings, secrets


def secret_problems(present: set[str]) -> list[tuple[str, str]]:
    """Secret values that can never work (checked here, where their text is known; never printed)."""
    problems = []
    key = pulumi.runtime.get_config(f"{NS}:sshPrivateKey") if "sshPrivateKey" in present else None
    if isinstance(key, str) and key.strip().startswith(("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")):
        problems.append(("sshPrivateKey", "is a public key (the .pub file): set the private key, "
                                          "`pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519`"))
    if pulumi.runtime.get_config(f"{NS}:adminPassword") == EXAMPLE_PASSWORD:
        problems.append(("adminPassword", "is Kubeflow's example password 12341234, known to everyone: choose "
                                          "another, or unset it to have one generated"))
    return problems


def secret_warnings(present: set[str], secret_keys: set[str]) -> list[str]:
    out = []
    for key in sorted(present):
        if f"{NS}:{key}" not in secret_keys:
            out.append(f"{NS}:{key} is stored in plain text in the stack file: set it again with "
                       f"`pulumi config set --secret {key} ...`")
    if pulumi.runtime.get_config(f"{NS}:k3sToken") == "":
        out.append(f"{NS}:k3sToken is empty: a random cluster token is generated instead")
    return out


def ignored_secret_warnings(settings: Settings, present: set[str]) -> list[str]:
    if "adminPassword" in present and settings.kubeflow.mode != "full":
        return [f"{NS}:adminPassword is ignored with kubeflow.mode: {settings.kubeflow.mode} (there is no Kubeflow login)"]
    return []


def registries(settings: Settings, cfg: pulumi.Config) -> dict[str, Any]:
    """k3s.registries rendered with the secret config keys its `*From` entries name (issue 15)."""
    from components.k3s import node_images_plan

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
