"""The order of the Kubeflow steps, proven from what upstream really creates.

For every step the `cloud` stack applies (every component on), read its rendered 26.03 objects, apply
the program's overlay to them (tests/kustomize_lite.py), and derive what the step needs:
- each custom resource kind it creates -> the step (or platform layer) whose CRD defines it;
- each namespace its objects live in -> the step (or platform layer, or the program) that creates it;
- each admission webhook with failurePolicy Fail (of another step or of the platform) that its objects
  or its pods would meet -> the step or platform layer that serves it;
- pods in a sidecar-injected namespace -> Istio;
then assert that the provider comes before the step in the plan's dependency graph. Webhooks a step
serves to its own objects must appear only once the pod serving them is ready.

Entries missing from rendered/ (listed in NOT-RENDERED.txt: trainer, whose jobset base is a release
download) and Model Registry (not in the example) cannot be derived; their declared needs are
checked against their upstream kustomization files instead, in test_kubeflow_paths.py.
"""

from __future__ import annotations

import copy

import pytest

from components.kubeflow import kubeflow_overlay, kubeflow_plan as kp
from stacks.settings import parse_settings
from tests.contract import kubeflow_upstream as up
from tests.kustomize_lite import apply
from tests.harness import stack_raw

BUILT_IN_NAMESPACES = {"kube-system", "default"}


@pytest.fixture(scope="module")
def cloud_plan():
    return {p.step.name: p for p in kp.plan(parse_settings(copy.deepcopy(stack_raw("cloud")), "cloud"))}


@pytest.fixture(scope="module")
def rendered(upstream):
    return upstream / "rendered" / "kubeflow-26.03"


@pytest.fixture(scope="module")
def world(rendered, cloud_plan):
    """Everything each provider (step name or platform handle) provides, after the overlays."""
    providers: dict[str, up.Provided] = {}
    objects: dict[str, list[dict]] = {}
    for path, handle in up.PLATFORM_PATHS.items():
        prov = up.provided(up.docs_of(up.rendered_file(rendered, path)))
        merged = providers.setdefault(handle, up.Provided({}, {}, []))
        merged.crds.update(prov.crds)
        merged.namespaces.update(prov.namespaces)
        merged.webhooks += prov.webhooks
    for name, planned in cloud_plan.items():
        f = up.rendered_file(rendered, planned.step.path)
        if f is None:
            continue
        docs = list(up.docs_of(f))
        if planned.overlay:
            docs = apply(docs, planned.overlay)
        objects[name] = docs
        providers[name] = up.provided(docs)
    # Namespaces the program creates itself (their upstream objects are deleted by the overlays).
    providers["program"] = up.Provided({}, dict(kp.OWN_NAMESPACES), [])
    return providers, objects


