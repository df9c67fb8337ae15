"""Upgrades with a small blast radius: change one setting, evaluate again, see which resources' inputs changed.

Each test evaluates a stack as checked in and with one setting changed (tests/stackdiff.py) and asserts
that exactly the resources that should change do: the set a `pulumi preview --diff` would show. Tests for
a layer that is not in the program yet skip with the reason, and run as soon as its resources appear.
"""

from __future__ import annotations

import re

import pytest

from stacks import kubeflow_components, profiles, versions
from tests import harness
from tests.stackdiff import (
    HELM_TYPES,
    Change,
    ancestors,
    bump_version,
    compare,
    evaluate_change,
    overrides_for,
    install_commands,
    kubernetes_resources,
    provider_urns,
    stack_config,
    under,
)

NEW_K3S = re.sub(r"\.(\d+)\+", lambda m: f".{int(m.group(1)) + 1}+", versions.K3S_VERSION)


def smoke_rerun(change: Change, required: bool = True) -> set[str]:
    """The smoke step (issue 13) re-checks the platform whenever something it checks changes (versions,
    components, GPU nodes): expected in these changes besides the layer that changed. Returns its URNs;
    with `required`, asserts it does re-run."""
    urns = {r.urn for r in change.before.registrations if r.name == "smoke-check"}
    if required:
        assert urns <= change.touched, "the smoke step does not re-run:\n" + change.describe()
    return urns & change.touched


def assert_provider_untouched(change: Change) -> None:
    """The Kubernetes provider keeps its inputs (so it is neither replaced nor updated)."""
    touched = provider_urns(change.before) & change.touched
    assert not touched, "the Kubernetes provider changed:\n" + change.describe()
    assert provider_urns(change.before) == provider_urns(change.after)


@pytest.mark.parametrize("stack", harness.STACKS)
def test_evaluating_twice_changes_nothing(stack, runs):
    # The baseline of every test below: the evaluation is deterministic.
    change = compare(runs[stack], harness.run_stack(stack))
    assert not change.touched, change.describe()


# K3s ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", harness.STACKS)
def test_k3s_version_bump_touches_only_the_node_installs(stack, runs):
    change = evaluate_change(stack, {"k3s.version": NEW_K3S}, before=runs[stack])
    installs = {r.urn for r in install_commands(change.before)}
    # and the cluster's readiness wait, which runs again once every node restarted on the new version
    ready = change.before.get("k3s-nodes-ready")
    assert change.after.get("k3s-nodes-ready").inputs["triggers"] == [NEW_K3S]
    assert change.changed - smoke_rerun(change) == installs | {ready.urn}, change.describe()
    assert not change.added and not change.removed, change.describe()
    assert not {r.urn for r in kubernetes_resources(change.before)} & change.touched
    assert_provider_untouched(change)
    # An update, not a replacement: the install's triggers (role, host) are the same.
    for urn in installs:
        assert change.before.by_urn(urn).inputs.get("triggers") == change.after.by_urn(urn).inputs.get("triggers")
        assert NEW_K3S in change.after.by_urn(urn).inputs["update"]


@pytest.mark.parametrize("stack", harness.STACKS)
def test_k3s_upgrade_order_is_servers_one_at_a_time_then_agents(stack, runs):
    run = runs[stack]
    installs = {r.name: r for r in install_commands(run)}
    servers = [n for n in run.exports["nodes"] if run.exports["nodes"][n]["role"] == "server"]
    agents = [n for n in run.exports["nodes"] if run.exports["nodes"][n]["role"] == "agent"]
    server_installs = [f"k3s-{n}-install" for n in servers]
    for previous, current in zip(server_installs, server_installs[1:]):
        assert run.depends_on(current, previous), f"{current} does not wait for {previous}"
    for agent in agents:
        assert run.depends_on(f"k3s-{agent}-install", server_installs[0])
        for other in agents:
            if other != agent:  # agents go in parallel
                assert not run.depends_on(f"k3s-{agent}-install", f"k3s-{other}-install")
    assert set(installs) == {f"k3s-{n}-install" for n in servers + agents}


# Helm charts -------------------------------------------------------------------------------------

