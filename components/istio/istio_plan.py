"""Pure planning for Istio: Helm values of the Istio charts that reproduce Kubeflow 26.03's
`common/istio` (istio-install/overlays/oauth2-proxy, istio-namespace, cluster-local-gateway), adapted
to K3s, plus the few Istio objects Kubeflow's kustomization adds next to the install.

Why the Istio Helm charts and not Kubeflow's kustomizations (docs/platform-layers.md has the long form):
- Kubeflow's `install.yaml` is rendered output of these same charts, with the CNI hostPaths fixed to
  `/opt/cni/bin` and `/etc/cni/net.d`; on K3s both paths are different, so it needs a patch either way.
  The charts take the paths as values (the ones in Istio's own `platform-k3s.yaml` profile).
- An Istio upgrade is then a version bump in stacks/versions.py (Helm upgrades CRDs and webhooks in
  order) instead of re-vendoring a 5000-line rendered file; Kubeflow's 26.03 file even renders 1.28.0
  images under 1.29.0 labels.
- What Kubeflow adds on top (mesh config, native sidecars, oauth2-proxy provider, gateway labels,
  cluster-local gateway) is a few values and objects, checked against upstream by the contract tests.

Deliberate differences from Kubeflow's files:
- `istio-system` does not carry `istio-injection: disabled`: the gateway charts get their proxy
  image by injection (`image: auto`), which that label would switch off.
- The ingress gateway Service is LoadBalancer or NodePort (Kubeflow ships ClusterIP and leaves exposure
  to the installer), with a NetworkPolicy that lets outside traffic reach it.
"""

from __future__ import annotations

from typing import Any

from stacks.settings import Settings

from components.shared import helm

NAMESPACE = "istio-system"
CNI_NAMESPACE = "kube-system"  # as Kubeflow: the privileged CNI DaemonSet stays out of the restricted istio-system
HUB = "gcr.io/istio-release"  # Kubeflow's registry for Istio images (no Docker Hub pull limits)

# K3s with its bundled flannel (Istio's manifests/helm-profiles/platform-k3s.yaml, K3s >= the
# October-2024 releases that made the CNI bin dir static).
K3S_CNI_BIN_DIR = "/var/lib/rancher/k3s/data/cni"
K3S_CNI_CONF_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d"

INGRESS_GATEWAY = "istio-ingressgateway"  # release name: the chart derives `istio: ingressgateway` from it
# The ingress gateway's service account: the identity Kubeflow 26.03 authorizes. Its AuthorizationPolicies
# (dashboard, jupyter, volumes, tensorboards, ml-pipeline-ui, katib-ui, kserve-models, model-registry UI)
# and the profiles controller's ISTIO_INGRESS_GATEWAY_PRINCIPAL admit only this principal; the gateway
# chart would otherwise name the account after the release (`istio-ingressgateway`) and, with
# `global-deny-all`, every page after login would answer "RBAC: access denied".
# tests/contract/test_kubeflow_mesh_authz.py proves it equals what upstream renders.
INGRESS_SERVICE_ACCOUNT = "istio-ingressgateway-service-account"
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
LOCAL_GATEWAY = "cluster-local-gateway"
LOCAL_LABELS = {"app": "cluster-local-gateway", "istio": "cluster-local-gateway"}
INGRESS_CLASS = "istio"  # Kubernetes Ingresses Istio serves through the ingress gateway (ACME HTTP-01)
TLS_SECRET = "kubeflow-gateway-tls"  # Kubeflow's Gateway references this secret (credentialName)
OAUTH2_PROXY_SERVICE = "oauth2-proxy.oauth2-proxy.svc.cluster.local"


def version() -> str:
    return helm.chart("istio-istiod").version


