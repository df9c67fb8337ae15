"""Kubeflow: the kubeflow/manifests 26.03 components of a stack, one Directory each, in upstream order,
each waiting only for what it needs (kubeflow_plan), with the program's own credentials and login.

Order of things:
  footprint guard (nodes can hold it) ─┬─> auth / oauth2-proxy namespaces ─> their Secrets ─> oauth2-proxy, Dex
                                       └─> kubeflow-namespace ─> KFP / Katib / Model Registry Secrets ─> those
  platform: cert-manager ready ─> steps with Certificates/Issuers; istiod ready ─> steps with Istio
  objects or injected pods; profiles ─> one Profile per user.
"""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from stacks.settings import Settings

from components.kubeflow import credentials_plan, footprint_guard, kubeflow_overlay, kubeflow_plan
from components.k3s.k3s_cluster import K3sCluster
from components.kubeflow.kubeflow_credentials import KubeflowCredentials, needed_values


class Kubeflow(pulumi.ComponentResource):
    directories: dict[str, k8s.kustomize.v2.Directory]
    credentials: KubeflowCredentials

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        *,
        admin_password: pulumi.Input[str] | None,
        ssh_private_key: pulumi.Input[str] | None,
        identity_provider_secret: pulumi.Input[str] | None = None,
        cert_manager_ready: Sequence[pulumi.Resource] = (),
        istio_ready: Sequence[pulumi.Resource] = (),
        storage_ready: Sequence[pulumi.Resource] = (),
        gpu_restart: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:kubeflow:Kubeflow", name, {}, opts)
        steps = kubeflow_plan.plan(settings)
        secret_names = [s for p in steps for s in p.step.secrets]
        logins = kubeflow_plan.logins(settings)
        connector = settings.kubeflow.identity_provider is not None
        self.credentials = KubeflowCredentials(
            f"{name}-credentials", needed_values(secret_names), admin_password, with_admin=True,
            opts=pulumi.ResourceOptions(parent=self),
            users=[(login.email, login.profile) for login in logins if not login.admin],
            connector_secret=identity_provider_secret if connector else None,
        )
        dex_passwords = credentials_plan.dex_passwords(logins, connector, kubeflow_plan.DEX_CONNECTOR_SECRET_ENV)
        guard = footprint_guard.guard(f"{name}-footprint", settings, cluster, ssh_private_key, self, after=gpu_restart)

        namespaces = {
            ns: k8s.core.v1.Namespace(
                f"{name}-ns-{ns}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ns, labels=kubeflow_plan.OWN_NAMESPACES[ns]),
                opts=cluster.k8s_options(self, depends_on=[guard]),
            )
            for p in steps
            for ns in p.step.namespaces
        }
        platform = {
            kubeflow_plan.CERT_MANAGER: list(cert_manager_ready),
            kubeflow_plan.ISTIO: list(istio_ready),
        }
        self.directories = {}
        for planned in steps:
            step = planned.step
            deps: list[pulumi.Resource] = [guard, *(storage_ready if step.storage else ())]
            for handle in planned.platform:
                deps += platform[handle]
            deps += [self.directories[a] for a in planned.after]
            for secret_name in step.secrets:
                spec = dex_passwords if secret_name == dex_passwords.name else credentials_plan.SECRETS[secret_name]
                # The Secret's namespace: one the program creates, or the step that creates it.
                if spec.namespace in namespaces:
                    namespace = namespaces[spec.namespace]
                else:
                    namespace = self.directories[kubeflow_plan.NAMESPACE_STEPS[spec.namespace]]
                deps.append(self.credentials.secret(
                    f"{name}-{step.name}-secret-{secret_name}", spec, cluster, self, [guard, namespace]
                ))
            if planned.overlay is not None:
                kubeflow_overlay.write(planned.directory, planned.overlay, kubeflow_plan.PROJECT_ROOT)
            self.directories[step.name] = k8s.kustomize.v2.Directory(
                f"{name}-{step.name}",
                directory=planned.directory,
                namespace=step.namespace,
                opts=cluster.k8s_options(self, depends_on=deps),
            )

        if "dex" in self.directories:
            # Dex reads its password hashes at start: a changed password (or identity-provider secret)
            # changes this annotation of its pod template, which rolls Dex. A server-side-apply patch
            # owning only this field, because the hashes are secret Outputs the overlay files never see.
            k8s.apps.v1.DeploymentPatch(
                f"{name}-dex-restart-on-password-change",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="dex", namespace="auth"),
                spec=k8s.apps.v1.DeploymentSpecPatchArgs(template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(annotations={
                        kubeflow_plan.DEX_PASSWORDS_ANNOTATION: self.credentials.digest(
                            [v for v in dex_passwords.data.values() if isinstance(v, str)])}))),
                opts=cluster.k8s_options(self, depends_on=[self.directories["dex"]]),
            )

        # The mesh-wide Sidecar limits egress to the platform's namespaces; upstream's two exceptions.
        if "kubeflow-namespace" in self.directories:
            for sidecar, spec in kubeflow_plan.sidecar_exceptions(settings).items():
                k8s.apiextensions.CustomResource(
                    f"{name}-sidecar-{sidecar}",
                    api_version="networking.istio.io/v1",
                    kind="Sidecar",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=sidecar, namespace="kubeflow"),
                    spec=spec,
                    opts=cluster.k8s_options(self, depends_on=[self.directories["kubeflow-namespace"], *istio_ready]),
                )

        # One Profile per user and the admin, once the profiles controller (and its CRD) is there; in
        # its namespace (created by the controller; the provider retries a create whose namespace does
        # not exist yet, pulumi/pulumi-kubernetes#262) the quota's LimitRange and the contributors.
        self.profiles: list[k8s.apiextensions.CustomResource] = []
        if "profiles" in self.directories:
            for profile in kubeflow_plan.profiles(settings):
                pname = profile["name"]
                cr = k8s.apiextensions.CustomResource(
                    f"{name}-profile-{pname}",
                    api_version="kubeflow.org/v1",
                    kind="Profile",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=pname),
                    spec=kubeflow_plan.profile_spec(profile["email"], profile["quota"]),
                    opts=cluster.k8s_options(self, depends_on=[self.directories["profiles"]]),
                )
                self.profiles.append(cr)
                limits = kubeflow_plan.limit_range_spec(profile["quota"])
                if limits:
                    k8s.core.v1.LimitRange(
                        f"{name}-limits-{pname}",
                        metadata=k8s.meta.v1.ObjectMetaArgs(name=kubeflow_plan.LIMIT_RANGE, namespace=pname),
                        spec=limits,
                        opts=cluster.k8s_options(self, depends_on=[cr]),
                    )
                for email in profile["contributors"]:
                    objs = kubeflow_plan.contributor_objects(pname, email)
                    k8s.rbac.v1.RoleBinding(
                        f"{name}-contributor-{pname}-{email}", metadata=objs["RoleBinding"]["metadata"],
                        role_ref=objs["RoleBinding"]["roleRef"], subjects=objs["RoleBinding"]["subjects"],
                        opts=cluster.k8s_options(self, depends_on=[cr]),
                    )
                    k8s.apiextensions.CustomResource(
                        f"{name}-contributor-policy-{pname}-{email}",
                        api_version="security.istio.io/v1", kind="AuthorizationPolicy",
                        metadata=objs["AuthorizationPolicy"]["metadata"], spec=objs["AuthorizationPolicy"]["spec"],
                        opts=cluster.k8s_options(self, depends_on=[cr]),
                    )

        self.outputs = outputs(settings, self.credentials)
        self.register_outputs({
            "steps": [p.step.name for p in steps],
            "sources": {p.step.name: p.source for p in steps},
            "profiles": [p["name"] for p in kubeflow_plan.profiles(settings)] if self.profiles else [],
        })


