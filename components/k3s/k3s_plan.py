"""Pure planning for the K3s layer: each node's config.yaml, host preparation, script parameters.

Nothing here touches the engine; the K3sCluster component (k3s_cluster.py) turns these plans into
commands. K3s is configured through /etc/rancher/k3s/config.yaml (as k3s-ansible does), never through
install flags, so that a re-run diff shows exactly which keys changed on which node.
"""

from __future__ import annotations

import hashlib
import pathlib
from typing import Any

import yaml

from stacks import k3s_flags, versions
from stacks.settings import ConfigError, Node, Settings

API_PORT = 6443
TOKEN_PLACEHOLDER = "<cluster token>"
SYSCTL_FILE = "/etc/sysctl.d/90-kubeflow-k3s.conf"
MODULES_FILE = "/etc/modules-load.d/kubeflow-k3s.conf"
# Air-gap staging: a folder of its own, created (owned by the login user, for SFTP) before the copies. Not
# under /var/tmp, which systemd-tmpfiles ages out (tmp.conf: "q /var/tmp 1777 root root 30d").
STAGE_DIR = "/var/lib/kubeflow-k3s/staged"

# Kubeflow's README: many pods each watch files; K3s's kube-proxy and flannel need bridged traffic
# seen by iptables and forwarding on.
BASE_SYSCTLS = {
    "fs.inotify.max_user_instances": "2280",
    "fs.inotify.max_user_watches": "1255360",
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}
BASE_MODULES = ("overlay", "br_netfilter")
# The kernel tunables kubelet expects (setupKernelTunables). Written on every node so that K3s's
# `protect-kernel-defaults` (on by default on cloud) can be switched on: kubelet then verifies these
# values instead of changing them, and refuses to start when they differ.
KERNEL_DEFAULTS = {
    "vm.overcommit_memory": "1",
    "vm.panic_on_oom": "0",
    "kernel.panic": "10",
    "kernel.panic_on_oops": "1",
    "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
}


def server_url(settings: Settings) -> str:
    """Where joining servers and agents register: the first server's address on the node network."""
    first = settings.first_server
    return f"https://{first.internal_address or first.host or '127.0.0.1'}:{API_PORT}"


def api_url(settings: Settings) -> str:
    """Where clients (the kubeconfig, Pulumi's Kubernetes provider) reach the API."""
    return f"https://{settings.k3s.api_endpoint}:{API_PORT}"


def tls_sans(settings: Settings) -> list[str]:
    """Every address the API is reached by: the endpoint, each server's addresses, extra names."""
    sans: list[str] = []
    for value in [settings.k3s.api_endpoint, *settings.k3s.tls_sans]:
        if value not in sans:
            sans.append(value)
    for node in settings.servers:
        for value in (node.host, node.internal_address):
            if value and value not in sans:
                sans.append(value)
    return sans


def node_labels(settings: Settings, node: Node) -> list[str]:
    labels = dict(node.labels)
    if node.gpu != "none":
        labels.setdefault("kubeflow-k3s/gpu", node.gpu)
        # The NVIDIA device plugin chart's affinity matches this label when NFD is not installed.
        labels.setdefault("nvidia.com/gpu.present", "true")
    if node.gpu == "jetson":
        # The GPU operator (for a stack's discrete-GPU nodes) does not support Jetson: keep its operands off.
        labels.setdefault("nvidia.com/gpu.deploy.operands", "false")
    return [f"{k}={v}" for k, v in sorted(labels.items())]


GPU_TAINT = "nvidia.com/gpu=true:NoSchedule"


def taints_gpu_nodes(settings: Settings) -> bool:
    """Does this stack's profile taint its GPU nodes (GPU_TAINT), now or when one is added later?"""
    return settings.profile == "cloud"


def node_taints(settings: Settings, node: Node) -> list[str]:
    taints = list(node.taints)
    if node.gpu != "none" and taints_gpu_nodes(settings):
        if not any(t.split(":")[0].split("=")[0] == "nvidia.com/gpu" for t in taints):
            taints.append(GPU_TAINT)
    return taints


