"""The typed settings model of a stack, and its validation: one module per layer, wired here.

`parse_settings(raw)` takes the project's structured config as plain Python values (the shape of
`Pulumi.<stack>.yaml` under the `kubeflow-k3s:` namespace, keys without the namespace) and returns a
frozen `Settings`, or raises `ConfigError` listing *every* problem found, each naming the config key
and what is allowed. It never touches the engine or a host, so the whole model is unit-tested offline
and a bad stack file fails before `pulumi up` creates anything.

Each layer's keys, defaults and checks live together, next to its model (the layers of components/):

    common.py        ConfigError, the Reader that records problems under their key, value checks
    nodes.py         ssh, nodes, preflight    (components/k3s: connection, preflight, nodes)
    k3s.py           k3s                      (components/k3s: config.yaml, air-gap files, registries)
    storage.py       storage                  (components/storage)
    cert_manager.py  tls                      (components/cert_manager)
    istio.py         gateway                  (components/istio)
    gpu.py           gpu                      (components/gpu)
    kubeflow.py      kubeflow                 (components/kubeflow)
    smoke.py         smoke                    (components/smoke)
    images.py        images                   (components/shared/images_plan.py, k3s/node_images.py)

This module holds what spans layers: the `Settings` that gathers them, the order they are read in
(a later section's defaults may follow an earlier one's: `tls.host` from `k3s.apiEndpoint`), and the
checks across sections. Defaults come from the stack's profile (stacks/profiles.py);
docs/configuration.md documents each key. Everything a caller needs is importable from here
(`from stacks.settings import Settings, parse_settings, ConfigError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import profiles
from . import cert_manager, gpu as gpu_settings, images as images_settings, istio, k3s as k3s_settings
from . import kubeflow as kubeflow_settings, nodes as node_settings, smoke as smoke_settings, storage as storage_settings
from .cert_manager import ACME_ISSUERS, ISSUERS, TlsSettings
from .common import (ARCHES, EMAIL_RE, HOST_KEY_RE, NODE_NAME_RE, NS, QUANTITY_RE, ConfigError, Reader,
                     did_you_mean, is_cidr, is_hostname, is_ip)
from .gpu import GPU_ARCHES, GPU_KINDS, GPU_TOOLKITS, MIG_STRATEGIES, GpuSettings
from .images import ImagesSettings
from .istio import GATEWAY_SERVICE_TYPES, GatewaySettings
from .k3s import (K3S_VERSION_RE, PROFILE_FLOORS, REGISTRY_AUTH_SECRETS, Airgap, K3sSettings, Registries,
                  k3s_version_below_floor)
from .kubeflow import (BCRYPT_MAX_BYTES, IDENTITY_PROVIDERS, IDP_FIELDS, KFP_AMD64_ONLY_IMAGES, KUBEFLOW_MODES,
                       RESERVED_NAMESPACES, IdentityProvider, KubeflowSettings, KubeflowUser, Quota,
                       admin_profile_name, password_problem)
from .nodes import CONNECTIONS, ROLES, TAINT_RE, Bastion, Node, PreflightSettings, SshSettings
from .smoke import SmokeSettings
from .storage import STORAGE_CLASSES, LonghornSettings, NfsSettings, StorageSettings

__all__ = [
    "ACME_ISSUERS", "ARCHES", "Airgap", "BCRYPT_MAX_BYTES", "Bastion", "CONNECTIONS", "ConfigError", "EMAIL_RE",
    "GATEWAY_SERVICE_TYPES", "GPU_ARCHES", "GPU_KINDS", "GPU_TOOLKITS", "GatewaySettings", "GpuSettings",
    "HOST_KEY_RE", "IDENTITY_PROVIDERS", "IDP_FIELDS", "ISSUERS", "IdentityProvider", "ImagesSettings",
    "K3S_VERSION_RE", "K3sSettings", "KFP_AMD64_ONLY_IMAGES", "KUBEFLOW_MODES", "KubeflowSettings",
    "KubeflowUser", "LonghornSettings", "MIG_STRATEGIES", "NODE_NAME_RE", "NS", "NfsSettings", "Node",
    "PROFILE_FLOORS", "PreflightSettings", "QUANTITY_RE", "Quota", "REGISTRY_AUTH_SECRETS",
    "RESERVED_NAMESPACES", "ROLES", "Registries", "STORAGE_CLASSES", "SECTIONS", "SECRET_KEYS", "Settings",
    "SmokeSettings", "SshSettings", "StorageSettings", "TAINT_RE", "TlsSettings", "admin_profile_name",
    "did_you_mean", "is_cidr", "is_hostname", "is_ip", "k3s_version_below_floor", "local_paths",
    "parse_settings", "password_problem",
]

# The top-level keys: `profile`, each layer's sections, and the secrets stacks/config.py reads
# separately (a registry's secret keys, named in k3s.registries, are allowed too).
SECTIONS = ("profile", *node_settings.SECTIONS, *k3s_settings.SECTIONS, *storage_settings.SECTIONS,
            *cert_manager.SECTIONS, *istio.SECTIONS, *gpu_settings.SECTIONS, *kubeflow_settings.SECTIONS,
            *smoke_settings.SECTIONS, *images_settings.SECTIONS)
SECRET_KEYS = ("sshPrivateKey", "k3sToken", "adminPassword", "identityProviderSecret")


@dataclass(frozen=True)
class Settings:
    stack_name: str
    profile: str
    ssh: SshSettings
    nodes: tuple[Node, ...]
    k3s: K3sSettings
    preflight: PreflightSettings
    storage: StorageSettings
    tls: TlsSettings
    gateway: GatewaySettings
    gpu: GpuSettings
    kubeflow: KubeflowSettings
    # Warnings found while parsing (settings this stack ignores, placeholders, ...): see warnings().
    notices: tuple[str, ...] = ()
    smoke: SmokeSettings = field(default_factory=SmokeSettings)
    images: ImagesSettings = field(default_factory=ImagesSettings)

    @property
    def servers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_server)

    @property
    def agents(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_server)

    @property
    def first_server(self) -> Node:
        return self.servers[0]

    @property
    def ha(self) -> bool:
        return len(self.servers) > 1

    @property
    def gpu_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.gpu != "none")

    @property
    def uses_ssh(self) -> bool:
        return any(n.connection == "ssh" for n in self.nodes)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def warnings(self) -> list[str]:
        """Things that are allowed on this profile but worth a line in `pulumi preview`."""
        out = []
        for i, n in enumerate(self.nodes):
            if n.connection == "ssh" and not n.host_key:
                out.append(
                    f"{NS}:nodes[{i}].hostKey is not set: the SSH connection to {n.host} accepts any host key. "
                    f"Pin it: `pulumi config set --path 'nodes[{i}].hostKey' \"$(ssh-keyscan -t ed25519 {n.host} "
                    f"2>/dev/null | cut -d' ' -f2-)\"`"
                )
        if self.ssh.bastion and not self.ssh.bastion.host_key:
            out.append(f"{NS}:ssh.bastion.hostKey is not set: the bastion's host key is not checked")
        out += [w for w in [*self.notices, *_environment_warnings(self)] if w not in out]
        return out


def local_paths(settings: Settings) -> dict[str, str]:
    """Config key -> a file or directory on the machine that runs `pulumi up` (relative: to the project)."""
    paths = {}
    if settings.kubeflow.manifests_path:
        paths["kubeflow.manifestsPath"] = settings.kubeflow.manifests_path
    airgap = settings.k3s.airgap
    if airgap:
        for key, value in (("binary", airgap.binary), ("images", airgap.images),
                           ("installScript", airgap.install_script), ("registries", airgap.registries),
                           ("platformImages", airgap.platform_images)):
            if value:
                paths[f"k3s.airgap.{key}"] = value
    return paths


def _environment_warnings(settings: Settings) -> list[str]:
    """Warnings that depend on this machine, not on the config alone: local paths that do not exist."""
    out = []
    for key, path in local_paths(settings).items():
        if not os.path.exists(os.path.expanduser(path)):
            out.append(f"{NS}:{key} {path!r} does not exist on this machine (relative paths start at {os.getcwd()})")
    return out


def parse_settings(raw: Mapping[str, Any], stack_name: str = "dev") -> Settings:
    """Validate and type the stack config. Raises ConfigError naming every bad key."""
    r = Reader()
    raw = r.obj(raw, "", {*SECTIONS, *SECRET_KEYS, *k3s_settings.registry_secret_names(raw)})

    profile_name = r.choice(raw, "profile", "profile", tuple(profiles.PROFILES))
    if profile_name is None:
        raise ConfigError(r.problems)
    prof = profiles.PROFILES[profile_name]

    # Each layer's section, in the order later defaults need earlier values.
    ssh = node_settings.parse_ssh(r, raw.get("ssh"))
    nodes = node_settings.parse_nodes(r, raw.get("nodes"), ssh, prof, profile_name)
    k3s = k3s_settings.parse_k3s(r, raw.get("k3s"), prof, profile_name, node_settings.default_api_endpoint(nodes))
    preflight = node_settings.parse_preflight(r, raw.get("preflight"), prof)
    storage = storage_settings.parse_storage(r, raw.get("storage"), prof)
    tls = cert_manager.parse_tls(r, raw.get("tls"), prof, k3s.api_endpoint)
    gateway = istio.parse_gateway(r, raw.get("gateway"), prof)
    gpu = gpu_settings.parse_gpu(r, raw.get("gpu"), prof)
    kubeflow = kubeflow_settings.parse_kubeflow(r, raw.get("kubeflow"), prof)

    # Checks across sections: what no single key shows.
    kubeflow_settings.check_kfp_architectures(r, kubeflow, nodes)
    node_settings.check_hosts(r, nodes, ssh)
    istio.check_node_ports(r, gateway)
    k3s_settings.check_networks(r, k3s)
    k3s_settings.check_airgap_architectures(r, k3s, {n.arch for n in nodes})
    k3s_settings.check_profile_floors(r, profile_name, k3s,
                                      [(f"nodes[{i}].extraConfig", n.extra_config) for i, n in enumerate(nodes) if n.is_server])
    smoke = smoke_settings.parse_smoke(r, raw.get("smoke"))
    images = images_settings.parse_images(r, raw.get("images"), prof)
    images_settings.check_airgap_platform(r, k3s, kubeflow)

    if r.problems:
        raise ConfigError(r.problems)
    # Settings the stack accepts but does not use, and versions it was not tested with: warnings.
    cert_manager.ignored(r, raw, tls, kubeflow.mode)
    istio.ignored(r, raw, gateway, kubeflow.mode)
    kubeflow_settings.ignored(r, raw, kubeflow)
    gpu_settings.ignored(r, raw, sum(1 for n in nodes if n.gpu != "none"))
    k3s_settings.ignored(r, raw)
    return Settings(
        stack_name=stack_name,
        profile=profile_name,
        ssh=ssh,
        nodes=tuple(nodes),
        k3s=k3s,
        preflight=preflight,
        storage=storage,
        tls=tls,
        gateway=gateway,
        gpu=gpu,
        kubeflow=kubeflow,
        notices=tuple(r.notices),
        smoke=smoke,
        images=images,
    )
