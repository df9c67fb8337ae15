"""Which Kubeflow components need which others, and how a stack's switches are completed.

Pure and engine-free: `parse_settings` calls `resolve()` so that a switch combination that cannot work
fails validation (naming the config key) before anything is created.

Policy: a component that another switched-on component needs is switched on automatically, unless the
stack file switches it off explicitly; then validation fails and says which switch to change. Silent
auto-enabling of something the user explicitly refused would surprise more than an error.
"""

from __future__ import annotations

from typing import Iterable, Mapping

# component -> ((needed component, why), ...). Only hard runtime needs are listed.
REQUIRES: Mapping[str, tuple[tuple[str, str], ...]] = {
    # KServe's serverless mode runs InferenceServices as Knative Services (kubeflow/manifests README).
    "kserve": (("knative", "KServe serves models as Knative Services"),),
    # Multi-user Pipelines authorise every request through KFAM (profiles) and run each user's
    # pipelines in their profile namespace; the per-namespace artifact setup hangs off Profiles too.
    "pipelines": (("profiles", "multi-user Pipelines authorise through the profiles controller (KFAM)"),),
    # The dashboard and the web apps list a user's namespaces through KFAM.
    "centralDashboard": (("profiles", "the dashboard lists a user's namespaces through KFAM"),),
    "notebooks": (
        ("profiles", "the notebooks web app works in profile namespaces"),
        ("admissionWebhook", "the notebooks web app offers PodDefaults, which the admission webhook serves"),
    ),
    "volumes": (("profiles", "the volumes web app works in profile namespaces"),),
    "tensorboards": (("profiles", "the tensorboards web app works in profile namespaces"),),
    "katib": (("profiles", "Katib's UI and experiments work in profile namespaces"),),
}


def resolve(
    requested: Mapping[str, bool], explicit: Iterable[str], mode: str
) -> tuple[dict[str, bool], list[tuple[str, str]], list[str]]:
    """Complete `requested` with what the switched-on components need.

    Returns (components, problems, auto_enabled). `explicit` are the keys the stack file set itself.
    Rules apply to mode "full" only: "pipelines" installs standalone single-user KFP, "none" nothing.
    """
    resolved = dict(requested)
    problems: list[tuple[str, str]] = []
    auto: list[str] = []
    if mode != "full":
        return resolved, problems, auto
    explicit = set(explicit)
    changed = True
    while changed:
        changed = False
        for component, needs in REQUIRES.items():
            if not resolved.get(component):
                continue
            for needed, why in needs:
                if resolved.get(needed):
                    continue
                if needed in explicit:
                    problem = (
                        f"kubeflow.components.{needed}",
                        f"is false, but {component} needs it ({why}); set {needed}: true, or {component}: false",
                    )
                    if problem not in problems:
                        problems.append(problem)
                else:
                    resolved[needed] = True
                    auto.append(f"{needed} (needed by {component})")
                    changed = True
    return resolved, problems, auto