def releases_of(run: harness.Run, key: str) -> set[str]:
    repo, chart, version = versions.CHARTS[key]
    found = set()
    for r in run.registrations:
        if r.type not in HELM_TYPES:
            continue
        name = str(r.inputs.get("chart", ""))
        repo_in = ((r.inputs.get("repositoryOpts") or {}).get("repo") or "")
        if (name == chart or name.endswith("/" + chart)) and r.inputs.get("version") == version:
            if not repo_in or repo_in.rstrip("/") == repo.rstrip("/") or name.startswith(repo):
                found.add(r.urn)
    return found


CHART_CASES = [(stack, key) for stack in harness.STACKS for key in versions.CHARTS]


@pytest.mark.parametrize("stack,key", CHART_CASES, ids=[f"{s}-{k}" for s, k in CHART_CASES])
def test_chart_version_bump_touches_only_that_release(stack, key, runs, monkeypatch):
    run = runs[stack]
    if not any(r.type in HELM_TYPES for r in run.registrations):
        pytest.skip(f"the {stack} stack installs no Helm release")
    releases = releases_of(run, key)
    if not releases:
        pytest.skip(f"chart {key!r} is not deployed on the {stack} stack")
    repo, chart, version = versions.CHARTS[key]
    monkeypatch.setitem(versions.CHARTS, key, (repo, chart, bump_version(version)))
    change = compare(run, harness.run_stack(stack))
    assert change.touched - smoke_rerun(change, required=False) == releases, (
        f"bumping {key} {version} -> {bump_version(version)} in stacks/versions.py should update only its "
        f"release(s)\n" + change.describe()
    )
    assert_provider_untouched(change)


# Kubeflow components -----------------------------------------------------------------------------

def component_words(key: str) -> tuple[str, ...]:
    """Names a component's resources may carry: pipelines, centralDashboard -> central-dashboard..."""
    kebab = re.sub(r"(?<!^)([A-Z])", r"-\1", key).lower()
    aliases = {
        "pipelines": ("pipeline", "kfp"),
        "centralDashboard": ("dashboard",),
        "admissionWebhook": ("poddefault",),
        "notebooks": ("notebook", "jupyter"),
        "profiles": ("profile", "kfam"),
        "pvcViewer": ("pvcviewer",),
        "volumes": ("volume",),
        "tensorboards": ("tensorboard",),
        "modelRegistry": ("modelregistry",),
    }
    return (kebab, key.lower(), *aliases.get(key, ()))


def kubeflow_layer(run: harness.Run) -> set[str]:
    """The Kubeflow layer's components (module kubeflow-k3s:kubeflow: Kubeflow, or KFP standalone on edge)."""
    return {r.urn for r in run.registrations if not r.custom and not r.remote and r.type.startswith("kubeflow-k3s:kubeflow:")}


def kubeflow_present(run: harness.Run) -> bool:
    return bool(kubeflow_layer(run))


def named_for(change: Change, urn: str, words: tuple[str, ...]) -> bool:
    """Does the resource, or a component it sits in, carry one of the component's names?"""
    run = change.before if urn in {r.urn for r in change.before.registrations} else change.after
    chain = [run.by_urn(urn), *ancestors(run, urn)]
    return any(w in reg.name.lower() for reg in chain for w in words)


COMPONENT_CASES = [("cloud", key) for key in profiles.KUBEFLOW_COMPONENTS] + [
    ("dev", key) for key in profiles.KUBEFLOW_COMPONENTS
]


