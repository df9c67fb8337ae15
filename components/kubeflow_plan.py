"""Pure plan of the Kubeflow layer: which kubeflow/manifests 26.03 paths a stack applies, in which
order, from where, with which overlay, waiting for what.

The catalog follows the `resources` of kubeflow/manifests 26.03 `example/kustomization.yaml`, in its
order, one Directory per entry, minus what the platform layers install with Helm (cert-manager, Istio
CRDs/namespace/install) and minus `common/user-namespace/base` (the example profile, replaced by one
Profile per configured user). Model Registry is not in the example; it follows its README
(`overlays/db` + `options/istio` + the UI), installed into `kubeflow`.

Each step names what it waits for: the platform handles it needs (`cert_manager`: its Certificates and
Issuers; `istio`: Istio CRDs and sidecar injection of pods in the kubeflow namespaces) and the earlier
steps it needs (namespaces, CRDs, webhooks). tests/contract/test_kubeflow_ordering.py derives those
needs from the rendered upstream objects and checks this table against them.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import posixpath
from dataclasses import dataclass, field

from stacks import versions
from stacks.settings import Settings

from . import kubeflow_overlay as ov
from .kubeflow_overlay import ConfigMapMerge, Overlay, Patch

# The Pulumi project directory: relative paths in the plan are relative to it.
PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent

CERT_MANAGER = "cert_manager"
ISTIO = "istio"

# The Secret of the gateway certificate the platform layer (cert-manager) issues for settings.tls.host.
GATEWAY_TLS_SECRET = "kubeflow-gateway-tls"
GATEWAY_NAMESPACE = "istio-system"
INGRESS_SERVICE = "istio-ingressgateway"
# Dex's OIDC client id is not a secret (it is in every authorisation URL); kept as upstream has it.
OIDC_CLIENT_ID = "kubeflow-oidc-authservice"


@dataclass(frozen=True)
class Step:
    name: str  # resource name of its Directory, unique per stack
    component: str | None  # the kubeflow.components switch, None = always in full mode
    path: str  # path inside kubeflow/manifests at the pinned tag
    platform: tuple[str, ...] = ()
    after: tuple[str, ...] = ()  # earlier steps this one needs
    secrets: tuple[str, ...] = ()  # credential Secrets (kubeflow_credentials.SECRETS) that must exist first
    namespaces: tuple[str, ...] = ()  # namespaces the program creates before this step
    namespace: str | None = None  # default namespace for objects without one (Directory `namespace`)
    # webhook configuration (kind, name) -> the Deployment (namespace, name) that serves it
    webhooks: tuple[tuple[str, str, str, str], ...] = ()
    # Has PersistentVolumeClaims without a storage class: waits for the default StorageClass.
    storage: bool = False


# Namespaces whose upstream Namespace object is replaced by a program-created one, because the
# program's Secrets must exist in them before the Deployments that read those Secrets start.
# Labels are upstream's (tests/contract check them against the rendered objects).
OWN_NAMESPACES = {
    "auth": {"pod-security.kubernetes.io/enforce": "restricted"},
    "oauth2-proxy": {"pod-security.kubernetes.io/enforce": "restricted"},
}

# Namespaces created by a step (the step's Directory must exist before Secrets go into them).
NAMESPACE_STEPS = {"kubeflow": "kubeflow-namespace", "kubeflow-system": "kubeflow-namespace"}

_V = "ValidatingWebhookConfiguration"
_M = "MutatingWebhookConfiguration"

CATALOG: tuple[Step, ...] = (
    Step("oauth2-proxy", None, "common/oauth2-proxy/overlays/m2m-dex-only", (ISTIO,),
         secrets=("oauth2-proxy",), namespaces=("oauth2-proxy",)),
    Step("dex", None, "common/dex/overlays/oauth2-proxy", (ISTIO,),
         secrets=("dex-passwords", "dex-oidc-client"), namespaces=("auth",)),
    Step("knative-serving", "knative", "common/knative/knative-serving/overlays/gateways", (ISTIO,),
         webhooks=((_M, "webhook.istio.networking.internal.knative.dev", "knative-serving", "net-istio-webhook"),
                   (_M, "webhook.serving.knative.dev", "knative-serving", "webhook"),
                   (_V, "config.webhook.istio.networking.internal.knative.dev", "knative-serving", "net-istio-webhook"),
                   (_V, "config.webhook.serving.knative.dev", "knative-serving", "webhook"),
                   (_V, "validation.webhook.serving.knative.dev", "knative-serving", "webhook"))),
    Step("kubeflow-namespace", None, "common/kubeflow-namespace/base"),
    Step("kubeflow-roles", None, "common/kubeflow-roles/base"),
    Step("kubeflow-istio-resources", None, "common/istio/kubeflow-istio-resources/base", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("pipelines", "pipelines", "applications/pipeline/overlays", (CERT_MANAGER, ISTIO),
         after=("kubeflow-namespace",), secrets=("mlpipeline-minio-artifact", "mysql-secret"), storage=True),
    Step("katib", "katib", "applications/katib/upstream/installs/katib-with-kubeflow", (CERT_MANAGER, ISTIO),
         after=("kubeflow-namespace",), secrets=("katib-mysql-secrets",), storage=True,
         webhooks=((_M, "katib.kubeflow.org", "kubeflow", "katib-controller"),
                   (_V, "katib.kubeflow.org", "kubeflow", "katib-controller"))),
    Step("central-dashboard", "centralDashboard", "applications/centraldashboard/overlays/oauth2-proxy", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("admission-webhook", "admissionWebhook", "applications/admission-webhook/upstream/overlays/cert-manager",
         (CERT_MANAGER, ISTIO), after=("kubeflow-namespace",),
         webhooks=((_M, "admission-webhook-mutating-webhook-configuration", "kubeflow", "admission-webhook-deployment"),)),
    Step("jupyter-web-app", "notebooks", "applications/jupyter/jupyter-web-app/upstream/overlays/istio", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("notebook-controller", "notebooks", "applications/jupyter/notebook-controller/upstream/overlays/kubeflow",
         (ISTIO,), after=("kubeflow-namespace",)),
    Step("profiles", "profiles", "applications/profiles/pss", (ISTIO,), after=("kubeflow-namespace",)),
    Step("pvcviewer-controller", "pvcViewer", "applications/pvcviewer-controller/upstream/base", (CERT_MANAGER, ISTIO),
         after=("kubeflow-namespace",),
         webhooks=((_M, "pvcviewer-mutating-webhook-configuration", "kubeflow", "pvcviewer-controller-manager"),
                   (_V, "pvcviewer-validating-webhook-configuration", "kubeflow", "pvcviewer-controller-manager"))),
    Step("volumes-web-app", "volumes", "applications/volumes-web-app/upstream/overlays/istio", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("tensorboard-controller", "tensorboards",
         "applications/tensorboard/tensorboard-controller/upstream/overlays/kubeflow", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("tensorboards-web-app", "tensorboards", "applications/tensorboard/tensorboards-web-app/upstream/overlays/istio",
         (ISTIO,), after=("kubeflow-namespace",)),
    # Not rendered offline (its jobset base is a release download); its own runtimes are gated on
    # its controller like every other self-validated object.
    Step("trainer", "trainer", "applications/trainer/overlays", (ISTIO,), after=("kubeflow-namespace",),
         webhooks=((_V, "validator.trainer.kubeflow.org", "kubeflow-system", "kubeflow-trainer-controller-manager"),)),
    Step("kserve", "kserve", "applications/kserve/kserve", (CERT_MANAGER, ISTIO),
         after=("kubeflow-namespace", "knative-serving"),
         webhooks=((_M, "inferenceservice.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "clusterservingruntime.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "inferencegraph.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "inferenceservice.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "llminferenceservice.serving.kserve.io", "kubeflow", "llmisvc-controller-manager"),
                   (_V, "localmodelcache.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "servingruntime.serving.kserve.io", "kubeflow", "kserve-controller-manager"),
                   (_V, "trainedmodel.serving.kserve.io", "kubeflow", "kserve-controller-manager"))),
    Step("kserve-models-web-app", "kserve", "applications/kserve/models-web-app/overlays/kubeflow", (ISTIO,),
         after=("kubeflow-namespace",)),
    Step("spark-operator", "spark", "applications/spark/spark-operator/overlays/kubeflow", (ISTIO,),
         after=("kubeflow-namespace",),
         webhooks=((_M, "spark-operator-webhook", "kubeflow", "spark-operator-webhook"),
                   (_V, "spark-operator-webhook", "kubeflow", "spark-operator-webhook"))),
    Step("model-registry", "modelRegistry", "applications/model-registry/upstream/overlays/db", (ISTIO,),
         after=("kubeflow-namespace",), secrets=("model-registry-db-secrets",), namespace="kubeflow", storage=True),
    Step("model-registry-istio", "modelRegistry", "applications/model-registry/upstream/options/istio", (ISTIO,),
         after=("kubeflow-namespace",), namespace="kubeflow"),
    Step("model-registry-ui", "modelRegistry", "applications/model-registry/upstream/options/ui/overlays/istio",
         (ISTIO,), after=("kubeflow-namespace",)),
)

CATALOG_BY_NAME = {s.name: s for s in CATALOG}

# Paths of the example the program deliberately does not apply, and why (tests check the catalog +
# this list cover the example exactly).
NOT_APPLIED = {
    "common/cert-manager/overlays/kubeflow": "the platform layer installs cert-manager with Helm",
    "common/istio/istio-crds/base": "the platform layer installs Istio with Helm",
    "common/istio/istio-namespace/base": "the platform layer installs Istio with Helm",
    "common/istio/istio-install/overlays/oauth2-proxy": "the platform layer installs Istio with Helm",
    "common/istio/cluster-local-gateway/base": "the platform's Istio layer installs the cluster-local gateway",
    "common/user-namespace/base": "replaced by one Profile per configured user (kubeflow.users)",
}


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    source: str  # the upstream URL or local path of the step's path
    directory: str  # what the Directory renders: `source`, or the overlay directory
    overlay: Overlay | None
    after: tuple[str, ...]  # the earlier *applied* steps it waits for
    platform: tuple[str, ...] = field(default=())


def source(settings: Settings, path: str) -> str:
    """Where an upstream path is read from: the pinned git URL, or the local checkout."""
    local = settings.kubeflow.manifests_path
    if local:
        return posixpath.join(local, path)
    return f"{versions.KUBEFLOW_MANIFESTS_REPO}/{path}?ref={versions.KUBEFLOW_MANIFESTS_REF}"


def overlay_dir(settings: Settings, name: str) -> str:
    return f"{ov.OVERLAY_ROOT}/{settings.stack_name}/{name}"


def as_overlay_resource(src: str, directory: str) -> str:
    """An upstream URL or local path as a kustomization in `directory` must name it: URLs as they are,
    local paths relative to the overlay directory (kustomize refuses an absolute resource directory:
    "new root cannot be absolute"); relative paths are relative to the project directory."""
    if "://" in src:
        return src
    if posixpath.isabs(src):
        return os.path.relpath(src, PROJECT_ROOT / directory)
    return posixpath.relpath(src, directory)


def overlay_resource(settings: Settings, path: str, directory: str) -> str:
    return as_overlay_resource(source(settings, path), directory)


def enabled_steps(settings: Settings) -> tuple[Step, ...]:
    if settings.kubeflow.mode != "full":
        return ()
    comps = settings.kubeflow.components
    return tuple(s for s in CATALOG if s.component is None or comps.get(s.component, False))


def dex_user_id(email: str) -> str:
    """Dex's static user id: stable per email (upstream uses a fixed number for user@example.com)."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:12], 16))


