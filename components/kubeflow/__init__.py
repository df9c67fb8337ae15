"""Kubeflow layer: full Kubeflow (kubeflow/manifests, overlays, generated credentials) or standalone
Pipelines, and the footprint guard. Waits for the platform layers it uses (storage, cert-manager, Istio;
GPU when it restarts K3s), behind the footprint guard on the first server."""
