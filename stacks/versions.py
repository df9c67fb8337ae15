"""Every pinned version of the platform, in one place.

Stack config may override the K3s version (``k3s.version``); everything else is pinned here so that a
version bump is a one-line change that `pulumi preview` shows as exactly the resources it touches.
The contract tests (tests/contract/) check each pin against the upstream files in ../shared/upstream.
"""

# K3s: the Kubernetes minor that Kubeflow 26.03 is tested on (kind node v1.34.0). Release notes:
# https://github.com/k3s-io/k3s/releases/tag/v1.34.6%2Bk3s1
K3S_VERSION = "v1.34.6+k3s1"
KUBERNETES_MINOR = "1.34"

# The oldest K3s the program supports (stacks/settings/k3s.py refuses older `k3s.version`s), per minor line.
# - containerd 2 (the GPU operator's socket-only toolkit setup, components/gpu/gpu_plan.py): K3s ships it
#   since the February 2025 releases v1.31.6+k3s1 and v1.32.2+k3s1 (k3s-io/docs#567);
# - the static CNI bin dir /var/lib/rancher/k3s/data/cni (Istio CNI's k3s profile): since the
#   October 2024 releases (k3s-io/k3s#10868), older than the floor above.
# Minors below the first entry are refused; minors above the last entry are all supported.
K3S_MIN_VERSIONS = {"1.31": "v1.31.6+k3s1", "1.32": "v1.32.2+k3s1"}

# The K3s installer is fetched from the same tag as the binary, never from the floating get.k3s.io.
K3S_INSTALL_SCRIPT_URL = "https://raw.githubusercontent.com/k3s-io/k3s/{version}/install.sh"

# Kubeflow and Kubeflow Pipelines.
KUBEFLOW_MANIFESTS_REF = "26.03"
KUBEFLOW_MANIFESTS_REPO = "https://github.com/kubeflow/manifests"
KFP_VERSION = "2.16.0"
KFP_REPO = "https://github.com/kubeflow/pipelines"

# Helm charts: (repository URL, chart name, version).
CHARTS = {
    "cert-manager": ("https://charts.jetstack.io", "cert-manager", "v1.19.4"),
    "istio-base": ("https://istio-release.storage.googleapis.com/charts", "base", "1.29.0"),
    "istio-istiod": ("https://istio-release.storage.googleapis.com/charts", "istiod", "1.29.0"),
    "istio-cni": ("https://istio-release.storage.googleapis.com/charts", "cni", "1.29.0"),
    "istio-gateway": ("https://istio-release.storage.googleapis.com/charts", "gateway", "1.29.0"),
    "gpu-operator": ("https://helm.ngc.nvidia.com/nvidia", "gpu-operator", "v26.7.0"),
    "nvidia-device-plugin": ("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.20.0"),
    "longhorn": ("https://charts.longhorn.io", "longhorn", "1.12.1"),
    "nfs-subdir-external-provisioner": (
        "https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner",
        "nfs-subdir-external-provisioner",
        "4.0.18",
    ),
}

# Images of the smoke step (components/smoke/smoke_plan.py): the pipeline's one step (also in the compiled
# pipeline components/smoke/hello-pipeline.yaml, tests check they agree) and the GPU check pod (the
# NVIDIA runtime injects nvidia-smi and the driver libraries; no CUDA image, so no CUDA version floor).
SMOKE_PIPELINE_IMAGE = "docker.io/library/busybox:1.37.0"
SMOKE_GPU_IMAGE = "docker.io/library/ubuntu:24.04"