def dex_config(settings: Settings) -> str:
    """Dex's config.yaml: upstream's, with the configured admin in place of user@example.com.
    The password hash comes from the `dex-passwords` Secret through DEX_USER_PASSWORD, the client
    secret from `dex-oidc-client`: nothing secret is in this text."""
    email = settings.kubeflow.admin_email
    return (
        "issuer: http://dex.auth.svc.cluster.local:5556/dex\n"
        "storage:\n  type: kubernetes\n  config:\n    inCluster: true\n"
        "web:\n  http: 0.0.0.0:5556\n"
        "logger:\n  level: \"info\"\n  format: text\n"
        "oauth2:\n  skipApprovalScreen: true\n"
        "enablePasswordDB: true\n"
        "staticPasswords:\n"
        f"- email: {email}\n"
        "  hashFromEnv: DEX_USER_PASSWORD\n"
        f"  username: {email.split('@')[0]}\n"
        f"  userID: \"{dex_user_id(email)}\"\n"
        "staticClients:\n"
        "- idEnv: OIDC_CLIENT_ID\n"
        "  redirectURIs: [\"/oauth2/callback\"]\n"
        "  name: 'Dex Login Application'\n"
        "  secretEnv: OIDC_CLIENT_SECRET\n"
    )


def gateway_servers(settings: Settings) -> list[dict]:
    """kubeflow-gateway: HTTPS with the platform's certificate, and HTTP only to redirect to it.
    Hosts stay '*' like upstream so a `kubectl port-forward` to localhost still matches."""
    return [
        {"hosts": ["*"], "port": {"name": "http", "number": 80, "protocol": "HTTP"}, "tls": {"httpsRedirect": True}},
        {
            "hosts": ["*"],
            "port": {"name": "https", "number": 443, "protocol": "HTTPS"},
            "tls": {"mode": "SIMPLE", "credentialName": GATEWAY_TLS_SECRET},
        },
    ]


