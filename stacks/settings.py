"""The typed settings model of a stack, and its validation.

`parse_settings(raw)` takes the project's structured config as plain Python values (the shape of
`Pulumi.<stack>.yaml` under the `kubeflow-k3s:` namespace, keys without the namespace) and returns a
frozen `Settings`, or raises `ConfigError` listing *every* problem found, each naming the config key
and what is allowed. It never touches the engine or a host, so the whole model is unit-tested offline
and a bad stack file fails before `pulumi up` creates anything.

Defaults come from the stack's profile (stacks/profiles.py); docs/configuration.md documents
each key.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from pulumi.errors import RunError

from . import k3s_flags, kubeflow_components, profiles, versions

NS = "kubeflow-k3s"
ROLES = ("server", "agent")
CONNECTIONS = ("ssh", "local")
ARCHES = ("amd64", "arm64")
GPU_KINDS = ("none", "nvidia", "jetson")
# Which architectures each GPU path supports. The GPU operator runs on x86_64 and arm64 servers with
# a host driver; Jetson (Tegra) boards are arm64 only and are not supported by the operator.
GPU_ARCHES = {"none": ARCHES, "nvidia": ("amd64", "arm64"), "jetson": ("arm64",)}
STORAGE_CLASSES = ("local-path", "longhorn", "nfs")
ISSUERS = ("selfsigned", "letsencrypt")
MIG_STRATEGIES = ("single", "mixed")
GPU_TOOLKITS = ("host", "operator")
KUBEFLOW_MODES = ("full", "pipelines", "none")
GATEWAY_SERVICE_TYPES = ("LoadBalancer", "NodePort")

K3S_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$")
NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
HOST_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+=*( .*)?$")
TAINT_RE = re.compile(r"^[A-Za-z0-9./-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")


class ConfigError(RunError, ValueError):
    """Invalid stack config. `problems` lists every (key, message) pair found.

    A RunError, so `pulumi preview` prints the message alone ("error: invalid stack configuration: ...")
    instead of a Python traceback."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        # A key with its own namespace (a misspelled `kubeflow_k3s:gpu`) is printed as it is.
        lines = [f"  {key if ':' in key else f'{NS}:{key}'}: {msg}" for key, msg in problems]
        super().__init__("invalid stack configuration:\n" + "\n".join(lines))


def k3s_version_below_floor(version: str) -> bool:
    """Is a vX.Y.Z+k3sN release older than versions.K3S_MIN_VERSIONS allows?"""
    def key(v: str) -> tuple[int, ...]:
        m = K3S_VERSION_RE.match(v)
        assert m, v
        return tuple(int(g) for g in m.groups())

    have = key(version)
    floors = {tuple(int(x) for x in minor.split(".")): key(v) for minor, v in versions.K3S_MIN_VERSIONS.items()}
    minor = have[:2]
    if minor < min(floors):
        return True
    return minor in floors and have < floors[minor]


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' for the closest of `choices`, '' when none is close (difflib's ratio >= 0.6)."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    if not close:
        # A different case or separator (`apiendpoint`, `api_endpoint`) is no typo difflib always sees.
        squash = re.sub(r"[-_.]", "", str(word)).lower()
        close = [c for c in sorted(choices) if re.sub(r"[-_.]", "", c).lower() == squash][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
        return True
    except ValueError:
        return False


def is_hostname(value: str) -> bool:
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    # An all-numeric dotted name (999.1.1.1) is a mistyped IP address, not a hostname.
    if all(label.isdigit() for label in labels):
        return False
    return all(HOSTNAME_LABEL_RE.match(label) for label in labels)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bastion:
    host: str
    user: str
    port: int = 22
    host_key: str | None = None


@dataclass(frozen=True)
class SshSettings:
    user: str | None = None
    port: int = 22
    bastion: Bastion | None = None
    # pulumi-command dials without a pause between tries; freshly booted edge hosts need more tries.
    dial_error_limit: int = 20
    per_dial_timeout: int = 15


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    connection: str
    host: str | None
    port: int | None = None
    user: str | None = None
    host_key: str | None = None
    arch: str = "amd64"
    gpu: str = "none"
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()
    internal_address: str | None = None
    extra_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_server(self) -> bool:
        return self.role == "server"


@dataclass(frozen=True)
class Airgap:
    binary: str
    images: str
    install_script: str
    registries: str | None = None
    # Images of the platform (a .tar or a folder of .tar image archives, `tools.images bundle`),
    # imported on each node before anything is applied (components/k3s/node_images.py).
    platform_images: str | None = None


# K3s registries.yaml keys (docs.k3s.io "Private Registry Configuration"). Secret values never sit in
# the stack file: `<key>From` names a secret config key (`pulumi config set --secret NAME`).
REGISTRY_AUTH_SECRETS = {"password": "passwordFrom", "auth": "authFrom", "token": "tokenFrom",
                         "identity_token": "identityTokenFrom"}


@dataclass(frozen=True)
class Registries:
    """k3s.registries: `mirrors` as K3s takes them; `configs` with secret parts named, not given."""

    mirrors: Mapping[str, Any] = field(default_factory=dict)
    configs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        names = []
        for cfg in self.configs.values():
            for ref in REGISTRY_AUTH_SECRETS.values():
                name = (cfg.get("auth") or {}).get(ref)
                if name and name not in names:
                    names.append(name)
        return tuple(names)


@dataclass(frozen=True)
class K3sSettings:
    version: str
    api_endpoint: str
    tls_sans: tuple[str, ...] = ()
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    agent_extra_config: Mapping[str, Any] = field(default_factory=dict)
    airgap: Airgap | None = None
    registries: Registries | None = None
    secrets_encryption: bool = False
    protect_kernel_defaults: bool = False
    install_timeout_seconds: int = 900
    ready_timeout_seconds: int = 600


@dataclass(frozen=True)
class ImagesSettings:
    # Write each node's image list into K3s's images directory once K3s runs (components/k3s/node_images.py).
    pre_pull: bool = True
    # Disk the pre-pulled images need per node, checked by the preflight (0: not checked; the
    # compressed sizes are not known offline, see docs/images.md).
    disk_gib: int = 0


@dataclass(frozen=True)
class PreflightSettings:
    min_memory_mib: int
    min_disk_gib: int


@dataclass(frozen=True)
class LonghornSettings:
    # None: Longhorn's default of 3, capped at the nodes that can hold a replica (components/storage/storage_plan.py).
    replicas: int | None = None


@dataclass(frozen=True)
class NfsSettings:
    server: str
    path: str


@dataclass(frozen=True)
class StorageSettings:
    default: str
    local_path: str = "/var/lib/rancher/k3s/storage"
    longhorn: LonghornSettings | None = None
    nfs: NfsSettings | None = None


@dataclass(frozen=True)
class TlsSettings:
    host: str
    issuer: str
    email: str | None = None


@dataclass(frozen=True)
class GatewaySettings:
    service_type: str
    http_node_port: int | None = None
    https_node_port: int | None = None


@dataclass(frozen=True)
class GpuSettings:
    time_slicing: int = 0
    mig: str | None = None
    install_driver: bool = False
    # Who provides the NVIDIA container toolkit on `gpu: nvidia` nodes: "host" (installed on the host,
    # K3s registers the runtime at start) or "operator" (the GPU operator installs it and restarts K3s).
    toolkit: str = "operator"


@dataclass(frozen=True)
class Quota:
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


@dataclass(frozen=True)
class KubeflowUser:
    name: str
    email: str
    quota: Quota | None = None
    # Emails of people who may work in this user's namespace (Profile contributors).
    contributors: tuple[str, ...] = ()


# Namespaces the platform uses (Kubernetes' own, the platform layers', Kubeflow's and KFP's): a
# Profile of one of these names would take over (or collide with) a system namespace, so they are
# refused as kubeflow.users[i].name whichever components are switched on (switching one on later must
# not meet a user's namespace). tests/contract/test_kubeflow_users.py proves this covers every
# namespace of the rendered objects of every component and every platform layer.
RESERVED_NAMESPACES = frozenset({
    "default", "kube-system", "kube-public", "kube-node-lease",
    "cert-manager", "istio-system", "auth", "oauth2-proxy", "kubeflow", "kubeflow-system",
    "knative-serving", "knative-eventing", "longhorn-system", "nfs-provisioner", "local-path-storage",
    "gpu-operator", "nvidia-device-plugin",
})
# Dex's connector types (dexidp.io/docs/connectors): kubeflow.identityProvider.type.
IDENTITY_PROVIDERS = ("oidc", "github", "google", "ldap")
# The fields each connector type takes from kubeflow.identityProvider (beyond type and name), required
# ones first; the secret (client secret / LDAP bind password) is the Pulumi secret identityProviderSecret.
IDP_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "oidc": (("issuer", "clientId"), ("scopes",)),
    "github": (("clientId",), ("orgs",)),
    "google": (("clientId",), ("hostedDomains",)),
    "ldap": (("host", "bindDN", "userBaseDN"), ("userFilter", "usernameAttr", "emailAttr", "insecureNoSSL")),
}
# bcrypt (Dex's password hashes) uses only the first 72 bytes of a password; Python's bcrypt refuses more.
BCRYPT_MAX_BYTES = 72
# KFP 2.16 publishes these images for amd64 only (kubeflow/pipelines#12705, #10309, #13957);
# tests/contract/test_kubeflow_images.py proves the list is every such image the rendered KFP uses.
KFP_AMD64_ONLY_IMAGES = (
    "gcr.io/tfx-oss-public/ml_metadata_store_server",
    "ghcr.io/kubeflow/kfp-api-server",
    "ghcr.io/kubeflow/kfp-cache-deployer",
    "ghcr.io/kubeflow/kfp-cache-server",
    "ghcr.io/kubeflow/kfp-driver",
    "ghcr.io/kubeflow/kfp-frontend",
    "ghcr.io/kubeflow/kfp-launcher",
    "ghcr.io/kubeflow/kfp-metadata-envoy",
    "ghcr.io/kubeflow/kfp-metadata-writer",
    "ghcr.io/kubeflow/kfp-persistence-agent",
    "ghcr.io/kubeflow/kfp-scheduled-workflow-controller",
    "ghcr.io/kubeflow/kfp-viewer-crd-controller",
    "ghcr.io/kubeflow/kfp-visualization-server",
)
IMAGE_NAME_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
IMAGE_REF_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
                          r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