def _global(chart_key: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # Pin the images to the chart's own version: the published charts stamp docker.io/istio, Kubeflow
    # pulls from gcr.io/istio-release.
    return {"hub": HUB, "tag": helm.chart(chart_key).version, **(extra or {})}


def base_values(settings: Settings) -> dict[str, Any]:
    return {"defaultRevision": "default", "global": {"istioNamespace": NAMESPACE}}


def cni_values(settings: Settings) -> dict[str, Any]:
    return {
        "cniBinDir": K3S_CNI_BIN_DIR,
        "cniConfDir": K3S_CNI_CONF_DIR,
        "chained": True,  # appended to flannel's conflist, as Kubeflow's CHAINED_CNI_PLUGIN=true
        "global": _global("istio-cni"),
    }


def mesh_config() -> dict[str, Any]:
    """Kubeflow's mesh config (istio-configmap-disable-tracing + the oauth2-proxy extension provider)."""
    return {
        "accessLogFile": "/dev/stdout",
        "defaultConfig": {
            "discoveryAddress": f"istiod.{NAMESPACE}.svc:15012",
            "proxyMetadata": {},
            "tracing": {},
        },
        "enablePrometheusMerge": True,
        "enableTracing": False,
        "rootNamespace": NAMESPACE,
        "tcpKeepalive": {"interval": "5s", "probes": 3, "time": "10s"},
        "trustDomain": "cluster.local",
        # Kubernetes Ingresses of class `istio` become routes on the ingress gateway: cert-manager's
        # ACME HTTP-01 solver uses one.
        "ingressControllerMode": "STRICT",
        "ingressClass": INGRESS_CLASS,
        "ingressService": INGRESS_GATEWAY,
        "ingressSelector": INGRESS_LABELS["istio"],
        "extensionProviders": [
            {
                "name": "oauth2-proxy",
                "envoyExtAuthzHttp": {
                    "service": OAUTH2_PROXY_SERVICE,
                    "port": 80,
                    "headersToDownstreamOnDeny": ["content-type", "set-cookie"],
                    "headersToUpstreamOnAllow": [
                        "authorization", "path", "x-auth-request-email", "x-auth-request-groups",
                        "x-auth-request-user",
                    ],
                    "includeRequestHeadersInCheck": ["authorization", "cookie"],
                },
            }
        ],
    }


def istiod_values(settings: Settings) -> dict[str, Any]:
    small = settings.profile in ("laptop", "edge")
    values: dict[str, Any] = {
        # istiod's "pilot" values are top-level in this chart (profiles write them as pilot.*).
        "cni": {"enabled": True},
        "env": {
            "ENABLE_NATIVE_SIDECARS": "true",
            "ENABLE_DEBUG_ON_HTTP": "false",
            # Dex usually comes up after istiod: refresh JWT keys every minute, not every 20.
            "PILOT_JWT_PUB_KEY_REFRESH_INTERVAL": "1m",
        },
        "seccompProfile": {"type": "RuntimeDefault"},
        "meshConfig": mesh_config(),
        "global": _global(
            "istio-istiod",
            {
                "istioNamespace": NAMESPACE,
                "proxy": {
                    # Kubeflow's sidecar requests: ~30 injected pods at the chart's 100m/128Mi would
                    # reserve 3 CPUs before any user workload.
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "40Mi"},
                        "limits": {"cpu": "2000m", "memory": "1024Mi"},
                    },
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        ),
        # Gateways get their proxy by injection; this is their seccomp profile (restricted PSS).
        "gateways": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if small:
        values["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}}
        values["autoscaleEnabled"] = False
    return values


def ingress_gateway_principal() -> str:
    """The SPIFFE principal (trust domain / namespace / service account) of the ingress gateway's pods:
    the one place the program states the identity Kubeflow's policies must admit."""
    return f"{mesh_config()['trustDomain']}/ns/{NAMESPACE}/sa/{INGRESS_SERVICE_ACCOUNT}"


def _gateway_ports(settings: Settings) -> list[dict[str, Any]]:
    # Kubeflow's port layout: the proxy listens on 8080/8443, so it needs no low-port sysctl.
    http = {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080}
    https = {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}
    if settings.gateway.service_type == "NodePort":
        http["nodePort"] = settings.gateway.http_node_port
        https["nodePort"] = settings.gateway.https_node_port
    return [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021}, http, https]


# istio-system enforces the restricted Pod Security Standard (as in Kubeflow). The chart's container
# defaults already drop capabilities and run as non-root; the seccomp profile is the missing piece.
# Setting the pod securityContext drops the chart's low-port sysctl, unneeded with ports 8080/8443.
GATEWAY_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def ingress_gateway_values(settings: Settings) -> dict[str, Any]:
    """The `istio-ingressgateway` in istio-system, reachable from outside (settings.gateway)."""
    return {
        "labels": dict(INGRESS_LABELS),
        "securityContext": dict(GATEWAY_POD_SECURITY),
        "serviceAccount": {"name": INGRESS_SERVICE_ACCOUNT},
        "service": {
            # laptop/edge: LoadBalancer through K3s's ServiceLB (ports 80/443 on the node; Traefik is
            # disabled so they are free). cloud: NodePort for an existing load balancer, or LoadBalancer.
            "type": settings.gateway.service_type,
            "ports": _gateway_ports(settings),
        },
    }


def local_gateway_values(settings: Settings) -> dict[str, Any]:
    """Kubeflow's `cluster-local-gateway` (KServe/Knative internal traffic), ClusterIP only."""
    return {
        "labels": dict(LOCAL_LABELS),
        "securityContext": dict(GATEWAY_POD_SECURITY),
        "service": {
            "type": "ClusterIP",
            "ports": [
                {"name": "status-port", "port": 15020, "protocol": "TCP", "targetPort": 15020},
                {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 8080},
            ],
        },
    }


# --------------------------------------------------------------------------------------------------
# Objects next to the install
# --------------------------------------------------------------------------------------------------


def namespace_labels() -> dict[str, str]:
    return {"pod-security.kubernetes.io/enforce": "restricted"}


def network_policies() -> dict[str, dict[str, Any]]:
    """{name: spec} in istio-system: Kubeflow's istio-namespace policies, plus outside access to the
    ingress gateway (Kubeflow keeps its gateway ClusterIP, so it has no such rule)."""
    return {
        "default-allow-same-namespace-istio-system": {
            "podSelector": {},
            "ingress": [{"from": [{"podSelector": {}}]}],
            "policyTypes": ["Ingress"],
        },
        "allow-istiod-control-plane": {
            "podSelector": {"matchLabels": {"app": "istiod"}},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 15012}]}],
            "policyTypes": ["Ingress"],
        },
        "istiod-webhook-apiserver": {
            "podSelector": {"matchLabels": {"app": "istiod"}},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 15017}]}],
            "policyTypes": ["Ingress"],
        },
        "allow-knative-to-istio-gateways": {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app", "operator": "In", "values": [INGRESS_LABELS["app"], LOCAL_LABELS["app"]]}
                ]
            },
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "knative-serving"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
            "policyTypes": ["Ingress"],
        },
        "allow-outside-to-ingressgateway": {
            "podSelector": {"matchLabels": dict(INGRESS_LABELS)},
            "ingress": [
                {
                    "ports": [
                        {"protocol": "TCP", "port": 8080},
                        {"protocol": "TCP", "port": 8443},
                        {"protocol": "TCP", "port": 15021},
                    ]
                }
            ],
            "policyTypes": ["Ingress"],
        },
    }


