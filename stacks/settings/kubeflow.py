"""Kubeflow settings: the `kubeflow` section (mode, components, users and their quotas, the admin,
the identity provider, a local manifests tree, image overrides) and the password rule for Dex.

Read by the Kubeflow layer (components/kubeflow/): the full platform (Dex, oauth2-proxy, Profiles) or
Kubeflow Pipelines alone. Which components need which comes from stacks/kubeflow_components.py;
docs/kubeflow.md explains users, logins and the arm64 recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import kubeflow_components, profiles
from .common import EMAIL_RE, NODE_NAME_RE, Reader, did_you_mean
from .nodes import Node

SECTIONS = ("kubeflow",)

KUBEFLOW_MODES = ("full", "pipelines", "none")


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


def admin_profile_name(admin_email: str, users: list[KubeflowUser] | tuple[KubeflowUser, ...]) -> str:
    """The admin's own Profile (namespace): the user entry with the admin's email, else one named
    after the email's local part (DNS-label safe), as components/kubeflow/kubeflow_plan.admin_namespace says."""
    for u in users:
        if u.email == admin_email:
            return u.name
    local = "".join(c if c.isalnum() else "-" for c in admin_email.split("@")[0].lower()).strip("-")
    return (local or "user")[:63]


def check_admin_namespace(r: Reader, admin_email: str, users: list[KubeflowUser]) -> None:
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


def check_contributor_logins(r: Reader, admin_email: str, users: list[KubeflowUser], raw_users: list[Any]) -> None:
    """Without an identity provider, Dex's static logins are the admin's and each listed user's: a
    contributor who is neither could be granted a namespace but never log in to use it. `raw_users`: the
    configured list, so each error names the entry as written (invalid entries are reported already)."""
    logins = {admin_email, *(u.email for u in users)}
    for j, u in enumerate(raw_users):
        listed = u.get("contributors") if isinstance(u, Mapping) else None
        for c_i, c in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(c, str) and EMAIL_RE.match(c) and c not in logins:
                r.fail(f"kubeflow.users[{j}].contributors[{c_i}]",
                       f"{c} has no login: without kubeflow.identityProvider only kubeflow.adminEmail and the "
                       "kubeflow.users entries get one. List them in kubeflow.users (they get a password and a "
                       "namespace of their own), or set kubeflow.identityProvider")


def parse_identity_provider(r: Reader, value: Any) -> IdentityProvider | None:
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


def parse_image_overrides(r: Reader, value: Any) -> dict[str, str]:
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


def check_kfp_architectures(r: Reader, kubeflow: KubeflowSettings, nodes: list[Node]) -> None:
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


def parse_kubeflow(r: Reader, value: Any, prof: profiles.Profile) -> KubeflowSettings:
    kfd = r.obj(value, "kubeflow", {"mode", "components", "users", "adminEmail", "manifestsPath", "identityProvider", "images"})
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
    check_admin_namespace(r, admin_email or "admin@kubeflow.local", users)
    identity_provider = parse_identity_provider(r, kfd.get("identityProvider"))
    if identity_provider is None and kfd.get("identityProvider") is None and (mode or prof.kubeflow_mode) == "full":
        # (users are accepted and ignored in the other modes: Settings.warnings says so)
        check_contributor_logins(r, admin_email or "admin@kubeflow.local", users, ud)
    images = parse_image_overrides(r, kfd.get("images"))
    return KubeflowSettings(
        mode=mode or prof.kubeflow_mode,
        components=comps,
        users=tuple(users),
        admin_email=admin_email or "admin@kubeflow.local",
        manifests_path=r.string(kfd, "manifestsPath", "kubeflow.manifestsPath", None),
        auto_enabled=tuple(auto_enabled),
        identity_provider=identity_provider,
        images=images,
    )


def ignored(r: Reader, raw: Mapping[str, Any], kubeflow: KubeflowSettings) -> None:
    """Users, the admin login and the component switches belong to the full platform (Dex, profiles):
    set with another mode they are accepted and ignored; say so."""
    if kubeflow.mode != "full":
        for key in ("users", "adminEmail", "components"):
            if (raw.get("kubeflow") or {}).get(key):
                r.warn(f"kubeflow.{key}", f"is ignored with kubeflow.mode: {kubeflow.mode} (it configures full Kubeflow)")