@dataclass(frozen=True)
class IdentityProvider:
    """An upstream identity provider Dex delegates logins to (a Dex connector)."""

    type: str
    name: str
    config: Mapping[str, Any]  # the connector's fields as configured (camelCase, Dex's names)


@dataclass(frozen=True)
class KubeflowSettings:
    mode: str
    components: Mapping[str, bool]
    users: tuple[KubeflowUser, ...]
    admin_email: str
    manifests_path: str | None = None
    # Components switched on because a switched-on component needs them (stacks/kubeflow_components.py).
    auto_enabled: tuple[str, ...] = ()
    identity_provider: IdentityProvider | None = None
    # upstream image name (no tag) -> replacement reference (kubeflow.images)
    images: Mapping[str, str] = field(default_factory=dict)


def password_problem(key: str, value: str | None) -> tuple[str, str] | None:
    """A (key, message) when a password cannot become a Dex (bcrypt) hash; checked by stacks/config.py
    on the plain config value before anything touches a host."""
    if value is not None and len(value.encode()) > BCRYPT_MAX_BYTES:
        return (key, f"is {len(value.encode())} bytes; Dex stores passwords as bcrypt hashes, which take at most "
                     f"{BCRYPT_MAX_BYTES} bytes: choose a shorter password")
    return None


@dataclass(frozen=True)
class SmokeSettings:
    """The smoke step at the end of `pulumi up` (components/smoke/smoke_plan.py, docs/smoke-test.md)."""

    enabled: bool = True
    timeout_seconds: int = 1200


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


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

_MISSING = object()