def node_config(settings: Settings, node: Node, token: str = TOKEN_PLACEHOLDER) -> dict[str, Any]:
    """The config.yaml of one node. `token` is filled in by the component inside a secret Output."""
    k3s = settings.k3s
    cfg: dict[str, Any] = {"token": token, "node-name": node.name}
    if node.is_server:
        if node.name == settings.first_server.name:
            if settings.ha:
                # Bootstrapping only: install.sh replaces it with `server:` when another server already
                # runs (join_candidates), so a replaced first server joins instead of starting a new cluster.
                cfg["cluster-init"] = True
        else:
            cfg["server"] = server_url(settings)
        cfg["tls-san"] = tls_sans(settings)
        # Istio's ingress gateway takes ports 80/443, so K3s's bundled Traefik is never installed.
        cfg["disable"] = ["traefik"]
        if settings.storage.default != "local-path":
            # K3s re-marks its local-path StorageClass default on every start; when another class is
            # the default, its local-storage add-on is off (components/storage/storage_plan.py).
            cfg["disable"] = ["local-storage", "traefik"]
        cfg["write-kubeconfig-mode"] = "0600"
        cfg["default-local-storage-path"] = settings.storage.local_path
        if k3s.secrets_encryption:
            cfg["secrets-encryption"] = True
        if settings.profile == "cloud":
            # Refuse to add certificate SANs for names a client merely asks for (K3s default, made explicit),
            # and advertise the API to cluster members on the node's private address only.
            cfg["tls-san-security"] = True
            if node.internal_address:
                cfg["advertise-address"] = node.internal_address
    else:
        cfg["server"] = server_url(settings)
    if node.internal_address:
        cfg["node-ip"] = node.internal_address
    if k3s.protect_kernel_defaults:
        cfg["protect-kernel-defaults"] = True
    labels = node_labels(settings, node)
    if labels:
        cfg["node-label"] = labels
    taints = node_taints(settings, node)
    if taints:
        cfg["node-taint"] = taints
    if (settings.k3s.airgap and settings.k3s.airgap.registries) or settings.k3s.registries:
        cfg["private-registry"] = "/etc/rancher/k3s/registries.yaml"
    from components.gpu import gpu_plan  # gpu_plan reads this module's taints: imported here, not at the top

    cfg.update(gpu_plan.k3s_config(settings, node))
    extra = k3s.extra_config if node.is_server else k3s.agent_extra_config
    for source in (extra, node.extra_config):
        for key, value in source.items():
            if key in k3s_flags.MERGED_KEYS and key in cfg:
                # Added to the program's entries, never replacing them (a list or one comma-separated string).
                added = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
                merged = list(cfg[key]) + [v for v in added if v not in cfg[key]]
                cfg[key] = sorted(merged) if key == "disable" else merged
            elif key.rstrip("+") == "kube-apiserver-arg" and "kube-apiserver-arg" in cfg:
                cfg["kube-apiserver-arg"] = gpu_plan.merge_apiserver_args(cfg["kube-apiserver-arg"], value)
            else:
                cfg[key] = value
    return cfg


def render_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def config_digest(settings: Settings, node: Node) -> str:
    """A digest of the node's config without its token, for a readable, secret-free trigger."""
    return hashlib.sha256(render_config(node_config(settings, node)).encode()).hexdigest()[:16]


def prepare_params(settings: Settings, node: Node, packages: list[str] | None = None,
                   services: list[str] | None = None, modules: list[str] | None = None) -> dict[str, object]:
    """`packages`/`services`/`modules`: what a platform layer needs on the host (storage_plan.host_requirements)."""
    sysctls = {**BASE_SYSCTLS, **KERNEL_DEFAULTS}
    return {
        "NODE_NAME": node.name,
        "MODULES": " ".join([*BASE_MODULES, *(m for m in modules or [] if m not in BASE_MODULES)]),
        "SERVICES": " ".join(services or []),
        "SYSCTLS": "\n".join(f"{k} = {v}" for k, v in sysctls.items()),
        "SYSCTL_FILE": SYSCTL_FILE,
        "MODULES_FILE": MODULES_FILE,
        "PACKAGES": " ".join(packages or []),
    }


BIN_DIR = "/usr/local/bin"  # install.sh's INSTALL_K3S_BIN_DIR default: k3s and its uninstall scripts


def uninstall_params(node: Node) -> dict[str, object]:
    return {"NODE_NAME": node.name, "ROLE": node.role, "BIN_DIR": BIN_DIR}


