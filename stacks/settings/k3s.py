"""K3s settings: the `k3s` section (version, API endpoint, config.yaml extras, air-gap files, registries,
timeouts) and the checks on K3s config values that every node's `extraConfig` shares.

Read by the K3s layer (components/k3s/): k3s_plan.node_config turns them into each node's
/etc/rancher/k3s/config.yaml. K3s flag names come from stacks/k3s_flags.py; docs/k3s.md explains them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .. import k3s_flags, profiles, versions
from .common import Reader, did_you_mean, is_cidr, is_hostname, is_ip, listed

SECTIONS = ("k3s",)

K3S_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$")


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


def value_problem(key: str, value: Any) -> str | None:
    """What is wrong with a K3s config value this program can check before it reaches a host."""
    if key in k3s_flags.CIDR_KEYS:
        bad = [v for v in listed(value) if not (isinstance(v, str) and is_cidr(v))]
        if bad:
            return f"{bad[0]!r} is not a network in CIDR notation (e.g. 10.42.0.0/16; dual-stack: 'IPv4-CIDR,IPv6-CIDR')"
    elif key in k3s_flags.IP_KEYS:
        bad = [v for v in listed(value) if not (isinstance(v, str) and is_ip(v))]
        if bad:
            return f"{bad[0]!r} is not an IP address"
    elif key == "tls-san":
        bad = [v for v in listed(value)
               if not (isinstance(v, str) and (is_ip(v) or is_hostname(v.removeprefix("*."))))]
        if bad:
            return f"{bad[0]!r} is neither an IP address nor a hostname"
    return None


def config_map(r: Reader, value: Any, key: str, allowed: frozenset[str], role: str,
               one_of_many_servers: bool = False) -> dict[str, Any]:
    """K3s config.yaml keys a user adds (`k3s.extraConfig`, `k3s.agentExtraConfig`, `nodes[i].extraConfig`).

    `one_of_many_servers`: a node's own extraConfig on a server of an HA stack, where the keys every
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
            or (base == "disable" and set(map(str, listed(v))) & set(k3s_flags.CLUSTER_WIDE_DISABLE))
        ):
            r.fail(
                f"{key}.{k}",
                "must be the same on every server of the cluster (K3s: critical configuration value); "
                "set it in k3s.extraConfig instead of one node's extraConfig",
            )
        elif (problem := value_problem(base, v)) is not None:
            r.fail(f"{key}.{k}", problem)
        else:
            out[k] = v
    return out


def parse_k3s(r: Reader, value: Any, prof: profiles.Profile, profile_name: str, default_endpoint: str) -> K3sSettings:
    """The `k3s` section. `default_endpoint`: the first server's address (nodes.default_api_endpoint)."""
    kd = r.obj(
        value,
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
        extra_config=config_map(r, kd.get("extraConfig"), "k3s.extraConfig", k3s_flags.SERVER_KEYS, "server"),
        agent_extra_config=config_map(
            r, kd.get("agentExtraConfig"), "k3s.agentExtraConfig", k3s_flags.AGENT_KEYS, "agent"
        ),
        airgap=airgap,
        registries=parse_registries(r, kd.get("registries")),
        secrets_encryption=r.boolean(kd, "secretsEncryption", "k3s.secretsEncryption", prof.secrets_encryption),
        protect_kernel_defaults=r.boolean(
            kd, "protectKernelDefaults", "k3s.protectKernelDefaults", prof.protect_kernel_defaults
        ),
        install_timeout_seconds=r.integer(kd, "installTimeoutSeconds", "k3s.installTimeoutSeconds", 900, 60, 7200),
        ready_timeout_seconds=r.integer(kd, "readyTimeoutSeconds", "k3s.readyTimeoutSeconds", 600, 30, 7200),
    )
    if prof.require_secrets_encryption and not k3s.secrets_encryption:
        r.fail("k3s.secretsEncryption", f"must stay true on the {profile_name} profile (Secrets encrypted at rest)")
    return k3s


