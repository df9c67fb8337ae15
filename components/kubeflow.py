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

from . import credentials_plan, footprint_guard, kubeflow_overlay, kubeflow_plan
from .k3s_cluster import K3sCluster
from .kubeflow_credentials import KubeflowCredentials, needed_values


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
        cert_manager_ready: Sequence[pulumi.Resource] = (),
        istio_ready: Sequence[pulumi.Resource] = (),
        storage_ready: Sequence[pulumi.Resource] = (),
        gpu_restart: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:kubeflow:Kubeflow", name, {}, opts)
        steps = kubeflow_plan.plan(settings)
        secret_names = [s for p in steps for s in p.step.secrets]
        self.credentials = KubeflowCredentials(
            f"{name}-credentials", needed_values(secret_names), admin_password, with_admin=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
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
                spec = credentials_plan.SECRETS[secret_name]
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

        # One Profile per user, once the profiles controller (and its CRD) is there.
        self.profiles: list[k8s.apiextensions.CustomResource] = []
        if "profiles" in self.directories:
            for profile in kubeflow_plan.profiles(settings):
                self.profiles.append(k8s.apiextensions.CustomResource(
                    f"{name}-profile-{profile['name']}",
                    api_version="kubeflow.org/v1",
                    kind="Profile",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=profile["name"]),
                    spec=kubeflow_plan.profile_spec(profile["email"], profile["quota"]),
                    opts=cluster.k8s_options(self, depends_on=[self.directories["profiles"]]),
                ))

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
    if settings.profile == "laptop":
        # Without a reachable load balancer address: forward the gateway's HTTPS port, then open
        # https://localhost:8443/ (the certificate is for tls.host, so the browser warns once).
        out["kubeflowPortForward"] = (
            f"kubectl port-forward -n {kubeflow_plan.GATEWAY_NAMESPACE} svc/{kubeflow_plan.INGRESS_SERVICE} 8443:443"
        )
    return out