@pytest.mark.parametrize("stack,key", COMPONENT_CASES, ids=[f"{s}-{k}" for s, k in COMPONENT_CASES])
def test_kubeflow_component_switch_touches_only_that_component(stack, key, runs):
    run = runs[stack]
    if not kubeflow_present(run):
        pytest.skip("no Kubeflow resources in this stack yet (issue 4)")
    profile = profiles.PROFILES[run.exports["profile"]]

    current = dict(profile.components)
    current.update((stack_config(stack).get("kubeflow") or {}).get("components") or {})
    switched = not current.get(key, False)
    try:
        change = evaluate_change(stack, {f"kubeflow.components.{key}": switched}, before=run)
    except Exception as err:  # a switch the settings refuse (a dependency between components) is fine
        if "ConfigError" in type(err).__name__ or "kubeflow.components" in str(err):
            pytest.skip(f"settings refuse kubeflow.components.{key}={switched}: {err}")
        raise
    assert change.touched, f"switching kubeflow.components.{key} to {switched} changed nothing"
    words = component_words(key)
    # Expected beyond the component (issue 4): what it needs may switch on with it
    # (stacks/kubeflow_components.py), and the footprint guard re-checks the nodes (its figures changed).
    for needed, _why in kubeflow_components.REQUIRES.get(key, ()):
        words += component_words(needed)
    # Issue 15: each node's pre-pull list names the component's images, so the list follows the switch.
    strays = {u for u in change.touched - smoke_rerun(change)
              if not named_for(change, u, words) and not u.endswith("::kubeflow-footprint") and not u.endswith("-prepull")}
    assert not strays, (
        f"switching kubeflow.components.{key} to {switched} touched resources outside that component "
        f"(names without any of {words}):\n{change.names(strays)}\n\nfull change:\n{change.describe()}"
    )
    assert_provider_untouched(change)


# GPU ---------------------------------------------------------------------------------------------

def gpu_components(run: harness.Run) -> set[str]:
    return {r.urn for r in run.registrations if not r.custom and re.search(r"gpu", r.type.split(":")[-1], re.I)}


@pytest.mark.parametrize("stack", harness.STACKS)
def test_gpu_time_slicing_touches_only_the_gpu_layer(stack, runs):
    run = runs[stack]
    current = stack_config(stack).get("gpu") or {}
    replicas = 2 if current.get("timeSlicing", 0) != 2 else 3
    change = evaluate_change(stack, {"gpu.timeSlicing": replicas}, before=run)
    roots = gpu_components(change.before) | gpu_components(change.after)
    strays = {u for u in change.touched if not under(change, u, roots)}
    assert not strays, f"gpu.timeSlicing touched resources outside the GPU layer:\n{change.names(strays)}"
    assert_provider_untouched(change)
    has_gpu_node = any(v["gpu"] != "none" for v in run.exports["nodes"].values())
    if has_gpu_node:
        if not roots:
            pytest.skip("no GPU layer in this stack yet (issue 3)")
        assert change.touched, "changing gpu.timeSlicing on a stack with a GPU node changed nothing"


# The cluster itself -----------------------------------------------------------------------------

NODE_CHANGES = [
    (3, "labels", {"tier": "general"}),  # agent-1
    (1, "extraConfig", {"kubelet-arg": ["max-pods=200"]}),  # server-2
    (4, "taints", ["nvidia.com/gpu=true:NoSchedule", "dedicated=ml:NoSchedule"]),  # gpu-1
]


@pytest.mark.parametrize("index,key,value", NODE_CHANGES, ids=[f"{k}" for _, k, _ in NODE_CHANGES])
def test_a_node_config_change_touches_only_that_node_install(index, key, value, runs):
    nodes = [dict(n) for n in stack_config("cloud")["nodes"]]
    nodes[index][key] = value
    change = evaluate_change("cloud", {"nodes": nodes}, before=runs["cloud"])
    name = nodes[index]["name"]
    # A GPU node's taints are tolerated by the smoke step's GPU check pod: it re-runs with them.
    smoke = smoke_rerun(change, required=bool(nodes[index].get("gpu")) and key == "taints")
    expected = {f"command:remote:Command::k3s-{name}-install"}
    if key in ("labels", "taints"):
        # K3s applies node-label/node-taint only at registration: the Node object is patched through the API
        expected.add(f"kubernetes:core/v1:NodePatch::k3s-{name}-labels")
    assert set(change.names(change.touched - smoke)) == expected, change.describe()
    urn = next(u for u in change.changed if u.endswith(f"::k3s-{name}-install"))
    assert change.before.by_urn(urn).inputs["triggers"] == change.after.by_urn(urn).inputs["triggers"], "an update, not a replacement"
    assert_provider_untouched(change)