def _delete_secret(name: str, namespace: str) -> Patch:
    return Patch("Secret", name, namespace, delete=True,
                 why="upstream ships a credential shared by every install; the program creates this Secret")


def step_patches(settings: Settings, step: Step) -> tuple[tuple[Patch, ...], tuple[ConfigMapMerge, ...]]:
    patches: list[Patch] = []
    merges: list[ConfigMapMerge] = []
    for ns in step.namespaces:
        patches.append(Patch("Namespace", ns, delete=True,
                             why="created by the program first, so its Secrets exist before the pods start"))
    if step.name == "oauth2-proxy":
        patches.append(_delete_secret("oauth2-proxy", "oauth2-proxy"))
        # The gateway serves HTTPS on every full stack, so the session cookie is Secure.
        merges.append(ConfigMapMerge("oauth2-proxy-parameters", "oauth2-proxy", {"FORCE_HTTPS": "true"}))
    elif step.name == "dex":
        patches.append(_delete_secret("dex-passwords", "auth"))
        patches.append(_delete_secret("dex-oidc-client", "auth"))
        config = dex_config(settings)
        patches.append(Patch("ConfigMap", "dex", "auth", merge={"data": {"config.yaml": config}},
                             why="the configured admin instead of user@example.com"))
        # Dex reads its config at start: a new admin email must restart it.
        digest = hashlib.sha256(config.encode()).hexdigest()[:16]
        patches.append(Patch("Deployment", "dex", "auth", merge={
            "spec": {"template": {"metadata": {"annotations": {"kubeflow-k3s/dex-config": digest}}}}
        }, why="restart Dex when its config changes"))
    elif step.name == "kubeflow-istio-resources":
        patches.append(Patch("Gateway", "kubeflow-gateway", "kubeflow", merge={"spec": {
            "selector": {"istio": "ingressgateway"}, "servers": gateway_servers(settings)}},
            why="HTTPS with the platform's certificate; HTTP redirects"))
    elif step.name == "pipelines":
        patches.append(_delete_secret("mlpipeline-minio-artifact", "kubeflow"))
        patches.append(_delete_secret("mysql-secret", "kubeflow"))
        patches.append(mysql_root_password_patch())
    elif step.name == "katib":
        patches.append(_delete_secret("katib-mysql-secrets", "kubeflow"))
    elif step.name == "model-registry":
        patches.append(_delete_secret("model-registry-db-secrets", "kubeflow"))
    for kind, name, ns, deployment in step.webhooks:
        patches.append(ov.annotate(
            kind, name, {ov.DEPENDS_ON: ov.depends_on_ref("Deployment", ns, deployment)},
            why="the webhook configuration appears only once the pod serving it is ready, so objects it "
                "validates in the same Directory never meet an unserved webhook",
        ))
    return tuple(patches), tuple(merges)


