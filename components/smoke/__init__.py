"""Smoke step: the last step of `pulumi up` on a stack with Kubeflow, one check on the first server
(script: components/k3s/scripts/smoke.sh, pipeline: hello-pipeline.yaml). Waits for every Kubeflow
resource and the GPU layer."""
