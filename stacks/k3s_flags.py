"""The K3s config.yaml keys this project accepts, per role, for the pinned K3s minor (v1.34).

Every key of /etc/rancher/k3s/config.yaml is a K3s CLI flag name. User input (``k3s.extraConfig``,
``k3s.agentExtraConfig``, a node's ``extraConfig``) is validated against these sets before anything
touches a host, so a typo fails at `pulumi preview` instead of as a K3s crash loop on the node.

The sets are curated, not exhaustive: ``config`` (a config file naming a config file) and flags newer
than K3s v1.35 (``write-kubeconfig-name``, ``helm-controller-arg``) are left out. The contract test
tests/contract/test_k3s_flags.py checks that every name here is a real flag of the upstream K3s source.
"""

_COMMON = frozenset(
    {
        # logging
        "debug", "v", "vmodule", "log", "alsologtostderr",
        # cluster membership
        "token", "token-file", "server", "data-dir",
        # node identity
        "node-name", "with-node-id", "node-label", "node-taint", "node-ip", "node-external-ip",
        "node-internal-dns", "node-external-dns", "bind-address", "resolv-conf",
        # runtime and images
        "image-credential-provider-bin-dir", "image-credential-provider-config", "selinux",
        "lb-server-port", "protect-kernel-defaults", "container-runtime-endpoint", "default-runtime",
        "image-service-endpoint", "pause-image", "snapshotter", "private-registry",
        "disable-default-registry-endpoint", "nonroot-devices", "airgap-extra-registry",
        "prefer-bundled-bin", "docker", "rootless",
        # networking
        "flannel-iface", "flannel-conf", "flannel-cni-conf", "vpn-auth", "vpn-auth-file",
        # pass-through
        "kubelet-arg", "kube-proxy-arg", "enable-pprof",
    }
)

SERVER_KEYS = _COMMON | frozenset(
    {
        "https-listen-port", "supervisor-port", "advertise-address", "advertise-port",
        "tls-san", "tls-san-security", "cluster-cidr", "service-cidr", "service-node-port-range",
        "cluster-dns", "cluster-domain", "flannel-backend", "flannel-ipv6-masq", "flannel-external-ip",
        "egress-selector-mode", "servicelb-namespace", "write-kubeconfig", "write-kubeconfig-mode",
        "write-kubeconfig-group", "helm-job-image", "agent-token", "agent-token-file", "cluster-init",
        "cluster-reset", "cluster-reset-restore-path", "kube-apiserver-arg", "etcd-arg",
        "kube-controller-manager-arg", "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
        "datastore-endpoint", "datastore-cafile", "datastore-certfile", "datastore-keyfile",
        "etcd-expose-metrics", "etcd-disable-snapshots", "etcd-snapshot-name",
        "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-snapshot-dir",
        "etcd-snapshot-compress", "etcd-s3", "etcd-s3-endpoint", "etcd-s3-endpoint-ca",
        "etcd-s3-skip-ssl-verify", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-bucket",
        "etcd-s3-region", "etcd-s3-folder", "etcd-s3-proxy", "etcd-s3-config-secret",
        "etcd-s3-insecure", "etcd-s3-timeout", "default-local-storage-path", "disable",
        "disable-scheduler", "disable-cloud-controller", "disable-kube-proxy",
        "disable-network-policy", "disable-helm-controller", "embedded-registry",
        "supervisor-metrics", "system-default-registry", "secrets-encryption", "secrets-encryption-provider",
    }
)

AGENT_KEYS = _COMMON | frozenset({"disable-apiserver-lb"})

# Keys the program owns. A user value for one of them would silently fight the program (a second
# token, another join address), so validation rejects them with a pointer to the setting to use.
MANAGED_KEYS = {
    "token": "the cluster token comes from the secret config value kubeflow-k3s:k3sToken (or is generated)",
    "token-file": "the cluster token comes from the secret config value kubeflow-k3s:k3sToken",
    "server": "join addresses are computed from the node list",
    "cluster-init": "cluster-init is set on the first server when there is more than one server",
    "node-name": "the node name is the node's `name`",
}

# Keys the program writes into every server's config.yaml from settings of its own. A user value would
# silently override the promise behind that setting, so validation refuses it and names the setting.
OWNED_KEYS = {
    "write-kubeconfig-mode": "the kubeconfig on the servers stays 0600 (readable by root only)",
    "secrets-encryption": "set k3s.secretsEncryption (it cannot be turned off on the cloud profile)",
    "protect-kernel-defaults": "set k3s.protectKernelDefaults",
    "default-local-storage-path": "set storage.localPath",
    "node-ip": "set the node's internalAddress",
    "node-label": "set the node's labels (the program adds its GPU labels to them)",
    "node-taint": "set the node's taints (the program adds its GPU taint to them)",
}

# List keys the program sets and a user value is added to, never replacing the program's entries:
# tls-san (the addresses the kubeconfig and joining servers use), disable (Traefik, local-storage).
MERGED_KEYS = ("tls-san", "disable")

# K3s's "Critical Configuration Values": options that "must be set to the same value on all servers in
# the cluster. Failure to do so will cause new servers to fail to join the cluster when using embedded
# etcd" (https://docs.k3s.io/cli/server#critical-configuration-values). In an HA stack they belong in
# k3s.extraConfig (every server), never in one server's nodes[].extraConfig. (`disable: [servicelb]` is
# on that list too; other packaged components may be disabled per server.)
CLUSTER_WIDE_KEYS = frozenset(
    {
        "agent-token", "cluster-cidr", "cluster-dns", "cluster-domain", "disable-cloud-controller",
        "disable-helm-controller", "disable-network-policy", "egress-selector-mode", "embedded-registry",
        "flannel-backend", "flannel-external-ip", "flannel-ipv6-masq", "secrets-encryption",
        "secrets-encryption-provider", "service-cidr",
    }
)
CLUSTER_WIDE_DISABLE = ("servicelb",)

# Values checked before they reach a host: comma-separated CIDRs (dual-stack: one IPv4, one IPv6) and IPs.
CIDR_KEYS = ("cluster-cidr", "service-cidr")
IP_KEYS = ("cluster-dns", "node-external-ip", "advertise-address", "bind-address")