# The architecture a K3s release asset's name gives: install.sh downloads `k3s${SUFFIX}` (no suffix on
# amd64, `-arm64` on arm64); the image archives are k3s-airgap-images-<arch>.tar[.zst|.gz].
_ASSET_ARCH = (re.compile(r"^k3s(?:-(?P<arch>arm64|armhf|s390x))?$"),
               re.compile(r"^k3s-airgap-images-(?P<arch>amd64|arm64|arm|s390x)\.tar(\.gz|\.zst)?$"))


def check_airgap_architectures(r: Reader, k3s: K3sSettings, arches: set[str]) -> None:
    """`k3s.airgap` carries one K3s binary and one image archive, which run on one architecture: every
    node must have it, and asset names that say an architecture (k3s-arm64, k3s-airgap-images-amd64.tar.zst)
    must say the nodes' one."""
    airgap = k3s.airgap
    if airgap is None or not arches:
        return
    if len(arches) > 1:
        r.fail("k3s.airgap", f"holds one K3s binary and one image archive, but the nodes are {' and '.join(sorted(arches))}: "
               "an air-gapped stack must have one architecture (docs/images.md)")
        return
    [arch] = arches
    for key, path, pattern in (("binary", airgap.binary, _ASSET_ARCH[0]), ("images", airgap.images, _ASSET_ARCH[1])):
        m = pattern.match(path.rsplit("/", 1)[-1])
        named = m.group("arch") if m else None  # a bare `k3s` may be any architecture's binary, renamed
        if named and named != arch:
            r.fail(f"k3s.airgap.{key}", f"{path!r} is K3s's {named} asset, but the nodes are {arch}")


def registry_secret_names(raw: Any) -> set[str]:
    """Secret config keys named by k3s.registries.configs.*.auth.*From (allowed at the top level)."""
    try:
        configs = raw["k3s"]["registries"]["configs"]
        return {v for c in configs.values() for k, v in (c.get("auth") or {}).items()
                if k in REGISTRY_AUTH_SECRETS.values() and isinstance(v, str)}
    except (KeyError, TypeError, AttributeError):
        return set()


def parse_registries(r: Reader, value: Any) -> Registries | None:
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


def check_networks(r: Reader, k3s: K3sSettings) -> None:
    """Pods and Services need separate networks: cluster-cidr and service-cidr may not overlap."""
    networks = {}
    for key in k3s_flags.CIDR_KEYS:
        value = k3s.extra_config.get(key)
        if value is not None:
            networks[key] = [ipaddress.ip_network(v) for v in listed(value)]
    if len(networks) == 2:
        if any(a.version == b.version and a.overlaps(b) for a in networks["cluster-cidr"] for b in networks["service-cidr"]):
            r.fail("k3s.extraConfig.service-cidr", "overlaps k3s.extraConfig.cluster-cidr: pods and Services need separate networks")


# K3s config values a profile promises, which extraConfig may not take back (k3s_plan.node_config sets them).
PROFILE_FLOORS = {"cloud": {"tls-san-security": True}}


def check_profile_floors(r: Reader, profile_name: str, k3s: K3sSettings,
                         server_configs: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """The profile's promises hold after extraConfig is merged (secrets-encryption, write-kubeconfig-mode and
    protect-kernel-defaults cannot be set there at all: k3s_flags.OWNED_KEYS). `server_configs`: each
    server's own (config key, extraConfig)."""
    sources = [("k3s.extraConfig", k3s.extra_config), *server_configs]
    for flag, promised in PROFILE_FLOORS.get(profile_name, {}).items():
        for key, extra in sources:
            value = extra.get(flag)
            if value is not None and str(value).lower() != str(promised).lower():
                r.fail(f"{key}.{flag}", f"must stay {str(promised).lower()} on the {profile_name} profile")


def ignored(r: Reader, raw: Mapping[str, Any]) -> None:
    """A K3s version of another Kubernetes minor than the tested one is allowed, with a warning."""
    version = K3S_VERSION_RE.match((raw.get("k3s") or {}).get("version") or "") if isinstance(raw.get("k3s"), Mapping) else None
    if version and f"{version.group(1)}.{version.group(2)}" != versions.KUBERNETES_MINOR:
        r.warn("k3s.version", f"is K3s {version.group(1)}.{version.group(2)}: this release is tested with "
                              f"{versions.KUBERNETES_MINOR} ({versions.K3S_VERSION})")
