"""What the selected Kubeflow components need in CPU and memory, and the guard that stops an install
the nodes cannot hold.

Figures per component are kubeflow/manifests 26.03 README's "Kubeflow Components Versions" table
(CPU and memory per component), plus one Istio sidecar per injected workload: upstream injects a
proxy into every pod of `kubeflow`, `kubeflow-system` and `knative-serving`. The sidecar counts per
component are counted in the rendered 26.03 manifests (tests/contract/test_kubeflow_footprint.py
recounts them). The sidecar request is the one the platform's Istio layer sets
(components/istio/istio_plan.py: global.proxy.resources.requests).

Edge installs standalone KFP, trimmed by components/kubeflow/kfp_plan.py: its figure is the sum of that trim.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.settings import Settings

SIDECAR_CPU_M = 10
SIDECAR_MEMORY_MI = 40


@dataclass(frozen=True)
class Need:
    name: str
    cpu_m: int  # millicores
    memory_mi: int  # MiB
    sidecars: int = 0
    switch: str | None = None  # the kubeflow.components key that turns it off; None: always there

    @property
    def total_cpu_m(self) -> int:
        return self.cpu_m + self.sidecars * SIDECAR_CPU_M

    @property
    def total_memory_mi(self) -> int:
        return self.memory_mi + self.sidecars * SIDECAR_MEMORY_MI


# README table rows summed per switch (web app + controller rows belong to one switch).
COMPONENTS: dict[str, Need] = {
    "pipelines": Need("Kubeflow Pipelines", 970, 3552, sidecars=12, switch="pipelines"),
    "katib": Need("Katib", 13, 476, sidecars=1, switch="katib"),
    "centralDashboard": Need("Central Dashboard", 2, 159, sidecars=1, switch="centralDashboard"),
    "admissionWebhook": Need("PodDefaults webhook", 1, 14, switch="admissionWebhook"),
    "notebooks": Need("Notebooks (controller + web app)", 5 + 4, 93 + 231, sidecars=2, switch="notebooks"),
    "profiles": Need("Profiles + KFAM", 7, 129, sidecars=1, switch="profiles"),
    "pvcViewer": Need("PVC viewer", 15, 128, sidecars=1, switch="pvcViewer"),
    "volumes": Need("Volumes web app", 4, 226, sidecars=1, switch="volumes"),
    # The README has no figure for the tensorboards web app; counted like the volumes web app.
    "tensorboards": Need("Tensorboards (controller + web app)", 15 + 4, 128 + 226, sidecars=2, switch="tensorboards"),
    "knative": Need("Knative Serving", 1450, 1038, sidecars=6, switch="knative"),
    "kserve": Need("KServe (+ models web app)", 600 + 6, 1200 + 259, sidecars=3, switch="kserve"),
    # Trainer and Model Registry are not in the rendered example: sidecars counted from their
    # kustomizations (trainer + jobset controllers; model registry server, db and UI).
    "trainer": Need("Trainer", 8, 143, sidecars=2, switch="trainer"),
    "spark": Need("Spark operator", 9, 41, switch="spark"),
    "modelRegistry": Need("Model Registry", 510, 2112, sidecars=3, switch="modelRegistry"),
}

# Always present in a full install.
BASE: tuple[Need, ...] = (
    Need("Istio (platform layer)", 750, 2364),
    Need("cert-manager (platform layer)", 3, 128),
    Need("Dex + oauth2-proxy", 3 + 3, 27 + 27),
)


@dataclass(frozen=True)
class Footprint:
    needs: tuple[Need, ...]

    @property
    def cpu_m(self) -> int:
        return sum(n.total_cpu_m for n in self.needs)

    @property
    def memory_mi(self) -> int:
        return sum(n.total_memory_mi for n in self.needs)

    def biggest_switchable(self, count: int = 3) -> list[Need]:
        """The components whose switch frees the most memory (then CPU)."""
        switchable = [n for n in self.needs if n.switch]
        return sorted(switchable, key=lambda n: (n.total_memory_mi, n.total_cpu_m), reverse=True)[:count]

    def advice(self) -> str:
        parts = [
            f"kubeflow.components.{n.switch} ({n.total_cpu_m}m CPU, {n.total_memory_mi}Mi)"
            for n in self.biggest_switchable()
        ]
        if not parts:
            return "use bigger nodes or add nodes"
        return "switch off the biggest components: " + ", ".join(parts) + "; or add nodes"

    def table(self) -> str:
        rows = [f"{'component':40} {'CPU (m)':>8} {'memory (Mi)':>12}  switch"]
        for n in self.needs:
            rows.append(f"{n.name:40} {n.total_cpu_m:>8} {n.total_memory_mi:>12}  {n.switch or '-'}")
        rows.append(f"{'total':40} {self.cpu_m:>8} {self.memory_mi:>12}")
        return "\n".join(rows)


def footprint(settings: Settings) -> Footprint:
    """The footprint of what this stack installs (nothing for mode "none")."""
    mode = settings.kubeflow.mode
    if mode == "none":
        return Footprint(())
    if mode == "pipelines":
        from components.kubeflow import kfp_plan  # the trimmed standalone KFP

        cpu, mem = kfp_plan.trimmed_totals()
        return Footprint((Need("Kubeflow Pipelines standalone (trimmed)", cpu, mem),))
    comps = settings.kubeflow.components
    return Footprint(BASE + tuple(need for key, need in COMPONENTS.items() if comps.get(key)))


def check(fp: Footprint, allocatable_cpu_m: int, allocatable_memory_mi: int) -> str | None:
    """None when the nodes hold the footprint, else the message the guard stops with."""
    short = []
    if fp.cpu_m > allocatable_cpu_m:
        short.append(f"{fp.cpu_m}m CPU needed, {allocatable_cpu_m}m allocatable")
    if fp.memory_mi > allocatable_memory_mi:
        short.append(f"{fp.memory_mi}Mi memory needed, {allocatable_memory_mi}Mi allocatable")
    if not short:
        return None
    return "the selected Kubeflow components do not fit the nodes: " + "; ".join(short) + ". " + fp.advice()