def outputs(settings: Settings, credentials: KubeflowCredentials) -> dict[str, object]:
    url = kubeflow_plan.dashboard_url(settings)
    out: dict[str, object] = {
        "kubeflowDashboardUrl": url,
        "kubeflowPipelinesEndpoint": f"{url}pipeline",
        "kubeflowLoginEmail": settings.kubeflow.admin_email,
    }
    if credentials.generated_admin:
        out["kubeflowAdminPassword"] = credentials.admin_password
    out["kubeflowAdminNamespace"] = kubeflow_plan.admin_namespace(settings)
    if credentials.user_passwords:
        # {email: generated password} of every kubeflow.users login (secret; read it with
        # `pulumi stack output --show-secrets kubeflowUserPasswords`).
        out["kubeflowUserPasswords"] = pulumi.Output.secret(pulumi.Output.all(**credentials.user_passwords))
    if settings.profile == "laptop":
        # Without a reachable load balancer address: forward the gateway's HTTPS port, then open
        # https://localhost:8443/ (the certificate is for tls.host, so the browser warns once).
        out["kubeflowPortForward"] = (
            f"kubectl port-forward -n {kubeflow_plan.GATEWAY_NAMESPACE} svc/{kubeflow_plan.INGRESS_SERVICE} 8443:443"
        )
    return out