def mysql_root_password_patch() -> Patch:
    """KFP's MySQL: a root password from `mysql-secret` instead of MYSQL_ALLOW_EMPTY_PASSWORD."""
    return Patch("Deployment", "mysql", "kubeflow", merge={"spec": {"template": {"spec": {"containers": [{
        "name": "mysql",
        "env": [
            {"name": "MYSQL_ALLOW_EMPTY_PASSWORD", "$patch": "delete"},
            {"name": "MYSQL_ROOT_PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": "mysql-secret", "key": "password"}}},
        ],
    }]}}}}, why="upstream's MySQL root has an empty password")


def plan(settings: Settings) -> tuple[PlannedStep, ...]:
    steps = enabled_steps(settings)
    applied = {s.name for s in steps}
    out = []
    for step in steps:
        patches, merges = step_patches(settings, step)
        directory = overlay_dir(settings, step.name)
        overlay = None
        target = source(settings, step.path)
        if patches or merges:
            overlay = Overlay(overlay_resource(settings, step.path, directory), patches, merges)
            target = directory
        out.append(PlannedStep(
            step=step,
            source=source(settings, step.path),
            directory=target,
            overlay=overlay,
            after=tuple(a for a in step.after if a in applied),
            platform=step.platform,
        ))
    return tuple(out)


def profile_name(email: str) -> str:
    """A namespace name for a user without one: the email's local part, DNS-label safe."""
    local = "".join(c if c.isalnum() else "-" for c in email.split("@")[0].lower()).strip("-")
    return (local or "user")[:63]


def profiles(settings: Settings) -> list[dict]:
    """One Kubeflow Profile per configured user; with none configured, one for the admin, so the
    login always lands in a namespace of its own."""
    users = settings.kubeflow.users
    if not users:
        return [{"name": profile_name(settings.kubeflow.admin_email), "email": settings.kubeflow.admin_email, "quota": None}]
    return [{"name": u.name, "email": u.email, "quota": u.quota} for u in users]


def profile_spec(email: str, quota) -> dict:
    spec: dict = {"owner": {"kind": "User", "name": email}}
    hard: dict[str, str] = {}
    if quota is not None:
        if quota.cpu:
            hard["requests.cpu"] = quota.cpu
        if quota.memory:
            hard["requests.memory"] = quota.memory
        if quota.gpu:
            hard["requests.nvidia.com/gpu"] = quota.gpu
    if hard:
        spec["resourceQuotaSpec"] = {"hard": hard}
    return spec
