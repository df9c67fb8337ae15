"""How commands reach a node: pulumi-command over SSH, or locally for the laptop profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pulumi
from pulumi_command import local, remote

from stacks.settings import Node, Settings

from components.k3s import scripts


@dataclass(frozen=True)
class NodeShell:
    """Creates commands on one node with the project's command conventions applied."""

    node: Node
    connection: remote.ConnectionArgs | None  # None: run on this machine

    @property
    def is_local(self) -> bool:
        return self.connection is None

    def command(
        self,
        name: str,
        create: pulumi.Input[str],
        *,
        update: pulumi.Input[str] | None = None,
        delete: str | None = None,
        stdin: pulumi.Input[str] | None = None,
        triggers: Sequence[Any] | None = None,
        secret_output: bool = False,
        opts: pulumi.ResourceOptions,
    ) -> pulumi.CustomResource:
        """A command whose texts are scripts from components/k3s/scripts (rendered by scripts.render).

        - `secret_output`: stdout/stderr carry secrets: logging is off and both outputs are secret.
        - add_previous_output_in_env is off: over SSH it is sent with setenv, which sshd refuses unless
          AcceptEnv allows it, and no script here reads a previous output.
        """
        logging = "none" if secret_output else "stdoutAndStderr"
        if secret_output:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"]))
        def wrap(text: pulumi.Input[str]) -> pulumi.Input[str]:
            if self.is_local:
                return text
            if isinstance(text, pulumi.Output):  # a text built from another resource's output
                return text.apply(scripts.as_remote_command)
            return scripts.as_remote_command(text)

        common = dict(
            create=wrap(create),
            update=wrap(update) if update else None,
            delete=wrap(delete) if delete else None,
            stdin=stdin,
            triggers=list(triggers) if triggers is not None else None,
            add_previous_output_in_env=False,
            opts=opts,
        )
        if self.is_local:
            return local.Command(name, logging=local.Logging(logging), interpreter=["/bin/sh", "-c"], **common)
        return remote.Command(name, connection=self.connection, logging=remote.Logging(logging), **common)


def node_shell(settings: Settings, node: Node, private_key: pulumi.Input[str] | None) -> NodeShell:
    if node.connection == "local":
        return NodeShell(node, None)
    ssh = settings.ssh
    proxy = None
    if ssh.bastion:
        proxy = remote.ProxyConnectionArgs(
            host=ssh.bastion.host,
            port=ssh.bastion.port,
            user=ssh.bastion.user,
            private_key=private_key,
            host_key=ssh.bastion.host_key,
            dial_error_limit=ssh.dial_error_limit,
            per_dial_timeout=ssh.per_dial_timeout,
        )
    return NodeShell(
        node,
        remote.ConnectionArgs(
            host=node.host,
            port=node.port or ssh.port,
            user=node.user or ssh.user,
            private_key=private_key,
            # With host_key set the connection refuses any other key; unset, pulumi-command accepts any
            # (validation requires it on cloud and warns elsewhere).
            host_key=node.host_key,
            dial_error_limit=ssh.dial_error_limit,
            per_dial_timeout=ssh.per_dial_timeout,
            proxy=proxy,
        ),
    )
