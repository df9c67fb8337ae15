"""Source of components/smoke/hello-pipeline.yaml, the smoke step's pipeline (not collected by pytest).

Regenerate with the KFP SDK of the pinned KFP release (pip install kfp==2.16.0):
    python tests/components/smoke_pipeline_source.py components/smoke/hello-pipeline.yaml
then put the provenance comment back on line 1. test_smoke.py checks the file against the pipeline
spec proto of kfp-pipeline-spec 2.16.0 and the image pin in stacks/versions.py.
"""

import sys

from kfp import compiler, dsl


@dsl.container_component
def echo():
    return dsl.ContainerSpec(image="docker.io/library/busybox:1.37.0", command=["echo"],
                             args=["kubeflow-k3s smoke test: hello from a pipeline step"])


@dsl.pipeline(name="kubeflow-k3s-smoke", description="One step that echoes: the smoke test of kubeflow-k3s.")
def smoke():
    # No cache: every smoke run really schedules a pod.
    echo().set_caching_options(False)


if __name__ == "__main__":
    compiler.Compiler().compile(smoke, sys.argv[1])
