"""The Kubeflow layer of each stack under mocks: what is applied from where, what waits for what,
where the outputs are, and what is secret."""

from __future__ import annotations

import pytest
import yaml

from components.kubeflow import kubeflow_plan as kp
from stacks.settings import parse_settings
from tests import harness
from tests.harness import stack_raw

DIRECTORY = "kubernetes:kustomize/v2:Directory"
KF = "https://github.com/kubeflow/manifests"
KFP = "https://github.com/kubeflow/pipelines/manifests/kustomize"


def directories(run) -> dict[str, harness.Registration]:
    return {r.name: r for r in run.by_type(DIRECTORY)}


def test_laptop_applies_the_single_developer_set(runs):
    dirs = directories(runs["dev"])
    assert sorted(dirs) == sorted(f"kubeflow-{n}" for n in (
        "oauth2-proxy", "dex", "kubeflow-namespace", "kubeflow-roles", "kubeflow-istio-resources", "pipelines",
        "central-dashboard", "admission-webhook", "jupyter-web-app", "notebook-controller", "profiles",
        "pvcviewer-controller", "volumes-web-app"))
    assert dirs["kubeflow-profiles"].inputs["directory"] == f"{KF}/applications/profiles/pss?ref=26.03"
    assert dirs["kubeflow-dex"].inputs["directory"] == ".build/kubeflow/dev/dex"


def test_cloud_applies_every_component(runs):
    assert sorted(directories(runs["cloud"])) == sorted(f"kubeflow-{s.name}" for s in kp.CATALOG)


def test_edge_applies_standalone_pipelines_only(runs):
    dirs = directories(runs["edge"])
    assert sorted(dirs) == ["kfp-cluster-scoped", "kfp-platform-agnostic"]
    assert dirs["kfp-cluster-scoped"].inputs["directory"] == f"{KFP}/cluster-scoped-resources?ref=2.16.0"
    run = runs["edge"]
    assert run.depends_on("kfp-platform-agnostic", "kfp-cluster-scoped")
    for secret in ("kfp-secret-mlpipeline-minio-artifact", "kfp-secret-mysql-secret"):
        assert run.depends_on("kfp-platform-agnostic", secret)
        assert run.depends_on(secret, "kfp-cluster-scoped")  # its namespace
    # no Istio, Dex or dashboard, and it waits for no platform layer but storage
    assert "istio-istiod" not in run.names() and "cert-manager-chart" not in run.names()


def test_overlays_on_disk_are_the_planned_ones(runs):
    for stack in ("dev", "cloud", "edge"):
        for reg in directories(runs[stack]).values():
            directory = reg.inputs["directory"]
            if directory.startswith(".build/"):
                doc = yaml.safe_load((kp.PROJECT_ROOT / directory / "kustomization.yaml").read_text())
                assert doc["kind"] == "Kustomization" and len(doc["resources"]) == 1


@pytest.mark.parametrize("stack", ["dev", "cloud"])
def test_each_step_waits_for_its_needs_and_the_platform_handles(runs, stack):
    run = runs[stack]
    handles = {kp.CERT_MANAGER: "cert-manager-chart", kp.ISTIO: "istio-istiod"}
    dirs = directories(run)
    for planned in kp.plan(parse_settings(stack_raw(stack), stack)):
        name = f"kubeflow-{planned.step.name}"
        for after in planned.after:
            assert run.depends_on(name, f"kubeflow-{after}"), (name, after)
        for handle in planned.platform:
            assert run.depends_on(name, handles[handle]), (name, handle)
        for handle in set(handles) - set(planned.platform):
            assert not run.depends_on(name, handles[handle]), f"{name} waits for {handle} it does not need"
        assert run.depends_on(name, "kubeflow-footprint")
        # (on dev the default class is K3s's own local-path: nothing to wait for beyond the nodes)
        storage = [r.name for r in run.registrations if r.name.startswith("storage-") and "Release" in r.type]
        for release in storage:
            assert run.depends_on(name, release) == planned.step.storage, (name, "storage")
        for secret in planned.step.secrets:
            assert run.depends_on(name, f"kubeflow-{planned.step.name}-secret-{secret}")
        reg = dirs[name]
        assert reg.provider.startswith(run.get("k3s-k8s").urn) and reg.deleted_with


