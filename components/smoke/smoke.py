"""Smoke: the last step of `pulumi up` on a stack with Kubeflow (what and why: smoke_plan.py).

One command on the first server, after every Kubeflow resource (and the GPU layer) exists. Its text is
built from the first server's preflight report (the start of the install); the admin password is its
stdin. `install_seconds` is what it measured, for the `installSeconds` stack output.
"""

from __future__ import annotations

from typing import Sequence

import pulumi

from stacks.settings import Settings

from components.smoke import smoke_plan
from components.k3s.k3s_cluster import K3sCluster


class Smoke(pulumi.ComponentResource):
    command: pulumi.CustomResource
    install_seconds: pulumi.Output
    report: pulumi.Output

    def __init__(
        self,
        name: str,
        settings: Settings,
        cluster: K3sCluster,
        *,
        after: Sequence[pulumi.Resource],
        admin_password: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kubeflow-k3s:smoke:Smoke", name, {}, opts)
        first = cluster.nodes[settings.first_server.name]
        started = first.preflight_report.apply(smoke_plan.started_epoch)
        create = started.apply(lambda epoch: smoke_plan.script(settings, epoch, "create"))
        update = started.apply(lambda epoch: smoke_plan.script(settings, epoch, "update"))
        seconds = smoke_plan.timeout_seconds(settings)
        timeouts = pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")
        self.command = cluster.first_shell.command(
            f"{name}-check",
            create,
            # A later `up` re-checks the stack: the same checks, the figure reported as time since the install began.
            update=update,
            # Full mode logs in as the admin; the password is the command's stdin (secret), never its text.
            stdin=pulumi.Output.secret(admin_password) if admin_password is not None else None,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(after), custom_timeouts=timeouts, deleted_with=cluster.cluster_identity,
            ),
        )
        stdout = self.command.stdout  # type: ignore[attr-defined]
        self.install_seconds = stdout.apply(smoke_plan.install_seconds)
        self.report = stdout.apply(smoke_plan.parse_report)
        self.register_outputs({"installSeconds": self.install_seconds, "report": self.report})