def unprepare_params(node: Node, prepare: dict[str, object] | None = None) -> dict[str, object]:
    """`prepare`: the node's prepare_params, whose packages and services destroy keeps and names."""
    prepare = prepare or {}
    return {"NODE_NAME": node.name, "SYSCTL_FILE": SYSCTL_FILE, "MODULES_FILE": MODULES_FILE,
            "PACKAGES": prepare.get("PACKAGES", ""), "SERVICES": prepare.get("SERVICES", "")}


def install_url(settings: Settings) -> str:
    if settings.k3s.airgap:
        return ""
    return versions.K3S_INSTALL_SCRIPT_URL.format(version=settings.k3s.version.replace("+", "%2B"))


def staged_files(settings: Settings) -> dict[str, tuple[str, str]]:
    """Air-gap files copied to STAGE_DIR: {key: (local source, file name on the node)}."""
    airgap = settings.k3s.airgap
    if not airgap:
        return {}
    files = {
        "binary": (airgap.binary, "k3s"),
        "images": (airgap.images, airgap.images.rsplit("/", 1)[-1]),
        "installer": (airgap.install_script, "install.sh"),
    }
    if airgap.registries:
        files["registries"] = (airgap.registries, "registries.yaml")
    return files


def staged_sha256(settings: Settings) -> str:
    """"name=sha256 ..." of the staged files' content: part of the install's text and of the digest that
    decides a restart, so a new binary, image archive or registries.yaml re-installs and restarts K3s."""
    parts = []
    for key, (source, target) in staged_files(settings).items():
        try:
            digest = hashlib.sha256(pathlib.Path(source).read_bytes()).hexdigest()
        except OSError as err:
            raise ConfigError([(f"k3s.airgap.{'installScript' if key == 'installer' else key}",
                                f"cannot read {source!r} ({err.strerror}); give the path of the file to copy to the nodes")])
        parts.append(f"{target}={digest}")
    return " ".join(parts)


def join_candidates(settings: Settings, node: Node) -> str:
    """For the first server of an HA cluster: the other servers it joins when one of them is up."""
    if not (settings.ha and node.name == settings.first_server.name):
        return ""
    return " ".join(f"https://{s.internal_address or s.host}:{API_PORT}" for s in settings.servers if s.name != node.name)


def install_params(settings: Settings, node: Node) -> dict[str, object]:
    airgap = settings.k3s.airgap
    return {
        "NODE_NAME": node.name,
        "ROLE": node.role,
        "K3S_VERSION": settings.k3s.version,
        "INSTALL_URL": install_url(settings),
        "STAGE_DIR": STAGE_DIR,
        "IMAGES_FILE": airgap.images.rsplit("/", 1)[-1] if airgap else "",
        "STAGED_SHA256": staged_sha256(settings),
        "JOIN_CANDIDATES": join_candidates(settings, node),
        "WAIT_SECONDS": settings.k3s.install_timeout_seconds,
        # A role change runs the other role's uninstall script first (install.sh).
        "BIN_DIR": BIN_DIR,
    }


def remover(settings: Settings, node: Node) -> Node:
    """The server that drains and deletes `node`'s Node object when it leaves: the first server that is
    not `node` itself. A cluster's only server is its own: it has nothing to leave (it goes with the
    cluster), but its membership command stays in the program, so shrinking an HA cluster to this server
    updates that command instead of deleting it (a delete would drain the server that stays)."""
    return next((s for s in settings.servers if s.name != node.name), node)


# Where the server that would remove a node keeps the UID of the Node object it registered: removal deletes
# only that Node, never a newer one with the same name (a host that already took the name). Inside K3s's
# data dir, so K3s's uninstall removes it.
MEMBERS_DIR = "/var/lib/rancher/k3s/server/kubeflow-k3s-members"


def member_params(settings: Settings, node: Node, runner: Node) -> dict[str, object]:
    return {"NODE_NAME": runner.name, "MEMBER": node.name, "ROLE": node.role, "MEMBERS_DIR": MEMBERS_DIR,
            "WAIT_SECONDS": settings.k3s.install_timeout_seconds}


# The cluster identity (docs/k3s.md "A new cluster behind the same stack"): a ConfigMap this stack creates
# first in the cluster, with constant content (a change would let an update re-create it on a new cluster
# and hide that the rest was not), and the check that it is there whenever the CA changed.
IDENTITY_MARKER = ("kube-system", "kubeflow-k3s-identity")