def test_auth_namespaces_and_their_secrets_come_before_dex_and_oauth2_proxy(runs):
    run = runs["dev"]
    for step, ns, secrets in (("dex", "auth", ("dex-passwords", "dex-oidc-client")),
                              ("oauth2-proxy", "oauth2-proxy", ("oauth2-proxy",))):
        namespace = run.get(f"kubeflow-ns-{ns}")
        assert namespace.inputs["metadata"]["labels"] == kp.OWN_NAMESPACES[ns]
        for secret in secrets:
            assert run.depends_on(f"kubeflow-{step}-secret-{secret}", f"kubeflow-ns-{ns}")


def test_profiles_per_user_after_the_profiles_controller(runs):
    # By name: the engine may register the two in either order.
    profiles = {r.inputs["metadata"]["name"]: r for r in runs["cloud"].by_type("kubernetes:kubeflow.org/v1:Profile")}
    assert sorted(profiles) == ["admin", "alice"]
    admin, alice = profiles["admin"], profiles["alice"]
    assert admin.inputs["metadata"]["name"] == "admin"  # the admin always owns a Profile
    assert admin.inputs["spec"]["owner"] == {"kind": "User", "name": "admin@example.com"}
    assert alice.inputs["metadata"]["name"] == "alice"
    assert alice.inputs["spec"]["owner"] == {"kind": "User", "name": "alice@example.com"}
    assert runs["cloud"].depends_on(alice.name, "kubeflow-profiles")
    names = [r.inputs["metadata"]["name"] for r in runs["dev"].by_type("kubernetes:kubeflow.org/v1:Profile")]
    assert names == ["admin"] and "kubeflow-user-example-com" not in names


def test_outputs(runs):
    dev, cloud, edge = runs["dev"].exports, runs["cloud"].exports, runs["edge"].exports
    assert dev["kubeflowDashboardUrl"] == "https://kubeflow.localhost/"
    assert dev["kubeflowLoginEmail"] == "admin@kubeflow.local"
    assert dev["kubeflowPortForward"] == "kubectl port-forward -n istio-system svc/istio-ingressgateway 8443:443"
    assert runs["dev"].secret_exports["kubeflowAdminPassword"] is True
    # cloud: the public URL (the load balancer in front of the node ports answers on 443)
    assert cloud["kubeflowDashboardUrl"] == "https://kubeflow.example.com/"
    assert cloud["kubeflowPipelinesEndpoint"] == "https://kubeflow.example.com/pipeline"
    for run in runs.values():
        assert run.secret_exports["kubeflowAccess"] is False and run.exports["kubeflowAccess"]
    assert "kubeflowPortForward" not in cloud
    assert edge["kubeflowPortForward"] == "kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80"
    assert "kubeflowAdminPassword" not in edge


def test_manifests_path_switches_every_source_to_the_local_checkout():
    # Its own stack name: its overlays go to their own folder, never racing other files' dev overlays.
    run = harness.run_stack("dev", overrides={"kubeflow": {"manifestsPath": "vendor/kubeflow-manifests"}},
                            stack_name="dev-local-manifests")
    for reg in run.by_type(DIRECTORY):
        directory = reg.inputs["directory"]
        assert directory.startswith(("vendor/kubeflow-manifests/", ".build/kubeflow/dev-local-manifests/")), directory
        if directory.startswith(".build/"):
            text = (kp.PROJECT_ROOT / directory / "kustomization.yaml").read_text()
            assert "github.com" not in text and "../../../../vendor/kubeflow-manifests/" in text


def test_a_forbidden_switch_combination_stops_before_any_resource():
    with pytest.raises(Exception, match="kubeflow.components.knative"):
        harness.run_stack("dev", overrides={"kubeflow": {"components": {"kserve": True, "knative": False}}})


def test_mode_none_installs_no_kubeflow_and_mode_pipelines_works_on_a_laptop():
    none = harness.run_stack("dev", overrides={"kubeflow": {"mode": "none"}})
    assert not none.by_type(DIRECTORY) and not [k for k in none.exports if k.startswith("kubeflow")]
    kfp = harness.run_stack("dev", overrides={"kubeflow": {"mode": "pipelines"}})
    assert sorted(directories(kfp)) == ["kfp-cluster-scoped", "kfp-platform-agnostic"]
    assert kfp.get("kfp-footprint").type == "command:local:Command"
    harness.run_stack("dev")  # rewrite the dev overlays for the other tests