def test_adding_an_agent_touches_only_the_new_node_and_the_readiness_wait(runs):
    stack = "cloud"

    nodes = stack_config(stack)["nodes"] + [
        {"name": "agent-9", "host": "192.0.2.29", "role": "agent",
         "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithAgent9HostKey0000000000000000"}
    ]
    change = evaluate_change(stack, {"nodes": nodes}, before=runs[stack])
    new_node = {r.urn for r in change.after.registrations if r.name == "k3s-agent-9"}
    strays = {u for u in change.touched if not under(change, u, new_node) and not u.endswith("::k3s-nodes-ready")}
    assert new_node and not strays, change.describe()
    assert not change.removed
    assert_provider_untouched(change)


# Manifest versions ---------------------------------------------------------------------------------

MANIFEST_CASES = [("dev", "KUBEFLOW_MANIFESTS_REF", "26.04"), ("cloud", "KUBEFLOW_MANIFESTS_REF", "26.04"),
                  ("edge", "KFP_VERSION", bump_version(versions.KFP_VERSION))]


@pytest.mark.parametrize("stack,pin,value", MANIFEST_CASES, ids=[f"{s}-{p}" for s, p, _ in MANIFEST_CASES])
def test_manifest_version_bump_touches_only_the_kubeflow_layer(stack, pin, value, runs, monkeypatch):
    run = runs[stack]
    roots = kubeflow_layer(run)
    if not roots:
        pytest.skip("no Kubeflow layer in this stack yet (issue 4)")
    monkeypatch.setattr(versions, pin, value)
    try:
        change = compare(run, harness.run_stack(stack))
    finally:
        monkeypatch.undo()
        harness.run_stack(stack)  # the program writes generated overlays: put the pinned ones back
    assert change.touched, f"bumping {pin} to {value} in stacks/versions.py changed nothing"
    strays = {u for u in change.touched - smoke_rerun(change) if not under(change, u, roots)}
    assert not strays, f"bumping {pin} touched resources outside the Kubeflow layer:\n{change.names(strays)}"
    assert_provider_untouched(change)


@pytest.mark.parametrize("stack", harness.STACKS)
def test_every_helm_release_takes_its_pin_from_versions_py(stack, runs):
    # What makes a chart bump a one-line change touching only its release(s).
    run = runs[stack]
    pinned = set().union(*(releases_of(run, key) for key in versions.CHARTS))
    strays = [f"{r.name} ({r.inputs.get('chart')} {r.inputs.get('version')})"
              for r in run.registrations if r.type in HELM_TYPES and r.urn not in pinned]
    assert not strays, f"Helm releases not pinned through stacks/versions.py CHARTS: {strays}"


# Kubeflow logins ----------------------------------------------------------------------------------

LOGIN_CHANGES = {
    "new user": lambda kf: {"kubeflow.users": [*(kf.get("users") or []), {"name": "carol", "email": "carol@example.com"}]},
    "identity provider": lambda kf: {"kubeflow.identityProvider": {
        "type": "oidc", "issuer": "https://login.example.com", "clientId": "kubeflow"}},
}


@pytest.mark.parametrize("what", LOGIN_CHANGES)
def test_a_login_change_touches_the_kubeflow_layer_and_re_runs_the_smoke_step(what, runs):
    # issue 13: the smoke step logs in; who can log in (users, the identity provider) is part of what it checks.
    run = runs["cloud"]
    kf = stack_config("cloud").get("kubeflow") or {}
    secrets = ({"sshPrivateKey": harness.FAKE_SECRETS["sshPrivateKey"], "identityProviderSecret": "FAKE-IDP-SECRET"}
               if what == "identity provider" else None)
    changes = LOGIN_CHANGES[what](kf)
    after = harness.run_stack("cloud", overrides=overrides_for("cloud", changes), **({"secrets": secrets} if secrets else {}))
    change = compare(run, after)
    smoke = smoke_rerun(change)
    strays = {u for u in change.touched - smoke if not under(change, u, kubeflow_layer(run))}
    assert not strays, f"{what} touched resources outside the Kubeflow layer:\n{change.names(strays)}"
    assert_provider_untouched(change)
