"""kubeflow-k3s: bare Linux hosts -> K3s -> platform layers -> Kubeflow, one stack per place it runs."""

import pulumi

from components import platform
from stacks import config

settings, secrets = config.load()  # validates everything before any resource exists
built = platform.build(settings, secrets)
for key, value in built.outputs.items():
    pulumi.export(key, value)
