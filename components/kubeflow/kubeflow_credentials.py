"""KubeflowCredentials: the generated credentials of a stack and the Secrets that carry them.

Every value is a pulumi_random resource: generated on the first `pulumi up`, kept encrypted in the
stack's state, the same on every later run. Rotating one = replacing its random resource
(`pulumi up --replace <urn>`), see docs/kubeflow.md.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.kubeflow import credentials_plan as plan
from components.k3s.k3s_cluster import K3sCluster


class KubeflowCredentials(pulumi.ComponentResource):
    """Generated values (`values[name]`, all secret Outputs) and the admin password.

    `admin_password` is the configured `adminPassword` or a generated one (`generated_admin` tells
    which); `values["admin-password-hash"]` is its Dex bcrypt hash, stable across runs.
    """

    values: dict[str, pulumi.Output[str]]
    admin_password: pulumi.Output[str]
    generated_admin: bool

    def __init__(
        self,
        name: str,
        needed: Iterable[str],
        admin_password: pulumi.Input[str] | None,
        with_admin: bool,
        opts: pulumi.ResourceOptions | None = None,
        users: Sequence[tuple[str, str]] = (),
        connector_secret: pulumi.Input[str] | None = None,
    ):
        """`users`: (email, profile) of each kubeflow.users login that gets a generated password."""
        super().__init__("kubeflow-k3s:kubeflow:Credentials", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)

        def generate(key: str, length: int) -> pulumi.Output[str]:
            # Letters and digits only (see credentials_plan.GENERATED); never shown in logs.
            return pulumi.Output.secret(
                random.RandomPassword(f"{name}-{key}", length=length, special=False, opts=child).result
            )

        self.values = {key: generate(key, plan.GENERATED[key]) for key in sorted(set(needed))}
        self.user_passwords: dict[str, pulumi.Output[str]] = {}
        self.generated_admin = False
        self.admin_password = pulumi.Output.secret("")
        if with_admin:
            if admin_password is None:
                self.generated_admin = True
                admin_password = generate(plan.ADMIN_PASSWORD, plan.ADMIN_PASSWORD_LENGTH)
            self.admin_password = pulumi.Output.secret(admin_password)
            seed = generate("dex-hash-salt-seed", plan.GENERATED["dex-hash-salt-seed"])

            def hashed(password: pulumi.Input[str]) -> pulumi.Output[str]:
                return pulumi.Output.secret(
                    pulumi.Output.all(password, seed).apply(lambda a: plan.dex_password_hash(a[0], a[1])))

            self.values[plan.ADMIN_PASSWORD_HASH] = hashed(self.admin_password)
            # One generated password per user (the profile name keeps the resource name stable and unique).
            for email, profile in users:
                password = generate(f"user-password-{profile}", plan.USER_PASSWORD_LENGTH)
                self.user_passwords[email] = password
                self.values[plan.user_password_hash(email)] = hashed(password)
        if connector_secret is not None:
            self.values[plan.CONNECTOR_SECRET] = pulumi.Output.secret(connector_secret)
        self.register_outputs({"generated": sorted(self.values), "generatedAdminPassword": self.generated_admin,
                               "userLogins": sorted(self.user_passwords)})

    def digest(self, keys: Iterable[str]) -> pulumi.Output[str]:
        """A short digest of the given values (secret): changes whenever one of them changes."""
        import hashlib

        keys = sorted(keys)
        return pulumi.Output.secret(pulumi.Output.all(*[self.values[k] for k in keys]).apply(
            lambda vs: hashlib.sha256("\0".join(f"{k}={v}" for k, v in zip(keys, vs)).encode()).hexdigest()[:16]))

    def secret(
        self,
        name: str,
        spec: plan.SecretSpec,
        cluster: K3sCluster,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.core.v1.Secret:
        """The Kubernetes Secret of `spec`, every value secret (literals included, for simplicity)."""
        data = {
            key: (pulumi.Output.from_input(src.value) if isinstance(src, plan.Literal) else self.values[src])
            for key, src in spec.data.items()
        }
        return k8s.core.v1.Secret(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=spec.name,
                namespace=spec.namespace,
                labels={"app.kubernetes.io/managed-by": "kubeflow-k3s"},
            ),
            type="Opaque",
            string_data=pulumi.Output.secret(pulumi.Output.all(**data)),
            opts=cluster.k8s_options(parent, depends_on=depends_on),
        )


def needed_values(secret_names: Iterable[str]) -> set[str]:
    """The generated values the given Secrets use."""
    out = set()
    for name in secret_names:
        for src in plan.SECRETS[name].data.values():
            if isinstance(src, str) and src in plan.GENERATED:
                out.add(src)
    return out
