"""Pure plan of the credentials that replace kubeflow/manifests 26.03's hard-coded ones.

Upstream ships the same values to every cluster (../shared/upstream/README.md lists them): Dex's user
`user@example.com` / `12341234`, the OIDC client secret shared by Dex and oauth2-proxy, the oauth2-proxy
cookie secret, KFP's object-store keys `minio` / `minio123`, KFP's MySQL root with an empty password,
Katib's MySQL root password `test` (and Model Registry's). Here each is generated once per stack
(pulumi_random, kept encrypted in state) and reaches the cluster only as a Secret with secret values;
the overlays delete the upstream Secret objects (kubeflow_plan.step_patches).

KFP's profile controller (multi-user) does not copy the admin keys into profile namespaces: it asks
SeaweedFS's IAM API, with the admin keys of `kubeflow/mlpipeline-minio-artifact`, for a key pair per
namespace and writes that into the namespace's own `mlpipeline-minio-artifact`. Replacing the admin
keys here therefore replaces what every profile namespace gets.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Mapping

import bcrypt

# Generated values: name -> length. Letters and digits only: several of these end up in env
# variables, command-line flags (KFP's metadata server) and MySQL's init scripts.
GENERATED = {
    "oidc-client-secret": 32,
    # oauth2-proxy needs a cookie secret of exactly 16, 24 or 32 bytes (AES key).
    "cookie-secret": 32,
    "kfp-object-store-access-key": 20,
    "kfp-object-store-secret-key": 40,
    "kfp-mysql-root-password": 32,
    "katib-mysql-root-password": 32,
    "model-registry-db-password": 32,
    # Seed of the Dex password hash's salt (see dex_password_hash).
    "dex-hash-salt-seed": 32,
}
ADMIN_PASSWORD_LENGTH = 24
ADMIN_PASSWORD = "admin-password"
ADMIN_PASSWORD_HASH = "admin-password-hash"


@dataclass(frozen=True)
class Literal:
    """A fixed, non-secret value in a Secret (a user name, a client id)."""

    value: str


@dataclass(frozen=True)
class SecretSpec:
    name: str
    namespace: str
    data: Mapping[str, str | Literal]  # key -> generated value name, or a Literal
    replaces: str  # where upstream hard-codes it


SECRETS: dict[str, SecretSpec] = {
    s.name: s
    for s in (
        SecretSpec("oauth2-proxy", "oauth2-proxy", {
            "client-id": Literal("kubeflow-oidc-authservice"),
            "client-secret": "oidc-client-secret",
            "cookie-secret": "cookie-secret",
        }, "common/oauth2-proxy/base/kustomization.yaml (secretGenerator)"),
        SecretSpec("dex-oidc-client", "auth", {
            "OIDC_CLIENT_ID": Literal("kubeflow-oidc-authservice"),
            "OIDC_CLIENT_SECRET": "oidc-client-secret",
        }, "common/dex/base/secret_params.env"),
        SecretSpec("dex-passwords", "auth", {"DEX_USER_PASSWORD": ADMIN_PASSWORD_HASH},
                   "common/dex/base/dex-passwords.yaml"),
        SecretSpec("mlpipeline-minio-artifact", "kubeflow", {
            "accesskey": "kfp-object-store-access-key",
            "secretkey": "kfp-object-store-secret-key",
        }, "applications/pipeline/upstream/third-party/seaweedfs (minio / minio123)"),
        SecretSpec("mysql-secret", "kubeflow", {"username": Literal("root"), "password": "kfp-mysql-root-password"},
                   "applications/pipeline/upstream/third-party/mysql (root, empty password)"),
        SecretSpec("katib-mysql-secrets", "kubeflow", {"MYSQL_ROOT_PASSWORD": "katib-mysql-root-password"},
                   "applications/katib/upstream/components/mysql (test)"),
        SecretSpec("model-registry-db-secrets", "kubeflow", {
            "MYSQL_USER_NAME": Literal("root"),
            "MYSQL_ROOT_PASSWORD": "model-registry-db-password",
        }, "applications/model-registry/upstream/overlays/db/secrets.env (test)"),
    )
}

USER_PASSWORD_LENGTH = 24
CONNECTOR_SECRET = "dex-connector-secret"


def user_password_hash(email: str) -> str:
    """The value name of a kubeflow.users entry's Dex hash (its password is generated per user)."""
    return f"user-password-hash:{email}"


def dex_passwords(logins, connector: bool, connector_env: str) -> SecretSpec:
    """`auth/dex-passwords` for the stack's logins (kubeflow_plan.logins): one bcrypt hash per person,
    in the variable Dex's config names with `hashFromEnv` (the Deployment reads the Secret with
    envFrom), plus the identity provider's secret when one is configured."""
    data: dict[str, str | Literal] = {
        login.env: ADMIN_PASSWORD_HASH if login.admin else user_password_hash(login.email) for login in logins
    }
    if connector:
        data[connector_env] = CONNECTOR_SECRET
    return SecretSpec("dex-passwords", "auth", data, SECRETS["dex-passwords"].replaces)


BCRYPT_ROUNDS = 12  # as upstream's documented hash ($2y$12$...)
_STD_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT_B64 = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _bcrypt_salt(seed: str, password: str, rounds: int = BCRYPT_ROUNDS) -> bytes:
    """16 salt bytes derived from the stack's seed and the password, in bcrypt's own base64."""
    raw = hmac.new(seed.encode(), password.encode(), hashlib.sha256).digest()[:16]
    encoded = base64.b64encode(raw).rstrip(b"=").translate(bytes.maketrans(_STD_B64, _BCRYPT_B64))
    return b"$2b$%02d$" % rounds + encoded[:22]


@functools.lru_cache(maxsize=32)
def dex_password_hash(password: str, seed: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """bcrypt hash of the admin password for Dex, identical on every run.

    A fresh random salt per run would change the Secret on every `pulumi up` (a perpetual diff and
    a Dex restart). The salt comes instead from a generated seed kept in state, mixed with the
    password, so it is unique per stack and per password and stable while neither changes.
    Being a pure function, it is computed once per process (bcrypt is slow on purpose: ~0.4 s).
    """
    return bcrypt.hashpw(password.encode(), _bcrypt_salt(seed, password, rounds)).decode()


def secrets_for(step_secrets: tuple[str, ...]) -> list[SecretSpec]:
    return [SECRETS[name] for name in step_secrets]