class _Reader:
    """Reads typed values out of nested dicts, recording problems under their config key path."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        self.notices: list[str] = []  # warnings found while parsing (Settings.warnings())

    def fail(self, key: str, msg: str) -> None:
        self.problems.append((key, msg))

    def warn(self, key: str, msg: str) -> None:
        line = f"{NS}:{key} {msg}"
        if line not in self.notices:
            self.notices.append(line)

    def obj(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"must be an object, got {type(value).__name__}")
            return {}
        for k in value:
            if k not in allowed:
                self.fail(
                    f"{key}.{k}" if key else k,
                    f"unknown setting{did_you_mean(k, allowed)}; allowed: {', '.join(sorted(allowed))}",
                )
        return dict(value)

    def quantity(self, d: Mapping[str, Any], k: str, key: str) -> str | None:
        """A Kubernetes quantity; a number (what `pulumi config set --path` stores for `8`) is one too."""
        value = d.get(k)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str) or not QUANTITY_RE.match(value.strip()):
            self.fail(key, f"{value!r} is not a Kubernetes quantity (e.g. \"8\", \"500m\", \"32Gi\")")
            return None
        return value.strip()

    def string(self, d: Mapping[str, Any], k: str, key: str, default: Any = _MISSING) -> Any:
        value = d.get(k, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                self.fail(key, "is required")
                return None
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {value!r}")
            return default if default is not _MISSING else None
        return value.strip()

    def choice(self, d: Mapping[str, Any], k: str, key: str, allowed: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.string(d, k, key, default)
        if value is not None and value not in allowed:
            self.fail(key, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
            return default if default is not _MISSING else None
        return value

    def integer(self, d: Mapping[str, Any], k: str, key: str, default: int, lo: int, hi: int) -> int:
        value = d.get(k, None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.fail(key, f"must be a whole number from {lo} to {hi}, got {value!r}")
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(key, f"must be a whole number from {lo} to {hi}, got {value!r}")
            return default
        if not lo <= number <= hi:
            self.fail(key, f"must be from {lo} to {hi}, got {number}")
            return default
        return number

    def boolean(self, d: Mapping[str, Any], k: str, key: str, default: bool) -> bool:
        value = d.get(k, None)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"must be true or false, got {value!r}")
        return default

    def host(self, d: Mapping[str, Any], k: str, key: str, default: Any = _MISSING) -> Any:
        provided = d.get(k) is not None
        value = self.string(d, k, key, default)
        if provided and value is not None and not (is_ip(value) or is_hostname(value)):
            self.fail(key, f"{value!r} is neither an IP address nor a hostname")
            return None
        return value

    def host_key(self, d: Mapping[str, Any], k: str, key: str) -> str | None:
        value = self.string(d, k, key, None)
        if value is not None and not HOST_KEY_RE.match(value):
            self.fail(
                key,
                "must be one public host key line as printed by `ssh-keyscan -t ed25519 <host>` "
                "without the host name, e.g. 'ssh-ed25519 AAAAC3...'",
            )
            return None
        if value is not None and "replacewith" in value.lower():
            # The example stack files ship such placeholders: no real host has them, so SSH would fail.
            self.warn(key, "is a placeholder from the example stack file, not the host's key: "
                           "replace it with `ssh-keyscan -t ed25519 <host> | cut -d' ' -f2-`")
        return value

    def string_map(self, d: Mapping[str, Any], k: str, key: str) -> dict[str, str]:
        value = d.get(k, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            self.fail(key, "must be an object of string values")
            return {}
        return {str(a): str(b).lower() if isinstance(b, bool) else str(b) for a, b in value.items()}


def _listed(value: Any) -> list[Any]:
    """A K3s list value as K3s reads it: a YAML list, or one comma-separated string."""
    if isinstance(value, list):
        return value
    return [p.strip() for p in value.split(",")] if isinstance(value, str) else [value]


def _k3s_value_problem(key: str, value: Any) -> str | None:
    """What is wrong with a K3s config value this program can check before it reaches a host."""
    if key in k3s_flags.CIDR_KEYS:
        bad = [v for v in _listed(value) if not (isinstance(v, str) and is_cidr(v))]
        if bad:
            return f"{bad[0]!r} is not a network in CIDR notation (e.g. 10.42.0.0/16; dual-stack: 'IPv4-CIDR,IPv6-CIDR')"
    elif key in k3s_flags.IP_KEYS:
        bad = [v for v in _listed(value) if not (isinstance(v, str) and is_ip(v))]
        if bad:
            return f"{bad[0]!r} is not an IP address"
    elif key == "tls-san":
        bad = [v for v in _listed(value)
               if not (isinstance(v, str) and (is_ip(v) or is_hostname(v.removeprefix("*."))))]
        if bad:
            return f"{bad[0]!r} is neither an IP address nor a hostname"
    return None


def _k3s_config_map(r: _Reader, value: Any, key: str, allowed: frozenset[str], role: str,
                    one_of_many_servers: bool = False) -> dict[str, Any]:
    """`one_of_many_servers`: a node's own extraConfig on a server of an HA stack, where the keys every
    server must agree on (k3s_flags.CLUSTER_WIDE_KEYS) are refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        r.fail(key, "must be an object of K3s config.yaml keys")
        return {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        base = k[:-1] if k.endswith("+") else k  # K3s appends to a list for a key ending in `+`
        if base in k3s_flags.MANAGED_KEYS:
            r.fail(f"{key}.{k}", f"is managed by this program: {k3s_flags.MANAGED_KEYS[base]}")
        elif base in k3s_flags.OWNED_KEYS:
            r.fail(f"{key}.{k}", f"is set by this program: {k3s_flags.OWNED_KEYS[base]}")
        elif base not in allowed:
            r.fail(
                f"{key}.{k}",
                f"unknown K3s {role} setting{did_you_mean(base, allowed)}; keys are K3s {role} flag names "
                f"without dashes (see `k3s {role} --help` for {versions.K3S_VERSION})",
            )
        elif one_of_many_servers and (
            base in k3s_flags.CLUSTER_WIDE_KEYS
            or (base == "disable" and set(map(str, _listed(v))) & set(k3s_flags.CLUSTER_WIDE_DISABLE))
        ):
            r.fail(
                f"{key}.{k}",
                "must be the same on every server of the cluster (K3s: critical configuration value); "
                "set it in k3s.extraConfig instead of one node's extraConfig",
            )
        elif (problem := _k3s_value_problem(base, v)) is not None:
            r.fail(f"{key}.{k}", problem)
        else:
            out[k] = v
    return out


def _parse_node(r: _Reader, raw: Any, i: int, ssh: SshSettings, ha: bool = False) -> Node | None:
    key = f"nodes[{i}]"
    d = r.obj(
        raw,
        key,
        {"name", "host", "role", "connection", "port", "user", "hostKey", "arch", "gpu", "labels",
         "taints", "internalAddress", "extraConfig"},
    )
    if not d:
        if raw is not None and isinstance(raw, Mapping):
            r.fail(key, "a node needs at least `name` and `role`")
        return None
    name = r.string(d, "name", f"{key}.name")
    if name is not None and not NODE_NAME_RE.match(name):
        r.fail(f"{key}.name", f"{name!r} is not a valid node name (lower-case letters, digits and '-', at most 63)")
    role = r.choice(d, "role", f"{key}.role", ROLES)
    connection = r.choice(d, "connection", f"{key}.connection", CONNECTIONS, "ssh")
    if connection == "ssh":
        host = r.host(d, "host", f"{key}.host")
    else:
        host = r.host(d, "host", f"{key}.host", None)
    arch = r.choice(d, "arch", f"{key}.arch", ARCHES, "amd64")
    gpu = r.choice(d, "gpu", f"{key}.gpu", GPU_KINDS, "none")
    if gpu and arch and arch not in GPU_ARCHES[gpu]:
        r.fail(
            f"{key}.gpu",
            f"gpu {gpu!r} cannot run on arch {arch!r}; it needs arch {' or '.join(GPU_ARCHES[gpu])}"
            + (" (Jetson boards are arm64: set arch: arm64, or use gpu: nvidia for a discrete GPU)" if gpu == "jetson" else ""),
        )
    taints_raw = d.get("taints") or []
    taints: list[str] = []
    if not isinstance(taints_raw, list):
        r.fail(f"{key}.taints", "must be a list of 'key=value:Effect' strings")
    else:
        for j, t in enumerate(taints_raw):
            if not isinstance(t, str) or not TAINT_RE.match(t):
                r.fail(f"{key}.taints[{j}]", f"{t!r} is not 'key[=value]:NoSchedule|PreferNoSchedule|NoExecute'")
            else:
                taints.append(t)
    allowed = k3s_flags.SERVER_KEYS if role == "server" else k3s_flags.AGENT_KEYS
    extra = _k3s_config_map(r, d.get("extraConfig"), f"{key}.extraConfig", allowed, role or "server",
                            one_of_many_servers=ha and role == "server")
    return Node(
        name=name or f"node-{i}",
        role=role or "server",
        connection=connection or "ssh",
        host=host,
        port=r.integer(d, "port", f"{key}.port", ssh.port, 1, 65535) if "port" in d else None,
        user=r.string(d, "user", f"{key}.user", None),
        host_key=r.host_key(d, "hostKey", f"{key}.hostKey"),
        arch=arch or "amd64",
        gpu=gpu or "none",
        labels=r.string_map(d, "labels", f"{key}.labels"),
        taints=tuple(taints),
        internal_address=r.host(d, "internalAddress", f"{key}.internalAddress", None),
        extra_config=extra,
    )


def admin_profile_name(admin_email: str, users: list[KubeflowUser] | tuple[KubeflowUser, ...]) -> str:
    """The admin's own Profile (namespace): the user entry with the admin's email, else one named
    after the email's local part (DNS-label safe), as components/kubeflow_plan.admin_namespace says."""
    for u in users:
        if u.email == admin_email:
            return u.name
    local = "".join(c if c.isalnum() else "-" for c in admin_email.split("@")[0].lower()).strip("-")
    return (local or "user")[:63]


def _check_admin_namespace(r: _Reader, admin_email: str, users: list[KubeflowUser]) -> None:
    if any(u.email == admin_email for u in users):
        return
    name = admin_profile_name(admin_email, users)
    if name in RESERVED_NAMESPACES or name.startswith("kube-"):
        r.fail("kubeflow.adminEmail", f"the admin's Profile would be the platform namespace {name!r}: use another "
                                      "address, or list the admin in kubeflow.users with a name of their own")
    for j, u in enumerate(users):
        if u.name == name:
            r.fail(f"kubeflow.users[{j}].name", f"{name!r} is the admin's Profile (named after kubeflow.adminEmail "
                                                f"{admin_email}); give this user another name, or the admin's email")


def _parse_identity_provider(r: _Reader, value: Any) -> IdentityProvider | None:
    if value is None:
        return None
    key = "kubeflow.identityProvider"
    allowed = {"type", "name"} | {f for req, opt in IDP_FIELDS.values() for f in (*req, *opt)}
    d = r.obj(value, key, allowed)
    kind = r.choice(d, "type", f"{key}.type", IDENTITY_PROVIDERS)
    if kind is None:
        return None
    required, optional = IDP_FIELDS[kind]
    config: dict[str, Any] = {}
    for k in d:
        if k in ("type", "name"):
            continue
        if k not in required and k not in optional:
            r.fail(f"{key}.{k}", f"is not a setting of type {kind}; allowed: {', '.join((*required, *optional))}")
    for k in required:
        v = r.string(d, k, f"{key}.{k}")
        if v is not None:
            config[k] = v
    for k in optional:
        if k not in d:
            continue
        v = d[k]
        if k in ("orgs", "hostedDomains", "scopes"):
            if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                r.fail(f"{key}.{k}", "must be a list of strings")
                continue
        elif k == "insecureNoSSL":
            if not isinstance(v, bool):
                r.fail(f"{key}.{k}", f"must be true or false, got {v!r}")
                continue
        elif not isinstance(v, str) or not v:
            r.fail(f"{key}.{k}", "must be a non-empty string")
            continue
        config[k] = v
    if kind == "oidc" and isinstance(config.get("issuer"), str) and not config["issuer"].startswith("https://"):
        r.fail(f"{key}.issuer", f"{config['issuer']!r} must be an https:// URL")
    name = r.string(d, "name", f"{key}.name", {"oidc": "Single sign-on", "github": "GitHub",
                                                "google": "Google", "ldap": "LDAP"}[kind])
    return IdentityProvider(type=kind, name=name, config=config)


def _parse_images(r: _Reader, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        r.fail("kubeflow.images", "must be an object of upstream image name: replacement image reference")
        return {}
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not IMAGE_NAME_RE.match(k):
            r.fail(f"kubeflow.images.{k}", "keys are upstream image names without tag or digest, "
                                           "e.g. ghcr.io/kubeflow/kfp-api-server")
        elif not isinstance(v, str) or not IMAGE_REF_RE.match(v):
            r.fail(f"kubeflow.images.{k}", f"{v!r} is not an image reference (name[:tag][@sha256:digest])")
        else:
            out[k] = v
    return out


def _check_kfp_architectures(r: _Reader, kubeflow: KubeflowSettings, nodes: list[Node]) -> None:
    """KFP 2.16's own images are amd64 only (kubeflow/pipelines#12705): on a cluster without amd64
    nodes, KFP needs an override for each of them (a mixed cluster pins KFP to its amd64 nodes)."""
    kfp = kubeflow.mode == "pipelines" or (kubeflow.mode == "full" and kubeflow.components.get("pipelines"))
    if not kfp or not nodes or any(n.arch == "amd64" for n in nodes):
        return
    missing = [i for i in KFP_AMD64_ONLY_IMAGES if i not in kubeflow.images]
    if missing:
        r.fail("kubeflow.images", f"every node is arm64, and Kubeflow Pipelines 2.16 publishes these images for amd64 "
                                  f"only (kubeflow/pipelines#12705): {', '.join(missing)}. Build them for arm64 from the "
                                  "2.16.0 sources and map each here (docs/kubeflow.md, \"arm64\"), add an amd64 node, "
                                  "or set kubeflow.mode: none")


def parse_settings(raw: Mapping[str, Any], stack_name: str = "dev") -> Settings:
    """Validate and type the stack config. Raises ConfigError naming every bad key."""
    r = _Reader()
    top_allowed = {
        "profile", "ssh", "nodes", "k3s", "preflight", "storage", "tls", "gateway", "gpu", "kubeflow", "smoke",
        # secrets, read separately by stacks/config.py
        "sshPrivateKey", "k3sToken", "adminPassword", "identityProviderSecret",
        "images",
    }
    top_allowed |= _registry_secret_names(raw)
    raw = r.obj(raw, "", top_allowed)

    profile_name = r.choice(raw, "profile", "profile", tuple(profiles.PROFILES))
    if profile_name is None:
        raise ConfigError(r.problems)
    prof = profiles.PROFILES[profile_name]

    # ssh ------------------------------------------------------------------------------------------
    sd = r.obj(raw.get("ssh"), "ssh", {"user", "port", "bastion", "dialErrorLimit", "perDialTimeout"})
    bastion = None
    if sd.get("bastion") is not None:
        bd = r.obj(sd["bastion"], "ssh.bastion", {"host", "user", "port", "hostKey"})
        bastion = Bastion(
            host=r.host(bd, "host", "ssh.bastion.host") or "",
            user=r.string(bd, "user", "ssh.bastion.user", sd.get("user")) or "",
            port=r.integer(bd, "port", "ssh.bastion.port", 22, 1, 65535),
            host_key=r.host_key(bd, "hostKey", "ssh.bastion.hostKey"),
        )
    ssh = SshSettings(
        user=r.string(sd, "user", "ssh.user", None),
        port=r.integer(sd, "port", "ssh.port", 22, 1, 65535),
        bastion=bastion,
        dial_error_limit=r.integer(sd, "dialErrorLimit", "ssh.dialErrorLimit", 20, 1, 1000),
        per_dial_timeout=r.integer(sd, "perDialTimeout", "ssh.perDialTimeout", 15, 1, 600),
    )

    # nodes ----------------------------------------------------------------------------------------
    raw_nodes = raw.get("nodes")
    nodes: list[Node] = []
    if raw_nodes is None:
        r.fail("nodes", "is required: a list with at least one node of role 'server'")
    elif not isinstance(raw_nodes, list):
        r.fail("nodes", "must be a list of nodes")
    else:
        ha = sum(1 for rn in raw_nodes if isinstance(rn, Mapping) and rn.get("role") == "server") > 1
        for i, rn in enumerate(raw_nodes):
            node = _parse_node(r, rn, i, ssh, ha)
            if node is not None:
                nodes.append(node)
    servers = [n for n in nodes if n.is_server]
    if isinstance(raw_nodes, list) and not servers:
        r.fail("nodes", "needs at least one node with role: server")
    seen: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n.name in seen:
            r.fail(f"nodes[{i}].name", f"duplicate node name {n.name!r} (also nodes[{seen[n.name]}])")
        seen.setdefault(n.name, i)
    if len(servers) > 1 and len(servers) % 2 == 0:
        r.fail(
            "nodes",
            f"{len(servers)} servers: HA with embedded etcd needs an odd number of servers (1, 3, 5) "
            "so that a quorum survives a failure",
        )
    locals_ = [n for n in nodes if n.connection == "local"]
    if locals_ and len(nodes) > 1:
        r.fail("nodes", "a node with connection: local (this machine) cannot be mixed with other nodes")
    if any(n.connection == "ssh" for n in nodes) and not ssh.user and any(not n.user for n in nodes if n.connection == "ssh"):
        r.fail("ssh.user", "is required for SSH nodes (the login user, with passwordless sudo), or set user on each node")
    for i, n in enumerate(nodes):
        if n.connection == "ssh" and not n.host_key:
            if prof.require_host_keys:
                r.fail(
                    f"nodes[{i}].hostKey",
                    f"is required on the {profile_name} profile: pin the host key with "
                    f"`ssh-keyscan -t ed25519 {n.host or '<host>'}`",
                )
    if bastion and prof.require_host_keys and not bastion.host_key:
        r.fail("ssh.bastion.hostKey", f"is required on the {profile_name} profile (`ssh-keyscan -t ed25519 {bastion.host}`)")

    # k3s ------------------------------------------------------------------------------------------
    kd = r.obj(
        raw.get("k3s"),
        "k3s",
        {"version", "apiEndpoint", "tlsSans", "extraConfig", "agentExtraConfig", "airgap", "registries",
         "secretsEncryption", "protectKernelDefaults", "installTimeoutSeconds", "readyTimeoutSeconds"},
    )
    version = r.string(kd, "version", "k3s.version", versions.K3S_VERSION)
    if version and not K3S_VERSION_RE.match(version):
        r.fail("k3s.version", f"{version!r} is not a K3s release like {versions.K3S_VERSION} (vX.Y.Z+k3sN)")
    elif version and k3s_version_below_floor(version):
        r.fail(
            "k3s.version",
            f"{version!r} is older than the oldest supported K3s ("
            + ", ".join(f"{v} on the {m} line" for m, v in versions.K3S_MIN_VERSIONS.items())
            + ", any later minor): the program relies on containerd 2 (the GPU toolkit's setup) and on "
            "K3s's static CNI bin dir /var/lib/rancher/k3s/data/cni; use a newer release",
        )
    default_endpoint = "127.0.0.1" if (servers and servers[0].connection == "local") else (
        servers[0].host if servers and servers[0].host else "127.0.0.1"
    )
    api_endpoint = r.host(kd, "apiEndpoint", "k3s.apiEndpoint", default_endpoint)
    sans_raw = kd.get("tlsSans") or []
    sans: list[str] = []
    if not isinstance(sans_raw, list):
        r.fail("k3s.tlsSans", "must be a list of IP addresses or host names")
    else:
        for j, s in enumerate(sans_raw):
            if not isinstance(s, str) or not (is_ip(s) or is_hostname(s)):
                r.fail(f"k3s.tlsSans[{j}]", f"{s!r} is neither an IP address nor a hostname")
            else:
                sans.append(s)
    airgap = None
    if kd.get("airgap") is not None:
        ad = r.obj(kd["airgap"], "k3s.airgap", {"binary", "images", "installScript", "registries", "platformImages"})
        airgap = Airgap(
            binary=r.string(ad, "binary", "k3s.airgap.binary") or "",
            images=r.string(ad, "images", "k3s.airgap.images") or "",
            install_script=r.string(ad, "installScript", "k3s.airgap.installScript") or "",
            registries=r.string(ad, "registries", "k3s.airgap.registries", None),
            platform_images=r.string(ad, "platformImages", "k3s.airgap.platformImages", None),
        )
        if airgap.images and not re.search(r"\.tar(\.gz|\.zst)?$", airgap.images):
            r.fail("k3s.airgap.images", "must be a .tar, .tar.gz or .tar.zst image archive (what K3s imports)")
    k3s = K3sSettings(
        version=version or versions.K3S_VERSION,
        api_endpoint=api_endpoint or default_endpoint,
        tls_sans=tuple(sans),
        extra_config=_k3s_config_map(r, kd.get("extraConfig"), "k3s.extraConfig", k3s_flags.SERVER_KEYS, "server"),
        agent_extra_config=_k3s_config_map(
            r, kd.get("agentExtraConfig"), "k3s.agentExtraConfig", k3s_flags.AGENT_KEYS, "agent"
        ),
        airgap=airgap,
        registries=_parse_registries(r, kd.get("registries")),
        secrets_encryption=r.boolean(kd, "secretsEncryption", "k3s.secretsEncryption", prof.secrets_encryption),
        protect_kernel_defaults=r.boolean(
            kd, "protectKernelDefaults", "k3s.protectKernelDefaults", prof.protect_kernel_defaults
        ),
        install_timeout_seconds=r.integer(kd, "installTimeoutSeconds", "k3s.installTimeoutSeconds", 900, 60, 7200),
        ready_timeout_seconds=r.integer(kd, "readyTimeoutSeconds", "k3s.readyTimeoutSeconds", 600, 30, 7200),
    )
    if prof.require_secrets_encryption and not k3s.secrets_encryption:
        r.fail("k3s.secretsEncryption", f"must stay true on the {profile_name} profile (Secrets encrypted at rest)")

    # preflight ------------------------------------------------------------------------------------
    pd = r.obj(raw.get("preflight"), "preflight", {"minMemoryMiB", "minDiskGiB"})
    preflight = PreflightSettings(
        min_memory_mib=r.integer(pd, "minMemoryMiB", "preflight.minMemoryMiB", prof.min_memory_mib, 256, 4_194_304),
        min_disk_gib=r.integer(pd, "minDiskGiB", "preflight.minDiskGiB", prof.min_disk_gib, 1, 1_000_000),
    )

    # storage --------------------------------------------------------------------------------------
    std = r.obj(raw.get("storage"), "storage", {"default", "localPath", "longhorn", "nfs"})
    longhorn = None
    default_class = r.choice(std, "default", "storage.default", STORAGE_CLASSES, prof.storage)
    if std.get("longhorn") is not None or default_class == "longhorn":
        ld = r.obj(std.get("longhorn"), "storage.longhorn", {"replicas"})
        longhorn = LonghornSettings(replicas=r.integer(ld, "replicas", "storage.longhorn.replicas", None, 1, 10))
    nfs = None
    if std.get("nfs") is not None:
        nd = r.obj(std["nfs"], "storage.nfs", {"server", "path"})
        nfs = NfsSettings(
            server=r.host(nd, "server", "storage.nfs.server") or "",
            path=r.string(nd, "path", "storage.nfs.path") or "",
        )
        if nfs.path and not nfs.path.startswith("/"):
            r.fail("storage.nfs.path", f"{nfs.path!r} must be an absolute export path")
    if default_class == "nfs" and nfs is None:
        r.fail("storage.nfs", "is required when storage.default is 'nfs' ({server, path} of an existing NFS export)")
    local_path = r.string(std, "localPath", "storage.localPath", "/var/lib/rancher/k3s/storage")
    if local_path and not local_path.startswith("/"):
        r.fail("storage.localPath", f"{local_path!r} must be an absolute path on the nodes")
    storage = StorageSettings(default=default_class or prof.storage, local_path=local_path, longhorn=longhorn, nfs=nfs)

    # tls / gateway --------------------------------------------------------------------------------
    td = r.obj(raw.get("tls"), "tls", {"host", "issuer", "email"})
    tls = TlsSettings(
        host=r.host(td, "host", "tls.host", f"kubeflow.{api_endpoint}" if api_endpoint and not is_ip(api_endpoint) else "kubeflow.localhost"),
        issuer=r.choice(td, "issuer", "tls.issuer", ISSUERS, prof.issuer),
        email=r.string(td, "email", "tls.email", None),
    )
    if tls.email and not EMAIL_RE.match(tls.email):
        r.fail("tls.email", f"{tls.email!r} is not an email address")
    if tls.issuer == "letsencrypt" and not tls.email:
        r.fail("tls.email", "is required with tls.issuer: letsencrypt (ACME account contact)")
    if tls.issuer == "letsencrypt" and tls.host and (is_ip(tls.host) or tls.host.endswith(".localhost")):
        r.fail("tls.host", "letsencrypt needs a public DNS name, not an IP address or *.localhost")
    gd = r.obj(raw.get("gateway"), "gateway", {"serviceType", "httpNodePort", "httpsNodePort"})
    gateway = GatewaySettings(
        service_type=r.choice(gd, "serviceType", "gateway.serviceType", GATEWAY_SERVICE_TYPES, prof.gateway_service_type),
        http_node_port=r.integer(gd, "httpNodePort", "gateway.httpNodePort", 30080, 30000, 32767),
        https_node_port=r.integer(gd, "httpsNodePort", "gateway.httpsNodePort", 30443, 30000, 32767),
    )

    # gpu ------------------------------------------------------------------------------------------
    gd2 = r.obj(raw.get("gpu"), "gpu", {"timeSlicing", "mig", "installDriver", "toolkit"})
    install_driver = r.boolean(gd2, "installDriver", "gpu.installDriver", False)
    # The operator's containerised driver lives under /run/nvidia/driver, which only the operator's own
    # toolkit is set up for: with installDriver the toolkit defaults to (and must be) the operator's.
    gpu = GpuSettings(
        time_slicing=r.integer(gd2, "timeSlicing", "gpu.timeSlicing", 0, 0, 64),
        mig=r.choice(gd2, "mig", "gpu.mig", MIG_STRATEGIES, None),
        install_driver=install_driver,
        toolkit=r.choice(gd2, "toolkit", "gpu.toolkit", GPU_TOOLKITS,
                         "operator" if install_driver else prof.gpu_toolkit) or prof.gpu_toolkit,
    )
    if gpu.install_driver and gpu.toolkit == "host":
        r.fail(
            "gpu.toolkit",
            "'host' cannot be used with gpu.installDriver: true (the operator's driver container is only "
            "wired to the operator's toolkit); use toolkit: operator, or install the driver on the hosts",
        )

    # kubeflow -------------------------------------------------------------------------------------
    kfd = r.obj(raw.get("kubeflow"), "kubeflow", {"mode", "components", "users", "adminEmail", "manifestsPath", "identityProvider", "images"})
    mode = r.choice(kfd, "mode", "kubeflow.mode", KUBEFLOW_MODES, prof.kubeflow_mode)
    comps = dict(prof.components)
    cd = kfd.get("components")
    if cd is not None:
        if not isinstance(cd, Mapping):
            r.fail("kubeflow.components", "must be an object of component: true|false")
        else:
            for k, v in cd.items():
                if k not in profiles.KUBEFLOW_COMPONENTS:
                    r.fail(
                        f"kubeflow.components.{k}",
                        f"unknown component{did_you_mean(k, profiles.KUBEFLOW_COMPONENTS)}; "
                        f"allowed: {', '.join(profiles.KUBEFLOW_COMPONENTS)}",
                    )
                elif v is None:
                    r.fail(f"kubeflow.components.{k}", "must be true or false, got nothing")
                else:
                    # The same rule as every other boolean: true/false, or the strings "true"/"false".
                    comps[k] = r.boolean(cd, k, f"kubeflow.components.{k}", comps.get(k, False))
    comps, needs_problems, auto_enabled = kubeflow_components.resolve(
        comps, cd if isinstance(cd, Mapping) else {}, mode or prof.kubeflow_mode
    )
    for key, msg in needs_problems:
        r.fail(key, msg)
    admin_email = r.string(kfd, "adminEmail", "kubeflow.adminEmail", "admin@kubeflow.local")
    if admin_email and not EMAIL_RE.match(admin_email):
        r.fail("kubeflow.adminEmail", f"{admin_email!r} is not an email address")
    users: list[KubeflowUser] = []
    ud = kfd.get("users") or []
    if not isinstance(ud, list):
        r.fail("kubeflow.users", "must be a list of {name, email, quota, contributors}")
        ud = []
    for j, u in enumerate(ud):
        uk = f"kubeflow.users[{j}]"
        u = r.obj(u, uk, {"name", "email", "quota", "contributors"})
        uname = r.string(u, "name", f"{uk}.name")
        if uname and not NODE_NAME_RE.match(uname):
            r.fail(f"{uk}.name", f"{uname!r} must be a valid namespace name (lower-case letters, digits, '-')")
        elif uname and (uname in RESERVED_NAMESPACES or uname.startswith("kube-")):
            r.fail(f"{uk}.name", f"{uname!r} is a namespace the platform uses; reserved: "
                                 f"{', '.join(sorted(RESERVED_NAMESPACES))} and kube-*")
        contributors: list[str] = []
        cv = u.get("contributors") or []
        if not isinstance(cv, list):
            r.fail(f"{uk}.contributors", "must be a list of email addresses")
            cv = []
        for c_i, c in enumerate(cv):
            if not isinstance(c, str) or not EMAIL_RE.match(c):
                r.fail(f"{uk}.contributors[{c_i}]", f"{c!r} is not an email address")
            else:
                contributors.append(c)
        email = r.string(u, "email", f"{uk}.email")
        if email and not EMAIL_RE.match(email):
            r.fail(f"{uk}.email", f"{email!r} is not an email address")
        quota = None
        if u.get("quota") is not None:
            q = r.obj(u["quota"], f"{uk}.quota", {"cpu", "memory", "gpu"})
            quota = Quota(
                cpu=r.quantity(q, "cpu", f"{uk}.quota.cpu"),
                memory=r.quantity(q, "memory", f"{uk}.quota.memory"),
                gpu=r.quantity(q, "gpu", f"{uk}.quota.gpu"),
            )
        users.append(KubeflowUser(name=uname or f"user-{j}", email=email or "", quota=quota,
                                  contributors=tuple(contributors)))
    names = [u.name for u in users]
    for j, n in enumerate(names):
        if names.index(n) != j:
            r.fail(f"kubeflow.users[{j}].name", f"duplicate user name {n!r}")
    emails = [u.email for u in users]
    for j, e in enumerate(emails):
        if e and emails.index(e) != j:
            r.fail(f"kubeflow.users[{j}].email", f"duplicate email {e!r}: one Profile per person")
    _check_admin_namespace(r, admin_email or "admin@kubeflow.local", users)
    identity_provider = _parse_identity_provider(r, kfd.get("identityProvider"))
    images = _parse_images(r, kfd.get("images"))
    kubeflow = KubeflowSettings(
        mode=mode or prof.kubeflow_mode,
        components=comps,
        users=tuple(users),
        admin_email=admin_email or "admin@kubeflow.local",
        manifests_path=r.string(kfd, "manifestsPath", "kubeflow.manifestsPath", None),
        auto_enabled=tuple(auto_enabled),
        identity_provider=identity_provider,
        images=images,
    )
    _check_kfp_architectures(r, kubeflow, nodes)

    _cross_checks(r, nodes, k3s, gateway, ssh)
    _profile_floors(r, profile_name, nodes, k3s)
    # smoke ----------------------------------------------------------------------------------------
    smd = r.obj(raw.get("smoke"), "smoke", {"enabled", "timeoutSeconds"})
    smoke = SmokeSettings(
        enabled=r.boolean(smd, "enabled", "smoke.enabled", True),
        timeout_seconds=r.integer(smd, "timeoutSeconds", "smoke.timeoutSeconds", 1200, 120, 7200),
    )
    # images -----------------------------------------------------------------------------------------
    imd = r.obj(raw.get("images"), "images", {"prePull", "diskGiB"})
    images = ImagesSettings(
        pre_pull=r.boolean(imd, "prePull", "images.prePull", prof.pre_pull_images),
        disk_gib=r.integer(imd, "diskGiB", "images.diskGiB", 0, 0, 100_000),
    )
    _check_airgap_platform(r, k3s, kubeflow)

    if r.problems:
        raise ConfigError(r.problems)
    _ignored_settings(r, raw, nodes, kubeflow, gateway, tls)
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


def _cross_checks(r: _Reader, nodes: list[Node], k3s: K3sSettings, gateway: GatewaySettings, ssh: SshSettings) -> None:
    """Problems no single key shows: two nodes on one machine, one port for two listeners, overlapping networks."""
    seen: dict[tuple[str, int], int] = {}
    for i, n in enumerate(nodes):
        if n.connection != "ssh" or not n.host:
            continue
        where = (n.host.lower(), n.port or ssh.port)
        if where in seen:
            r.fail(f"nodes[{i}].host", f"{n.host} is also nodes[{seen[where]}]'s host: one machine runs one K3s node")
        seen.setdefault(where, i)
    if gateway.service_type == "NodePort" and gateway.http_node_port == gateway.https_node_port:
        r.fail("gateway.httpsNodePort", f"must differ from gateway.httpNodePort (both {gateway.http_node_port})")
    networks = {}
    for key in k3s_flags.CIDR_KEYS:
        value = k3s.extra_config.get(key)
        if value is not None:
            networks[key] = [ipaddress.ip_network(v) for v in _listed(value)]
    if len(networks) == 2:
        if any(a.version == b.version and a.overlaps(b) for a in networks["cluster-cidr"] for b in networks["service-cidr"]):
            r.fail("k3s.extraConfig.service-cidr", "overlaps k3s.extraConfig.cluster-cidr: pods and Services need separate networks")


def _ignored_settings(r: _Reader, raw: Mapping[str, Any], nodes: list[Node], kubeflow: KubeflowSettings,
                      gateway: GatewaySettings, tls: TlsSettings) -> None:
    """Warnings for settings the stack accepts but does not use, and for versions it was not tested with."""
    if kubeflow.mode == "pipelines":
        # Kubeflow Pipelines alone has no Istio gateway and no certificate (components/platform_layers.py).
        for section in ("tls", "gateway"):
            if raw.get(section):
                r.warn(section, "is ignored with kubeflow.mode: pipelines (no Istio gateway, no certificate)")
    if kubeflow.mode != "full":
        # Users, the admin login and the component switches belong to the full platform (Dex, profiles).
        for key in ("users", "adminEmail", "components"):
            if (raw.get("kubeflow") or {}).get(key):
                r.warn(f"kubeflow.{key}", f"is ignored with kubeflow.mode: {kubeflow.mode} (it configures full Kubeflow)")
    if raw.get("gpu") and not any(n.gpu != "none" for n in nodes):
        r.warn("gpu", "is ignored: no node has gpu: nvidia or gpu: jetson")
    gd = raw.get("gateway") or {}
    if isinstance(gd, Mapping) and gateway.service_type != "NodePort":
        for key in ("httpNodePort", "httpsNodePort"):
            if gd.get(key) is not None:
                r.warn(f"gateway.{key}", f"is ignored with gateway.serviceType: {gateway.service_type}")
    if tls.issuer != "letsencrypt" and isinstance(raw.get("tls"), Mapping) and raw["tls"].get("email"):
        r.warn("tls.email", f"is ignored with tls.issuer: {tls.issuer} (it is the ACME account contact)")
    version = K3S_VERSION_RE.match((raw.get("k3s") or {}).get("version") or "") if isinstance(raw.get("k3s"), Mapping) else None
    if version and f"{version.group(1)}.{version.group(2)}" != versions.KUBERNETES_MINOR:
        r.warn("k3s.version", f"is K3s {version.group(1)}.{version.group(2)}: this release is tested with "
                              f"{versions.KUBERNETES_MINOR} ({versions.K3S_VERSION})")


# K3s config values a profile promises, which extraConfig may not take back (k3s_plan.node_config sets them).
PROFILE_FLOORS = {"cloud": {"tls-san-security": True}}


def _profile_floors(r: _Reader, profile_name: str, nodes: list[Node], k3s: K3sSettings) -> None:
    """The profile's promises hold after extraConfig is merged (secrets-encryption, write-kubeconfig-mode and
    protect-kernel-defaults cannot be set there at all: k3s_flags.OWNED_KEYS)."""
    sources = [("k3s.extraConfig", k3s.extra_config)] + [
        (f"nodes[{i}].extraConfig", n.extra_config) for i, n in enumerate(nodes) if n.is_server]
    for flag, promised in PROFILE_FLOORS.get(profile_name, {}).items():
        for key, extra in sources:
            value = extra.get(flag)
            if value is not None and str(value).lower() != str(promised).lower():
                r.fail(f"{key}.{flag}", f"must stay {str(promised).lower()} on the {profile_name} profile")


# --------------------------------------------------------------------------------------------------
# Images: registry mirrors and the air-gapped platform (issue 15)
# --------------------------------------------------------------------------------------------------

def _registry_secret_names(raw: Any) -> set[str]:
    """Secret config keys named by k3s.registries.configs.*.auth.*From (allowed at the top level)."""
    try:
        configs = raw["k3s"]["registries"]["configs"]
        return {v for c in configs.values() for k, v in (c.get("auth") or {}).items()
                if k in REGISTRY_AUTH_SECRETS.values() and isinstance(v, str)}
    except (KeyError, TypeError, AttributeError):
        return set()


def _parse_registries(r: _Reader, value: Any) -> Registries | None:
    if value is None:
        return None
    key = "k3s.registries"
    d = r.obj(value, key, {"mirrors", "configs"})
    mirrors: dict[str, Any] = {}
    for reg, m in (r.obj(d.get("mirrors"), f"{key}.mirrors", set(d.get("mirrors") or {})) or {}).items():
        mk = f"{key}.mirrors.{reg}"
        md = r.obj(m, mk, {"endpoint", "rewrite"})
        endpoints = md.get("endpoint")
        if endpoints is not None and (not isinstance(endpoints, list) or not all(
                isinstance(e, str) and re.match(r"^https?://[^\s/]+", e) for e in endpoints)):
            r.fail(f"{mk}.endpoint", "must be a list of registry URLs (https://host[:port])")
        rewrite = md.get("rewrite")
        if rewrite is not None and (not isinstance(rewrite, Mapping) or not all(
                isinstance(a, str) and isinstance(b, str) for a, b in rewrite.items())):
            r.fail(f"{mk}.rewrite", "must be an object of regular expression: replacement")
        mirrors[str(reg)] = md
    configs: dict[str, Any] = {}
    for host, c in (r.obj(d.get("configs"), f"{key}.configs", set(d.get("configs") or {})) or {}).items():
        ck = f"{key}.configs.{host}"
        cd = r.obj(c, ck, {"auth", "tls"})
        auth_keys = {"username", *REGISTRY_AUTH_SECRETS.values()}
        ad = cd.get("auth")
        if isinstance(ad, Mapping):
            for plain, ref in REGISTRY_AUTH_SECRETS.items():
                if plain in ad:
                    r.fail(f"{ck}.auth.{plain}", f"secrets never go into the stack file: set `{ref}: <name>` and "
                           f"`pulumi config set --secret <name> ...`")
            ad = {k: v for k, v in ad.items() if k not in REGISTRY_AUTH_SECRETS}
        ad = r.obj(ad, f"{ck}.auth", auth_keys)
        for ref in REGISTRY_AUTH_SECRETS.values():
            if ref in ad and not (isinstance(ad[ref], str) and re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", ad[ref])):
                r.fail(f"{ck}.auth.{ref}", "must name a secret config key (letters, digits, _ and -)")
        td = r.obj(cd.get("tls"), f"{ck}.tls", {"cert_file", "key_file", "ca_file", "insecure_skip_verify"})
        for f in ("cert_file", "key_file", "ca_file"):
            if f in td and not (isinstance(td[f], str) and td[f].startswith("/")):
                r.fail(f"{ck}.tls.{f}", "must be an absolute path on the nodes")
        if "insecure_skip_verify" in td:
            td["insecure_skip_verify"] = r.boolean(td, "insecure_skip_verify", f"{ck}.tls.insecure_skip_verify", False)
        configs[str(host)] = {k: v for k, v in (("auth", ad), ("tls", td)) if v}
    return Registries(mirrors=mirrors, configs=configs)


def _check_airgap_platform(r: _Reader, k3s: K3sSettings, kubeflow: KubeflowSettings) -> None:
    """An air-gapped node pulls nothing: the platform's images come in a bundle (or from a mirror), and
    Kubeflow's remote kustomize bases from a local tree."""
    airgap = k3s.airgap
    if airgap is None:
        return
    if airgap.registries and k3s.registries:
        r.fail("k3s.airgap.registries", "give either k3s.registries (mirrors and auth, secrets from Pulumi) or "
               "this file, not both")
    mirror = bool(k3s.registries or airgap.registries)
    if not airgap.platform_images and not mirror:
        r.fail("k3s.airgap.platformImages", "is required on an air-gapped stack: the platform's images (cert-manager, "
               "Istio, storage, Kubeflow Pipelines ...) cannot be pulled. Make the bundle with `python -m tools.images "
               "bundle <stack> --out DIR` on a machine with internet, or set k3s.registries to a local mirror")
    if kubeflow.mode != "none" and not kubeflow.manifests_path:
        r.fail("kubeflow.manifestsPath", "is required on an air-gapped stack with Kubeflow: kustomize fetches remote bases "
               "(Argo Workflows, JobSet, LWS) from GitHub. Prepare a local tree with `python -m tools.images manifests`")