def gateways() -> dict[str, dict[str, Any]]:
    """Istio Gateways in istio-system: Kubeflow's cluster-local one (in-cluster HTTP only).

    Kubeflow's `istio-system/istio-ingressgateway` Gateway (plain HTTP on port 80 for any host) is left
    out on purpose: no VirtualService of Kubeflow 26.03 binds it, and on an exposed gateway it would
    serve plain HTTP. The outside listeners belong to the Kubeflow layer's `kubeflow-gateway`, whose
    HTTPS server names TLS_SECRET.
    """
    http = [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]
    return {LOCAL_GATEWAY: {"selector": dict(LOCAL_LABELS), "servers": http}}


def authorization_policies() -> dict[str, dict[str, Any]]:
    """Kubeflow's deny-by-default model: deny all in the mesh, allow everything into both gateways
    (authentication at the ingress gateway is Kubeflow's oauth2-proxy policy, added by its layer)."""
    return {
        "global-deny-all": {},
        INGRESS_GATEWAY: {"action": "ALLOW", "selector": {"matchLabels": dict(INGRESS_LABELS)}, "rules": [{}]},
        LOCAL_GATEWAY: {"action": "ALLOW", "selector": {"matchLabels": dict(LOCAL_LABELS)}, "rules": [{}]},
    }


def default_sidecar() -> dict[str, Any]:
    """Kubeflow's mesh-wide Sidecar (in the root namespace): egress routes only to the platform's
    namespaces, which keeps every proxy's memory small (kubeflow/manifests#3206)."""
    return {
        "egress": [
            {
                "hosts": [
                    "./*", "kubeflow/*", "kubeflow-system/*", "knative-serving/*", "knative-eventing/*",
                    f"{NAMESPACE}/*",
                ]
            }
        ]
    }


def gateway_certificate(settings: Settings, issuer: str) -> dict[str, Any]:
    """The HTTPS certificate of settings.tls.host, in the gateway's namespace (where Istio reads it)."""
    return {
        "secretName": TLS_SECRET,
        "dnsNames": [settings.tls.host],
        "issuerRef": {"name": issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }
