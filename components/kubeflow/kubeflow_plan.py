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

import dataclasses
import hashlib
import os
import pathlib
import posixpath
from dataclasses import dataclass, field

import yaml

from stacks import versions
from stacks import settings as settings_model
from stacks.settings import Settings

from components.cert_manager import cert_manager_plan
from components.istio import istio_plan
from components.kubeflow import kubeflow_overlay as ov
from components.kubeflow.kubeflow_overlay import ConfigMapMerge, Overlay, Patch

# The Pulumi project directory: relative paths in the plan are relative to it.
PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

CERT_MANAGER = "cert_manager"
ISTIO = "istio"

# The Secret of the gateway certificate the platform layer (cert-manager) issues for settings.tls.host.
GATEWAY_TLS_SECRET = "kubeflow-gateway-tls"
GATEWAY_NAMESPACE = "istio-system"
INGRESS_SERVICE = "istio-ingressgateway"
# Dex's OIDC client id is not a secret (it is in every authorisation URL); kept as upstream has it.
OIDC_CLIENT_ID = "kubeflow-oidc-authservice"

# Dex as the cluster reaches it (upstream's issuer; oauth2-proxy redeems codes and Istio fetches keys here).
DEX_IN_CLUSTER = "http://dex.auth.svc.cluster.local:5556/dex"
OAUTH2_CALLBACK = "/oauth2/callback"
# Paths upstream's `istio-ingressgateway-oauth2-proxy` (CUSTOM) and `istio-ingressgateway-require-jwt`
# (DENY) policies leave unauthenticated (common/oauth2-proxy/components/istio-external-auth).
AUTH_EXEMPT_PATHS = ("/dex/*", "/dex/**", "/oauth2/*")
# Where Let's Encrypt fetches the HTTP-01 token (RFC 8555 section 8.3), always over plain HTTP on port 80.
ACME_CHALLENGE_PATHS = ("/.well-known/acme-challenge/*",)


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


def public_identity(settings: Settings) -> bool:
    """Issue 6: on `cloud`, Dex's issuer and oauth2-proxy's redirect URL are the public HTTPS URL of
    tls.host. laptop (HTTPS on a local name) keeps upstream's in-cluster plain-HTTP issuer and
    relative redirect, which work on any address, a port-forward included."""
    return settings.profile == "cloud"


def public_url(settings: Settings) -> str:
    """https://<tls.host> without a port: on cloud the gateway's node ports sit behind a load balancer
    that answers on 443 (and on 80, where Let's Encrypt's HTTP-01 check arrives)."""
    return f"https://{settings.tls.host}"


def dex_issuer(settings: Settings) -> str:
    """The issuer Dex advertises and writes into every token (`iss`): oauth2-proxy and Istio's
    RequestAuthentication must name exactly this."""
    return f"{public_url(settings)}/dex" if public_identity(settings) else DEX_IN_CLUSTER


def oauth2_redirect_url(settings: Settings) -> str:
    """Where Dex sends the browser back to (registered in Dex's client, sent by oauth2-proxy)."""
    return f"{public_url(settings)}{OAUTH2_CALLBACK}" if public_identity(settings) else OAUTH2_CALLBACK


def oauth2_proxy_env(settings: Settings) -> list[dict]:
    """oauth2-proxy settings that override its upstream config file (environment variables beat the
    file: oauth2-proxy docs, "Configuration overview"). Only the issuer it expects in tokens and the
    absolute redirect URL change; `skip_oidc_discovery`, `login_url = "/dex/auth"` (relative, for
    the browser), `redeem_url` and `oidc_jwks_url` (in-cluster Dex) stay upstream's, so oauth2-proxy
    never has to reach the public name from inside the cluster."""
    if not public_identity(settings):
        return []
    return [
        {"name": "OAUTH2_PROXY_OIDC_ISSUER_URL", "value": dex_issuer(settings)},
        {"name": "OAUTH2_PROXY_REDIRECT_URL", "value": oauth2_redirect_url(settings)},
        {"name": "OAUTH2_PROXY_RELATIVE_REDIRECT_URL", "value": "false"},
    ]


def dex_jwt_rules(settings: Settings) -> list[dict]:
    """Istio's `istio-system/dex-jwt` RequestAuthentication: upstream's rule with the public issuer.
    Without `jwksUri` istiod would discover the keys at <issuer>/.well-known/openid-configuration, i.e.
    through the public name from inside the cluster; it fetches them from in-cluster Dex instead
    (Dex's NetworkPolicy admits istiod)."""
    return [{
        "issuer": dex_issuer(settings),
        "jwksUri": f"{DEX_IN_CLUSTER}/keys",
        "forwardOriginalToken": True,
        "outputClaimToHeaders": [
            {"header": "kubeflow-userid", "claim": "email"},
            {"header": "kubeflow-groups", "claim": "groups"},
        ],
        "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
    }]


def dashboard_url(settings: Settings) -> str:
    """The dashboard's URL: the public one on cloud (public_url), else tls.host on the gateway's
    HTTPS port (the node port when the gateway is a NodePort Service with nothing in front)."""
    if public_identity(settings):
        return f"{public_url(settings)}/"
    port = ""
    if settings.gateway.service_type == "NodePort" and settings.gateway.https_node_port:
        port = f":{settings.gateway.https_node_port}"
    return f"https://{settings.tls.host}{port}/"


def access_note(settings: Settings) -> str:
    """The `kubeflowAccess` output: how the stack is reached and whether that is fit for the internet
    (issue 6: laptop and edge may use plain HTTP on a local address, said plainly)."""
    mode = settings.kubeflow.mode
    if mode == "pipelines":
        return ("plain HTTP on a local address: Kubeflow Pipelines standalone has no login and no TLS; "
                "reach it only through kubeflowPortForward at http://localhost:8080/ and do not expose ml-pipeline-ui")
    if mode != "full":
        return ""
    url = dashboard_url(settings)
    if public_identity(settings):
        note = (f"public HTTPS only: {url} (plain HTTP is redirected to HTTPS); login through Dex with issuer "
                f"{dex_issuer(settings)} and redirect {oauth2_redirect_url(settings)}")
        if settings.gateway.service_type == "NodePort":
            note += (f"; the load balancer for {settings.tls.host} must forward 443 to node port "
                     f"{settings.gateway.https_node_port} and 80 to node port {settings.gateway.http_node_port}")
        if cert_manager_plan.acme_enabled(settings) and not cert_manager_plan.publicly_trusted(settings):
            note += "; its certificate is from Let's Encrypt's staging environment: browsers do not trust it"
        return note
    if cert_manager_plan.publicly_trusted(settings):
        certificate = "a Let's Encrypt certificate"
    elif cert_manager_plan.acme_enabled(settings):
        certificate = "a Let's Encrypt staging certificate (not publicly trusted)"
    else:
        certificate = f"the cluster's own CA ({cert_manager_plan.CA_ISSUER}, not publicly trusted)"
    return (f"local address: {url} over HTTPS with {certificate}; the login's identity provider is plain HTTP "
            f"inside the cluster (Dex issuer {DEX_IN_CLUSTER}, relative redirect {OAUTH2_CALLBACK}): "
            f"not set up for the internet")


def gateway_http_port(settings: Settings) -> int:
    """The ingress gateway pod's plain-HTTP port (the Service's port 80 targets it). Authorization
    policies match workload ports, not Service ports (istio/api#3075)."""
    ports = istio_plan.ingress_gateway_values(settings)["service"]["ports"]
    return next(p["targetPort"] for p in ports if p["port"] == 80)


def auth_operations(settings: Settings) -> list[dict]:
    """The `to` of both ingress-gateway auth policies: what needs a login.

    Upstream: every path but Dex's and oauth2-proxy's. With ACME (tls.issuer letsencrypt[-staging]) the
    HTTP-01 challenge path is also left out, but only on the plain-HTTP port, where the gateway
    serves nothing else (kubeflow-gateway redirects it to HTTPS; cert-manager's solver Ingress adds a
    route for tls.host and the token path). On the HTTPS port the path stays behind the login. Without
    ACME nobody needs the path, so it keeps upstream's policy."""
    if not cert_manager_plan.acme_enabled(settings):
        return [{"operation": {"notPaths": list(AUTH_EXEMPT_PATHS)}}]
    return [
        {"operation": {"notPaths": [*AUTH_EXEMPT_PATHS, *ACME_CHALLENGE_PATHS]}},
        {"operation": {"paths": list(ACME_CHALLENGE_PATHS), "notPorts": [str(gateway_http_port(settings))]}},
    ]


def auth_policy_rules(settings: Settings) -> dict[str, list[dict]]:
    """{policy name: rules} of upstream's two ingress-gateway policies with auth_operations()."""
    to = auth_operations(settings)
    return {
        "istio-ingressgateway-oauth2-proxy": [
            {"to": to, "when": [{"key": "request.headers[authorization]", "notValues": ["*"]}]},
        ],
        "istio-ingressgateway-require-jwt": [
            {"from": [{"source": {"notRequestPrincipals": ["*"]}}], "to": to},
        ],
    }


DEX_PASSWORDS_ANNOTATION = "kubeflow-k3s/dex-passwords"
ADMIN_PASSWORD_ENV = "DEX_USER_PASSWORD"  # upstream's variable (dex-passwords, read with envFrom)
DEX_CONNECTOR_SECRET_ENV = "DEX_CONNECTOR_SECRET"


@dataclass(frozen=True)
class Login:
    """One static Dex login: who, and the variable of the `dex-passwords` Secret holding its hash."""

    email: str
    profile: str  # the Profile (namespace) the person owns
    env: str
    admin: bool = False


def logins(settings: Settings) -> tuple[Login, ...]:
    """Dex's static password entries: the admin always (a way in that does not depend on an outside
    identity provider), and every kubeflow.users entry unless kubeflow.identityProvider is set (then
    they log in through it, and their Profile matches the email it reports)."""
    kf = settings.kubeflow
    out = [Login(kf.admin_email, admin_namespace(settings), ADMIN_PASSWORD_ENV, admin=True)]
    if kf.identity_provider is None:
        for u in kf.users:
            if u.email != kf.admin_email:
                out.append(Login(u.email, u.name, "DEX_USER_PASSWORD_" + u.name.upper().replace("-", "_")))
    return tuple(out)


def dex_connector_callback(settings: Settings) -> str:
    """Where the outside identity provider sends the browser back to Dex: Dex's own /callback under
    the URL the browser uses for the gateway (register it with the provider)."""
    return f"{dashboard_url(settings)}dex/callback"


def dex_connector(settings: Settings) -> dict | None:
    """The Dex connector of kubeflow.identityProvider (dexidp.io/docs/connectors/{oidc,github,google,ldap}).
    Its secret is `$DEX_CONNECTOR_SECRET`: Dex expands environment variables in its config file
    (DEX_EXPAND_ENV unset = on, dexidp/dex config.yaml.dist), read from `dex-passwords` by envFrom."""
    idp = settings.kubeflow.identity_provider
    if idp is None:
        return None
    c = idp.config
    secret = f"${DEX_CONNECTOR_SECRET_ENV}"
    redirect = dex_connector_callback(settings)
    if idp.type == "oidc":
        config = {"issuer": c["issuer"], "clientID": c["clientId"], "clientSecret": secret, "redirectURI": redirect,
                  "scopes": list(c.get("scopes") or ["openid", "profile", "email", "groups"]),
                  "insecureEnableGroups": True, "getUserInfo": True}
    elif idp.type == "github":
        config = {"clientID": c["clientId"], "clientSecret": secret, "redirectURI": redirect}
        if c.get("orgs"):
            config["orgs"] = [{"name": o} for o in c["orgs"]]
    elif idp.type == "google":
        config = {"clientID": c["clientId"], "clientSecret": secret, "redirectURI": redirect}
        if c.get("hostedDomains"):
            config["hostedDomains"] = list(c["hostedDomains"])
    else:  # ldap
        config = {
            "host": c["host"], "insecureNoSSL": bool(c.get("insecureNoSSL", False)),
            "bindDN": c["bindDN"], "bindPW": secret,
            "userSearch": {
                "baseDN": c["userBaseDN"], "filter": c.get("userFilter", "(objectClass=person)"),
                "username": c.get("usernameAttr", "uid"), "idAttr": "DN",
                "emailAttr": c.get("emailAttr", "mail"), "nameAttr": c.get("usernameAttr", "uid"),
            },
        }
    return {"type": idp.type, "id": idp.type, "name": idp.name, "config": config}


def dex_config(settings: Settings) -> str:
    """Dex's config.yaml: upstream's, with the configured admin and users in place of user@example.com
    (each password hash from its variable of the `dex-passwords` Secret, `hashFromEnv`), an outside
    identity provider as a connector when configured, and on cloud the public issuer and redirect URL
    (public_identity). The client secret comes from `dex-oidc-client`: nothing secret is in this
    text. Dex serves under the issuer's path (/dex) whatever host the issuer names, so in-cluster
    token redemption at DEX_IN_CLUSTER keeps working."""
    config: dict = {
        "issuer": dex_issuer(settings),
        "storage": {"type": "kubernetes", "config": {"inCluster": True}},
        "web": {"http": "0.0.0.0:5556"},
        "logger": {"level": "info", "format": "text"},
        "oauth2": {"skipApprovalScreen": True},
        "enablePasswordDB": True,
        "staticPasswords": [
            {"email": login.email, "hashFromEnv": login.env, "username": login.email.split("@")[0],
             "userID": dex_user_id(login.email)}
            for login in logins(settings)
        ],
        "staticClients": [{
            "idEnv": "OIDC_CLIENT_ID",
            "redirectURIs": [oauth2_redirect_url(settings)],
            "name": "Dex Login Application",
            "secretEnv": "OIDC_CLIENT_SECRET",
        }],
    }
    connector = dex_connector(settings)
    if connector:
        config["connectors"] = [connector]
    return yaml.safe_dump(config, sort_keys=False, width=1000)


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
        env = oauth2_proxy_env(settings)
        if env:
            patches.append(Patch("Deployment", "oauth2-proxy", "oauth2-proxy", merge={"spec": {"template": {"spec": {
                "containers": [{"name": "oauth2-proxy", "env": env}]}}}},
                why="the public HTTPS issuer and redirect URL (cloud)"))
            patches.append(Patch("RequestAuthentication", "dex-jwt", GATEWAY_NAMESPACE,
                                 merge={"spec": {"jwtRules": dex_jwt_rules(settings)}},
                                 why="Istio accepts tokens of Dex's public issuer, keys fetched in-cluster"))
        if cert_manager_plan.acme_enabled(settings):
            for policy, rules in auth_policy_rules(settings).items():
                patches.append(Patch("AuthorizationPolicy", policy, GATEWAY_NAMESPACE, merge={"spec": {"rules": rules}},
                                     why="Let's Encrypt's HTTP-01 check reaches the challenge solver without a login"))
    elif step.name == "dex":
        patches.append(_delete_secret("dex-passwords", "auth"))
        patches.append(_delete_secret("dex-oidc-client", "auth"))
        config = dex_config(settings)
        patches.append(Patch("ConfigMap", "dex", "auth", merge={"data": {"config.yaml": config}},
                             why="the configured admin and users instead of user@example.com"))
        # Dex reads its config at start: a new admin email or user must restart it. (A changed
        # password restarts it through DEX_PASSWORDS_ANNOTATION, set by components/kubeflow/kubeflow.py.)
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
        patches.extend(kfp_image_patches(settings, KFP_DEPLOYMENTS_FULL))
        patches.extend(kfp_profile_frontend_patch(settings))
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


# Deployments of KFP 2.16 that run an amd64-only image (settings.KFP_AMD64_ONLY_IMAGES), in full
# Kubeflow and standalone; tests/contract/test_kubeflow_images.py derives both from the rendered objects.
KFP_DEPLOYMENTS_FULL = (
    "cache-server", "metadata-envoy-deployment", "metadata-grpc-deployment", "metadata-writer", "ml-pipeline",
    "ml-pipeline-persistenceagent", "ml-pipeline-scheduledworkflow", "ml-pipeline-ui", "ml-pipeline-viewer-crd",
    "ml-pipeline-visualizationserver",
)
KFP_DEPLOYMENTS_STANDALONE = ("cache-deployer-deployment", *KFP_DEPLOYMENTS_FULL)
ARCH_LABEL = "kubernetes.io/arch"
# KFP's API server starts every pipeline step's driver and launcher with these images (env of ml-pipeline).
KFP_RUNTIME_IMAGES = {"V2_DRIVER_IMAGE": "ghcr.io/kubeflow/kfp-driver", "V2_LAUNCHER_IMAGE": "ghcr.io/kubeflow/kfp-launcher"}


def kustomize_images(settings: Settings) -> dict[str, str]:
    """kubeflow.images, applied to every generated overlay through kustomize `images:`."""
    return dict(settings.kubeflow.images)


def override_image(ref: str, settings: Settings) -> str:
    """An upstream image reference as this stack runs it (kubeflow.images applied): for the per-stack
    image list (pre-pull, air-gap bundle)."""
    return ov.override_image(ref, settings.kubeflow.images)


def pin_kfp_to_amd64(settings: Settings) -> bool:
    """A cluster with amd64 and other nodes, and an amd64-only KFP image without override: KFP's pods
    (and pipeline steps, whose driver and launcher are KFP images) run on the amd64 nodes. A cluster
    without amd64 nodes is refused in settings (kubeflow.images) unless every image has an override."""
    arches = {n.arch for n in settings.nodes}
    missing = [i for i in settings_model.KFP_AMD64_ONLY_IMAGES if i not in settings.kubeflow.images]
    return "amd64" in arches and len(arches) > 1 and bool(missing)


def kfp_image_patches(settings: Settings, deployments: tuple[str, ...], namespace: str = "kubeflow") -> list[Patch]:
    """The driver/launcher images of kubeflow.images (env values kustomize `images:` cannot reach), and
    in mixed-architecture clusters KFP pinned to amd64 nodes (its Deployments and, through Argo's
    workflowDefaults, every pipeline run's pods)."""
    out: list[Patch] = []
    env = [{"name": var, "value": override_image(f"{image}:{versions.KFP_VERSION}", settings)}
           for var, image in sorted(KFP_RUNTIME_IMAGES.items()) if image in settings.kubeflow.images]
    if env:
        out.append(Patch("Deployment", "ml-pipeline", namespace, merge={"spec": {"template": {"spec": {"containers": [
            {"name": "ml-pipeline-api-server", "env": env}]}}}}, why="kubeflow.images: the driver and launcher images"))
    if pin_kfp_to_amd64(settings):
        for d in deployments:
            out.append(Patch("Deployment", d, namespace, merge={"spec": {"template": {"spec": {
                "nodeSelector": {ARCH_LABEL: "amd64"}}}}}, why="KFP 2.16's images are amd64 only (kubeflow/pipelines#12705)"))
        out.append(Patch("ConfigMap", "workflow-controller-configmap", namespace, merge={"data": {
            "workflowDefaults": yaml.safe_dump({"spec": {"nodeSelector": {ARCH_LABEL: "amd64"}}})}},
            why="pipeline steps start with KFP's amd64-only driver and launcher"))
    return out


FRONTEND_IMAGE = "ghcr.io/kubeflow/kfp-frontend"


def kfp_profile_frontend_patch(settings: Settings) -> list[Patch]:
    """Multi-user KFP's profile controller starts an artifact UI in every profile namespace with
    `<FRONTEND_IMAGE>:<FRONTEND_TAG>` (its sync.py): an override of kfp-frontend goes there too."""
    if FRONTEND_IMAGE not in settings.kubeflow.images:
        return []
    name, tag, digest = ov.split_image(override_image(f"{FRONTEND_IMAGE}:{versions.KFP_VERSION}", settings))
    tag = (tag or versions.KFP_VERSION) + (f"@{digest}" if digest else "")
    return [Patch("Deployment", "kubeflow-pipelines-profile-controller", "kubeflow", merge={"spec": {"template": {"spec": {
        "containers": [{"name": "profile-controller", "env": [{"name": "FRONTEND_IMAGE", "value": name},
                                                              {"name": "FRONTEND_TAG", "value": tag}]}]}}}},
        why="kubeflow.images: the artifact UI the profile controller starts in each profile namespace")]


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
        if step.namespace:
            # Its kustomization renders objects without a namespace (the Directory gives them
            # step.namespace later): a target naming a namespace would match nothing.
            patches = tuple(dataclasses.replace(p, namespace=None) for p in patches)
        directory = overlay_dir(settings, step.name)
        overlay = None
        target = source(settings, step.path)
        images = kustomize_images(settings)
        if patches or merges or images:
            overlay = Overlay(overlay_resource(settings, step.path, directory), patches, merges, images=images)
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


def admin_namespace(settings: Settings) -> str:
    """The admin's own Profile namespace: the kubeflow.users entry with the admin's email, else one
    named after the admin email's local part (settings refuse a clash with a user or a platform namespace)."""
    return settings_model.admin_profile_name(settings.kubeflow.admin_email, settings.kubeflow.users)


def profiles(settings: Settings) -> list[dict]:
    """One Kubeflow Profile per configured user, and the admin's own (the admin always owns one, so the
    login lands in a namespace of its own)."""
    kf = settings.kubeflow
    out = [{"name": u.name, "email": u.email, "quota": u.quota, "contributors": u.contributors} for u in kf.users]
    if not any(u.email == kf.admin_email for u in kf.users):
        out.insert(0, {"name": admin_namespace(settings), "email": kf.admin_email, "quota": None, "contributors": ()})
    return out


def profile_spec(email: str, quota) -> dict:
    spec: dict = {"owner": {"kind": "User", "name": email}}
    hard = quota_hard(quota)
    if hard:
        spec["resourceQuotaSpec"] = {"hard": hard}
    return spec


def quota_hard(quota) -> dict[str, str]:
    hard: dict[str, str] = {}
    if quota is not None:
        if quota.cpu:
            hard["requests.cpu"] = quota.cpu
        if quota.memory:
            hard["requests.memory"] = quota.memory
        if quota.gpu:
            hard["requests.nvidia.com/gpu"] = quota.gpu
    return hard


LIMIT_RANGE = "kubeflow-k3s-defaults"
# Requests given to a container that states none, in a namespace with a CPU/memory quota (a quota on
# requests.cpu/requests.memory rejects any pod with a container lacking them: Argo's init/wait
# helpers, KFP steps without resources, Katib trials, TensorBoards). Small enough that a 3-container
# KFP step (init, wait, main) asks 300m / 384Mi.
DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}


def _quantity(q: str) -> float:
    units = {"m": 1e-3, "k": 1e3, "Ki": 1024, "M": 1e6, "Mi": 1024 ** 2, "G": 1e9, "Gi": 1024 ** 3,
             "T": 1e12, "Ti": 1024 ** 4, "P": 1e15, "Pi": 1024 ** 5, "E": 1e18, "Ei": 1024 ** 6}
    for unit in sorted(units, key=len, reverse=True):
        if q.endswith(unit):
            return float(q[: -len(unit)]) * units[unit]
    return float(q)


def limit_range_spec(quota) -> dict | None:
    """The LimitRange of a Profile whose quota limits CPU or memory requests: default requests for
    containers that state none (never above the quota itself). No default limits: a limit nobody asked
    for would OOM-kill a notebook or a training step; the quota counts requests only. GPUs need
    nothing: an extended resource's request defaults to its limit, which GPU pods always set."""
    hard = quota_hard(quota)
    defaults = {}
    for res in ("cpu", "memory"):
        cap = hard.get(f"requests.{res}")
        if cap is not None:
            want = DEFAULT_REQUEST[res]
            defaults[res] = want if _quantity(want) <= _quantity(cap) else cap
    if not defaults:
        return None
    return {"limits": [{"type": "Container", "defaultRequest": defaults}]}


def kfp_ui_principal() -> str:
    """The mesh identity of Kubeflow Pipelines' UI (it reads artifacts in profile namespaces on a user's behalf)."""
    return f"{istio_plan.mesh_config()['trustDomain']}/ns/kubeflow/sa/ml-pipeline-ui"


def contributor_objects(namespace: str, email: str) -> dict[str, dict]:
    """What Kubeflow's access management (KFAM, "Manage contributors") creates in a profile namespace
    for a contributor: a RoleBinding to kubeflow-edit and an Istio policy admitting the contributor's
    requests (identified by the kubeflow-userid header) when they come through the ingress gateway, which
    sets that header from the login, or the KFP UI. Inside the mesh any pod could set the header itself:
    without the `from` sources, one user's notebook could call another's as a contributor. Keyed by kind."""
    safe = "".join(c if c.isalnum() else "-" for c in email.lower())
    name = f"user-{safe}-clusterrole-edit"[:253]
    meta = {"name": name, "namespace": namespace, "annotations": {"role": "edit", "user": email}}
    return {
        "RoleBinding": {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                     "name": "kubeflow-edit"},
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": email}]},
        "AuthorizationPolicy": {"metadata": meta, "spec": {"rules": [{
            "from": [{"source": {"principals": [istio_plan.ingress_gateway_principal(), kfp_ui_principal()]}}],
            "when": [{"key": "request.headers[kubeflow-userid]", "values": [email]}]}]}},
    }


def sidecar_exceptions(settings: Settings) -> dict[str, dict]:
    """Kubeflow's two Sidecar exceptions to the mesh-wide egress limit (istio_plan.default_sidecar):
    the notebook controller culls idle notebooks by calling each notebook's kernel API in its profile
    namespace, and ml-pipeline-ui reads artifacts through every profile namespace's artifact proxy.
    {name: spec}, in the kubeflow namespace; only for the components that run those workloads.
    (common/istio/istio-install/base/sidecar-prune-egress.yaml; tests check them against it.)"""
    comps = settings.kubeflow.components
    out = {}
    if comps.get("notebooks"):
        out["notebook-controller-exception"] = {"workloadSelector": {"labels": {"app": "notebook-controller"}},
                                                "egress": [{"hosts": ["*/*"]}]}
    if comps.get("pipelines"):
        out["ml-pipeline-ui-exception"] = {"workloadSelector": {"labels": {"app": "ml-pipeline-ui"}},
                                           "egress": [{"hosts": ["*/*"]}]}
    return out