def before(plan: dict, name: str) -> set[str]:
    """Every step and platform handle `name` waits for, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        step = plan[todo.pop()]
        seen.update(step.platform)
        for a in step.after:
            if a not in seen:
                seen.add(a)
                todo.append(a)
    return seen


def all_namespaces(providers) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for p in providers.values():
        out.update(p.namespaces)
    return out


def test_every_applied_step_with_rendered_objects_is_checked(world, cloud_plan, rendered):
    _, objects = world
    not_rendered = (rendered / "NOT-RENDERED.txt").read_text()
    for name, planned in cloud_plan.items():
        if name not in objects:
            assert planned.step.path in not_rendered or planned.step.component == "modelRegistry", name


def test_custom_resources_come_after_their_crds(world, cloud_plan):
    providers, objects = world
    problems = []
    for name, docs in objects.items():
        needs = before(cloud_plan, name)
        for doc in docs:
            gk = up.group_kind(doc)
            owners = [p for p, prov in providers.items() if gk in prov.crds]
            if not owners:
                assert "." not in gk[0] or gk[0].endswith("k8s.io"), f"{name}: no CRD for {gk}"
                continue
            if name in owners:
                continue  # Pulumi creates a Directory's CRDs first and awaits them Established
            if not set(owners) & needs:
                problems.append(f"{name} creates {gk[1]} ({gk[0]}) but does not wait for {owners}")
    assert not problems, "\n".join(problems)


def test_objects_come_after_their_namespaces(world, cloud_plan):
    providers, objects = world
    problems = []
    for name, docs in objects.items():
        needs = before(cloud_plan, name) | {name}
        step = cloud_plan[name].step
        for doc in docs:
            ns = doc["metadata"].get("namespace")
            if ns is None or ns in BUILT_IN_NAMESPACES:
                continue
            if ns in step.namespaces:
                continue  # created by the program before the step (its Secrets live there)
            owners = {p for p, prov in providers.items() if ns in prov.namespaces and p != "program"}
            if not owners & needs:
                problems.append(f"{name}: {doc['kind']} {ns}/{doc['metadata']['name']} but namespace {ns} comes from {owners}")
    assert not problems, "\n".join(sorted(set(problems)))


def test_pods_in_sidecar_injected_namespaces_wait_for_istio(world, cloud_plan):
    providers, objects = world
    namespaces = all_namespaces(providers)
    for name, docs in objects.items():
        for doc in docs:
            ns = doc["metadata"].get("namespace")
            if doc["kind"] in up.WORKLOAD_KINDS and namespaces.get(ns, {}).get("istio-injection") == "enabled":
                assert kp.ISTIO in before(cloud_plan, name), f"{name}: {doc['metadata']['name']} gets a sidecar"


def test_objects_meet_only_webhooks_that_are_served_already(world, cloud_plan):
    providers, objects = world
    namespaces = all_namespaces(providers)
    crds: dict = {}
    for prov in providers.values():
        crds.update(prov.crds)
    problems, checked = [], 0
    for name, docs in objects.items():
        needs = before(cloud_plan, name)
        for provider, prov in providers.items():
            if provider == name:
                continue
            for config, webhook in prov.webhooks:
                if webhook.get("failurePolicy", "Fail") != "Fail":
                    continue
                for doc in docs:
                    if up.webhook_matches(webhook, doc, namespaces, crds):
                        checked += 1
                        if provider not in needs:
                            problems.append(f"{name}: {doc['kind']} {doc['metadata']['name']} meets webhook "
                                            f"{webhook['name']} of {provider}, which it does not wait for")
    assert not problems, "\n".join(sorted(set(problems)))
    assert checked > 10  # cert-manager Certificates/Issuers and Istio's injector at least


def test_a_steps_own_webhooks_appear_only_after_the_pod_serving_them(world, cloud_plan):
    _, objects = world
    problems = []
    for name, docs in objects.items():
        for doc in docs:
            if doc["kind"] not in up.WEBHOOK_KINDS:
                continue
            fail = [w for w in doc.get("webhooks") or [] if w.get("failurePolicy", "Fail") == "Fail"]
            if not fail:
                continue
            wanted = set()
            for w in fail:
                wanted |= {kubeflow_overlay.depends_on_ref("Deployment", ns, d) for ns, d in up.serving_deployments(docs, w)}
            assert wanted, f"{name}: no Deployment serves {doc['metadata']['name']}"
            have = set(((doc["metadata"].get("annotations") or {}).get(kubeflow_overlay.DEPENDS_ON) or "").split(","))
            if not wanted <= have:
                problems.append(f"{name}: {doc['kind']} {doc['metadata']['name']} should wait for {sorted(wanted)}")
    assert not problems, "\n".join(problems)


def test_the_plan_waits_for_no_step_it_does_not_apply(cloud_plan):
    for name, planned in cloud_plan.items():
        assert set(planned.after) <= set(cloud_plan), name


def test_steps_with_volume_claims_wait_for_the_default_storage_class(world, cloud_plan, upstream):
    _, objects = world
    for name, docs in objects.items():
        claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim" and not d["spec"].get("storageClassName")]
        assert cloud_plan[name].step.storage == bool(claims), name
    # Model Registry (not rendered): its database claim
    registry = upstream / "kubeflow-manifests-26.03" / kp.CATALOG_BY_NAME["model-registry"].path
    assert "kind: PersistentVolumeClaim" in (registry / "model-registry-db-pvc.yaml").read_text()
    assert kp.CATALOG_BY_NAME["model-registry"].storage


def test_no_object_is_applied_twice(world, runs):
    """Two owners of one object would fight over it, and destroying one would delete the other's."""
    _, objects = world
    owner: dict[tuple, str] = {}
    for name, docs in objects.items():
        for d in docs:
            key = (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
            assert key not in owner, f"{key} is applied by {owner[key]} and {name}"
            owner[key] = name
    # nor by the platform layers or the program's own resources
    for reg in runs["cloud"].registrations:
        meta = reg.inputs.get("metadata")
        if reg.type.startswith("kubernetes:") and isinstance(meta, dict) and meta.get("name"):
            key = (reg.type.rsplit(":", 1)[1], meta.get("namespace"), meta["name"])
            assert key not in owner, f"{key} is applied by {owner[key]} and by {reg.name}"
