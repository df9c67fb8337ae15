"""The hosts and how the program reaches them: the `ssh`, `nodes` and `preflight` sections.

Read by the K3s layer (components/k3s/): connection.py logs in over SSH (or runs locally), the
preflight checks each host, and every node becomes a K3s server or agent with its own labels, taints
and config.yaml extras (checked by k3s.config_map, as `k3s.extraConfig` is). docs/k3s.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import k3s_flags, profiles
from . import k3s as k3s_settings
from .common import ARCHES, NODE_NAME_RE, Reader
from .gpu import GPU_ARCHES, GPU_KINDS

SECTIONS = ("ssh", "nodes", "preflight")

ROLES = ("server", "agent")
CONNECTIONS = ("ssh", "local")
TAINT_RE = re.compile(r"^[A-Za-z0-9./-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")


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
class PreflightSettings:
    min_memory_mib: int
    min_disk_gib: int


def parse_ssh(r: Reader, value: Any) -> SshSettings:
    sd = r.obj(value, "ssh", {"user", "port", "bastion", "dialErrorLimit", "perDialTimeout"})
    bastion = None
    if sd.get("bastion") is not None:
        bd = r.obj(sd["bastion"], "ssh.bastion", {"host", "user", "port", "hostKey"})
        bastion = Bastion(
            host=r.host(bd, "host", "ssh.bastion.host") or "",
            user=r.string(bd, "user", "ssh.bastion.user", sd.get("user")) or "",
            port=r.integer(bd, "port", "ssh.bastion.port", 22, 1, 65535),
            host_key=r.host_key(bd, "hostKey", "ssh.bastion.hostKey"),
        )
    return SshSettings(
        user=r.string(sd, "user", "ssh.user", None),
        port=r.integer(sd, "port", "ssh.port", 22, 1, 65535),
        bastion=bastion,
        dial_error_limit=r.integer(sd, "dialErrorLimit", "ssh.dialErrorLimit", 20, 1, 1000),
        per_dial_timeout=r.integer(sd, "perDialTimeout", "ssh.perDialTimeout", 15, 1, 600),
    )


def parse_node(r: Reader, raw: Any, i: int, ssh: SshSettings, ha: bool = False) -> Node | None:
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
    extra = k3s_settings.config_map(r, d.get("extraConfig"), f"{key}.extraConfig", allowed, role or "server",
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


def parse_nodes(r: Reader, raw_nodes: Any, ssh: SshSettings, prof: profiles.Profile, profile_name: str) -> list[Node]:
    """The `nodes` list, with the checks that need all of it (names, HA quorum, login, pinned host keys)."""
    nodes: list[Node] = []
    if raw_nodes is None:
        r.fail("nodes", "is required: a list with at least one node of role 'server'")
    elif not isinstance(raw_nodes, list):
        r.fail("nodes", "must be a list of nodes")
    else:
        ha = sum(1 for rn in raw_nodes if isinstance(rn, Mapping) and rn.get("role") == "server") > 1
        for i, rn in enumerate(raw_nodes):
            node = parse_node(r, rn, i, ssh, ha)
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
    bastion = ssh.bastion
    if bastion and prof.require_host_keys and not bastion.host_key:
        r.fail("ssh.bastion.hostKey", f"is required on the {profile_name} profile (`ssh-keyscan -t ed25519 {bastion.host}`)")
    return nodes


def default_api_endpoint(nodes: list[Node]) -> str:
    """Where the Kubernetes API is reached when `k3s.apiEndpoint` is not set: the first server."""
    servers = [n for n in nodes if n.is_server]
    if servers and servers[0].connection == "local":
        return "127.0.0.1"
    return servers[0].host if servers and servers[0].host else "127.0.0.1"


def check_hosts(r: Reader, nodes: list[Node], ssh: SshSettings) -> None:
    """One machine runs one K3s node: two nodes may not reach the same host and port."""
    seen: dict[tuple[str, int], int] = {}
    for i, n in enumerate(nodes):
        if n.connection != "ssh" or not n.host:
            continue
        where = (n.host.lower(), n.port or ssh.port)
        if where in seen:
            r.fail(f"nodes[{i}].host", f"{n.host} is also nodes[{seen[where]}]'s host: one machine runs one K3s node")
        seen.setdefault(where, i)


def parse_preflight(r: Reader, value: Any, prof: profiles.Profile) -> PreflightSettings:
    pd = r.obj(value, "preflight", {"minMemoryMiB", "minDiskGiB"})
    return PreflightSettings(
        min_memory_mib=r.integer(pd, "minMemoryMiB", "preflight.minMemoryMiB", prof.min_memory_mib, 256, 4_194_304),
        min_disk_gib=r.integer(pd, "minDiskGiB", "preflight.minDiskGiB", prof.min_disk_gib, 1, 1_000_000),
    )
