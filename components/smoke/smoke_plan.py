"""Pure plan of the smoke step: the last step of every stack with Kubeflow (issue 13).

One command on the first server (components/k3s/scripts/smoke.sh, where `curl` and `k3s kubectl` exist)
checks the platform as its users use it, and fails `pulumi up` with a message naming what failed:

- full mode: through the ingress gateway at the `kubeflowDashboardUrl` address (HTTPS, verified with
  the gateway certificate's CA from the cluster, the system's CAs with Let's Encrypt, or the issued
  chain from the gateway's Secret with Let's Encrypt staging), an anonymous
  request is refused; the admin logs in through the real flow (oauth2-proxy /oauth2/start -> Dex's
  login form -> POST -> /oauth2/callback -> session cookie); the central dashboard answers and knows
  the admin and their namespace; with the notebooks component, the Jupyter web app's API lists the
  admin's notebooks and a server-side dry run of a pod in the admin's namespace passes Istio's sidecar
  injector and Kubeflow's PodDefault webhook (no notebook image pulled); the Pipelines API answers
  (/pipeline/apis/v2beta1/healthz); a
  one-step v2 pipeline (components/smoke/hello-pipeline.yaml) is uploaded, run in the admin's
  namespace until SUCCEEDED, and deleted again.
- pipelines mode: the same pipeline through the KFP API Service (ClusterIP, reachable from the node).
- GPU nodes: one pod per node asks for `nvidia.com/gpu: 1` and runs nvidia-smi (Jetson: the GPU
  device nodes inside the container) to completion, then is deleted.

It reports `installSeconds`: seconds from the first server's preflight (its `started` report line)
to the pipeline's success. Everything it checks is in its command text, so a change of versions,
users, components, URLs or the pipeline re-runs it; the admin password travels on stdin only.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import yaml

from stacks import versions
from stacks.settings import Settings

from components.cert_manager import cert_manager_plan
from components.gpu import gpu_plan
from components.shared import helm
from components.istio import istio_plan
from components.k3s import k3s_plan, scripts
from components.kubeflow import kubeflow_plan

PIPELINE_FILE = pathlib.Path(__file__).resolve().parent / "hello-pipeline.yaml"
K3S_BIN = "/usr/local/bin/k3s"
# KFP's API server Service (both modes) and its HTTP port (KFP 2.16.0 manifests, ml-pipeline Service).
KFP_NAMESPACE = "kubeflow"
KFP_SERVICE = "ml-pipeline"
KFP_HTTP_PORT = 8888
# Where the GPU check pods run: no Pod Security level and no Kubeflow quota applies there.
GPU_POD_NAMESPACE = "default"
GPU_POD_PREFIX = "kubeflow-k3s-smoke-gpu-"
# The notebook check's pod: never stored nor run (server-side dry run), so its image is not pulled;
# it is the smoke pipeline's, already in the image list. default-editor is what notebook pods run as.
NOTEBOOK_POD_NAME = "kubeflow-k3s-smoke-notebook"
NOTEBOOK_SERVICE_ACCOUNT = "default-editor"
# Time for things outside the script's own deadline (SSH, image pulls already inside it): Pulumi's
# timeout of the command is the script's deadline plus this.
COMMAND_MARGIN_SECONDS = 600


def enabled(settings: Settings) -> bool:
    """A smoke step exists for every stack with Kubeflow, unless `smoke.enabled: false`."""
    return settings.smoke.enabled and settings.kubeflow.mode in ("full", "pipelines")


def pipeline_yaml() -> str:
    return PIPELINE_FILE.read_text()


def started_epoch(preflight_report: str | None) -> str:
    """The first server's preflight start (epoch seconds) from its report, '' when absent (an
    older preflight in state, or a report without the line)."""
    if not preflight_report:
        return ""
    try:
        report = k3s_plan.parse_preflight_report(preflight_report)
    except ValueError:
        return ""
    started = report.get("started", ("", ""))[1]
    return started if started.isdigit() else ""


def gpu_pod(node_name: str, kind: str, taints: tuple[str, ...]) -> dict:
    """The check pod of one GPU node: on that node, under the nvidia RuntimeClass, one GPU."""
    if kind == "jetson":
        # JetPack's runtime maps the integrated GPU's device nodes (and nvidia-smi, from JetPack 6 on).
        check = ("if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi; else "
                 "for d in /dev/nvhost-ctrl-gpu /dev/nvgpu/igpu0; do [ -e $d ] && echo \"GPU device $d\" && exit 0; done; "
                 "echo 'no Jetson GPU device inside the container'; exit 1; fi")
    else:
        check = "nvidia-smi"
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for taint in taints:  # the node's own taints (nodes[].taints), so the check reaches it
        key_value, effect = taint.rsplit(":", 1)
        key, _, value = key_value.partition("=")
        tolerations.append({"key": key, "operator": "Equal", "value": value, "effect": effect} if value
                           else {"key": key, "operator": "Exists", "effect": effect})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{GPU_POD_PREFIX}{node_name}", "namespace": GPU_POD_NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "kubeflow-k3s", "kubeflow-k3s/smoke": "gpu"}},
        "spec": {
            "restartPolicy": "Never",
            "runtimeClassName": gpu_plan.RUNTIME_CLASS,
            "nodeSelector": {"kubernetes.io/hostname": node_name},
            "tolerations": tolerations,
            "containers": [{
                "name": "gpu-check",
                "image": versions.SMOKE_GPU_IMAGE,
                "command": ["sh", "-c", check],
                # The runtime adds nvidia-smi and the driver libraries for the `utility` capability.
                "env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"}],
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }],
        },
    }


def gpu_pods(settings: Settings) -> list[dict]:
    return [gpu_pod(n.name, n.gpu, n.taints) for n in settings.gpu_nodes]


def notebook_pod(namespace: str) -> dict:
    """The pod of the notebook check: created with `--dry-run=server` in the admin's namespace, so it goes
    through the admission chain a notebook's pod meets there (Istio's sidecar injector, Kubeflow's
    PodDefault webhook, the namespace's Pod Security level and quota) and is then dropped. It states
    small requests, as the Jupyter web app's notebooks do, so a Profile quota on requests admits it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": NOTEBOOK_POD_NAME, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "kubeflow-k3s", "kubeflow-k3s/smoke": "notebook"}},
        "spec": {
            "serviceAccountName": NOTEBOOK_SERVICE_ACCOUNT,
            "restartPolicy": "Never",
            "containers": [{
                "name": "notebook",
                "image": versions.SMOKE_PIPELINE_IMAGE,
                "command": ["sh", "-c", "true"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
        },
    }


def check_notebooks(settings: Settings) -> bool:
    """Full mode with the notebooks component (which needs profiles and the admission webhook:
    stacks/kubeflow_components.py)."""
    return settings.kubeflow.mode == "full" and settings.kubeflow.components.get("notebooks", False)


def pipeline_images() -> set[str]:
    """The images the smoke pipeline's steps run (its IR's executors)."""
    executors = yaml.safe_load(pipeline_yaml())["deploymentSpec"]["executors"]
    return {e["container"]["image"] for e in executors.values() if "container" in e}


def gpu_images(settings: Settings) -> set[tuple[str, str]]:
    """(image, GPU kind) of every GPU check pod: what the GPU nodes of each kind must be able to run."""
    return {(c["image"], n.gpu) for n, pod in zip(settings.gpu_nodes, gpu_pods(settings))
            for c in pod["spec"]["containers"]}


def checked_versions(settings: Settings) -> str:
    """What the smoke step checks, as one line in its command text: a change re-runs it."""
    parts = [f"k3s={settings.k3s.version}", f"kfp={versions.KFP_VERSION}"]
    if settings.kubeflow.mode == "full":
        parts += [f"kubeflow={versions.KUBEFLOW_MANIFESTS_REF}", f"istio={istio_plan.version()}",
                  f"cert-manager={helm.chart('cert-manager').version}"]
    if settings.kubeflow.mode == "full":
        parts.append(f"logins={logins_digest(settings)}")
    if gpu_plan.operator_nodes(settings):
        parts.append(f"gpu-operator={helm.chart('gpu-operator').version}")
    if gpu_plan.jetson_nodes(settings):
        parts.append(f"nvidia-device-plugin={helm.chart('nvidia-device-plugin').version}")
    return " ".join(parts)


def logins_digest(settings: Settings) -> str:
    """A digest of who can log in and where they land (full mode): Dex's config (its static logins and
    the identity provider's connector; no secret is in it) and the Profiles. A change of users or of
    kubeflow.identityProvider changes the command text, so the smoke step re-checks the login."""
    text = kubeflow_plan.dex_config(settings) + json.dumps(kubeflow_plan.profiles(settings), default=repr, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def gateway_ca_key(settings: Settings) -> str:
    """The key of the gateway's TLS Secret that curl trusts when the certificate is not publicly trusted:
    `ca.crt` (the stack's CA) or, with Let's Encrypt staging, `tls.crt`: the issued certificate and its
    staging intermediate. curl with OpenSSL accepts an intermediate in --cacert as a trust anchor
    (partial chains, the default since curl 7.68.0: CURLSSLOPT_NO_PARTIALCHAIN), so the gateway must
    serve a certificate of that chain for the host name, without the untrusted staging root."""
    if cert_manager_plan.acme_enabled(settings) and not cert_manager_plan.publicly_trusted(settings):
        return "tls.crt"
    return "ca.crt"


def params(settings: Settings, started: str = "", run: str = "create") -> dict[str, object]:
    """smoke.sh's parameters. Nothing secret: the admin password is the command's stdin. `run`:
    `create` (the stack's first successful `up`: installSeconds is the install time) or `update` (a
    later `up` re-checks an existing stack: the figure is reported as sinceInstallStart instead)."""
    mode = settings.kubeflow.mode
    comps = settings.kubeflow.components
    full = mode == "full"
    pods = gpu_pods(settings)
    return {
        "NODE_NAME": settings.first_server.name,
        "MODE": mode,
        "K3S_BIN": K3S_BIN,
        "DEADLINE_SECONDS": settings.smoke.timeout_seconds,
        "STARTED": started,
        "RUN": run,
        "CHECKS": checked_versions(settings),
        "COMPONENTS": " ".join(sorted(k for k, v in comps.items() if v)) if full else "pipelines",
        # full mode: the gateway and the login
        "DASHBOARD_URL": kubeflow_plan.dashboard_url(settings) if full else "",
        "LOGIN_EMAIL": settings.kubeflow.admin_email if full else "",
        "ADMIN_NAMESPACE": kubeflow_plan.admin_namespace(settings) if full else "",
        # Only a Profile creates the admin's namespace. Without the profiles component there is none to
        # wait for; settings then refuse pipelines and the dashboard too (stacks/kubeflow_components.py):
        # multi-user KFP needs a namespace on every experiment and runs as that namespace's
        # default-editor (KFP 2.16 multi-user params.env), which only a Profile creates.
        "CHECK_PROFILE": full and comps.get("profiles", False),
        "CHECK_DASHBOARD": full and comps.get("centralDashboard", False),
        "CHECK_PIPELINES": (not full) or comps.get("pipelines", False),
        # The Jupyter web app's API as the admin, and a notebook-like pod dry-run in their namespace.
        "CHECK_NOTEBOOKS": check_notebooks(settings),
        "NOTEBOOK_POD": (json.dumps(notebook_pod(kubeflow_plan.admin_namespace(settings)), sort_keys=True)
                         if check_notebooks(settings) else ""),
        "GATEWAY_NAMESPACE": kubeflow_plan.GATEWAY_NAMESPACE,
        "GATEWAY_SERVICE": kubeflow_plan.INGRESS_SERVICE,
        "TLS_SECRET": kubeflow_plan.GATEWAY_TLS_SECRET,
        # How curl verifies the gateway: the system's CAs (Let's Encrypt), else a key of the gateway's
        # Secret: ca.crt (the stack's CA), or tls.crt with Let's Encrypt staging (cert-manager's ACME
        # issuer writes no ca.crt, cert-manager#1571; the Secret's own chain is trusted instead).
        "PUBLIC_CA": full and cert_manager_plan.publicly_trusted(settings),
        "CA_KEY": gateway_ca_key(settings),
        # the KFP API: through the gateway (full) or its Service (pipelines)
        "KFP_NAMESPACE": KFP_NAMESPACE,
        "KFP_SERVICE": KFP_SERVICE,
        "KFP_PORT": KFP_HTTP_PORT,
        "PIPELINE_YAML": pipeline_yaml(),
        # GPU nodes
        "GPU_NAMESPACE": GPU_POD_NAMESPACE,
        "GPU_PODS": " ".join(p["metadata"]["name"] for p in pods),
        "GPU_MANIFEST": json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, sort_keys=True) if pods else "",
    }


def parse_report(stdout: str | None) -> dict[str, str]:
    """smoke.sh prints `key<TAB>value` lines on stdout (its progress goes to stderr)."""
    out: dict[str, str] = {}
    for line in (stdout or "").splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key] = value
    return out


def install_seconds(stdout: str | None) -> int | None:
    """The `installSeconds` figure of a smoke run, None when the run could not measure it."""
    value = parse_report(stdout).get("installSeconds", "")
    return int(value) if value.isdigit() else None


def timeout_seconds(settings: Settings) -> int:
    return settings.smoke.timeout_seconds + COMMAND_MARGIN_SECONDS


def script(settings: Settings, started: str = "", run: str = "create") -> str:
    return render(params(settings, started, run))


def render(values: dict[str, object]) -> str:
    """smoke.sh rendered with `values`. A user's namespace may be spelled like a command (`admin`,
    `test`), which ShellCheck flags as SC2209 in its bare assignment; the file-wide directive (a comment
    before the first command) keeps the rendered text clean without quoting differently from every
    other script."""
    head, _, rest = scripts.render("smoke.sh", values).partition("\n# kubeflow-k3s: smoke.sh\n")
    return f"{head}\n# kubeflow-k3s: smoke.sh\n# shellcheck disable=SC2209 # values are data, never commands\n{rest}"