def identity_marker_data(settings: Settings) -> dict[str, str]:
    return {"stack": settings.stack_name,
            "purpose": "created by the kubeflow-k3s Pulumi program before its other objects; missing after the "
                       "cluster's CA changed means Pulumi's state lists objects this cluster does not have"}


def identity_check_params(settings: Settings, ca_sha256: str) -> dict[str, object]:
    namespace, name = IDENTITY_MARKER
    return {"NODE_NAME": settings.first_server.name, "API": api_url(settings), "CA_DIGEST": ca_sha256,
            "MARKER_NAMESPACE": namespace, "MARKER_NAME": name, "WAIT_SECONDS": settings.k3s.ready_timeout_seconds}


def parse_taint(taint: str) -> dict[str, str]:
    """"key=value:Effect" or "key:Effect" -> a Kubernetes Taint object."""
    head, effect = taint.rsplit(":", 1)
    key, _, value = head.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def node_patch(settings: Settings, node: Node) -> dict[str, Any]:
    """The labels and taints the Node object must carry, applied through the API after registration
    (K3s's node-label/node-taint apply only when a node registers: docs.k3s.io/cli/agent#node-labels-and-taints-for-agents)."""
    labels = dict(item.split("=", 1) for item in node_labels(settings, node))
    return {"labels": labels, "taints": [parse_taint(t) for t in node_taints(settings, node)]}


def preflight_params(settings: Settings, node: Node) -> dict[str, object]:
    return {
        "NODE_NAME": node.name,
        "EXPECT_ARCH": node.arch,
        "GPU": node.gpu,
        "GPU_TOOLKIT": settings.gpu.toolkit if node.gpu == "nvidia" else "none",
        "INSTALL_DRIVER": settings.gpu.install_driver and node.gpu == "nvidia",
        "MIN_MEMORY_MIB": settings.preflight.min_memory_mib,
        "MIN_DISK_GIB": settings.preflight.min_disk_gib,
        "NEED_CURL": bool(curl_needed_for(settings, node)),
        "CURL_FOR": curl_needed_for(settings, node) or "nothing",
        # flannel's default backend needs the kernel's vxlan module (missing on Raspberry Pi Ubuntu
        # without linux-modules-extra-raspi).
        "FLANNEL_BACKEND": str({**settings.k3s.extra_config, **(node.extra_config if node.is_server else {})}
                               .get("flannel-backend", "vxlan")),
        "IMAGES_DISK_GIB": _images_disk_gib(settings, node),
    }


def curl_needed_for(settings: Settings, node: Node) -> str:
    """Why the node needs curl ('' when it does not): K3s's online installer downloads with it, and the
    smoke step (components/k3s/scripts/smoke.sh) talks to the gateway and the Pipelines API with it from the
    first server, air-gapped or not."""
    from components.smoke import smoke_plan  # the smoke plan imports this module

    why = []
    if settings.k3s.airgap is None:
        why.append("K3s's installer downloads with it (or use k3s.airgap)")
    if node.name == settings.first_server.name and smoke_plan.enabled(settings):
        why.append("the smoke step runs its checks with it on the first server (or set smoke.enabled: false)")
    return "; ".join(why)


def _images_disk_gib(settings: Settings, node: Node) -> int:
    from components.k3s import node_images_plan  # issue 15: pre-pulled images and the air-gap bundle

    return node_images_plan.disk_gib(settings, node)


def parse_preflight_report(text: str) -> dict[str, tuple[str, str]]:
    """Parse preflight.sh's stdout into {check: (status, detail)}."""
    report: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in ("ok", "fail", "skip"):
            raise ValueError(f"not a preflight report line: {line!r}")
        report[parts[0]] = (parts[1], parts[2])
    if "result" not in report:
        raise ValueError("preflight report has no result line")
    return report


def join_order(settings: Settings) -> list[tuple[str, list[str]]]:
    """(node, [nodes it waits for]) in creation order: servers one at a time, agents after the first."""
    order: list[tuple[str, list[str]]] = []
    previous = None
    for server in settings.servers:
        order.append((server.name, [previous] if previous else []))
        previous = server.name
    for agent in settings.agents:
        order.append((agent.name, [settings.first_server.name]))
    return order
