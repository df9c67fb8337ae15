"""Images ahead of need on each node (plan: node_images_plan): K3s's registries.yaml before the install,
and once K3s runs, the air-gapped platform bundle's import and the pre-pull list.

    prepare ─> registries.yaml ─> install ─┬─> pre-pull list (K3s pulls in the background; nothing waits)
                                           └─> bundle folder ─> bundle copy ─> import ─> cluster ready

Kept apart from the K3s air-gap staging (k3s_cluster.K3sNode._stage_airgap): own folder, own delete.
"""

from __future__ import annotations

import shlex

import pulumi
from pulumi_command import remote

from stacks.settings import Node, Settings

from components.k3s import node_images_plan as plan
from components.k3s.connection import NodeShell

IMPORT_TIMEOUTS = pulumi.CustomTimeouts(create="40m", update="40m", delete="5m")


def write_registries(name: str, node: Node, shell: NodeShell, registries: pulumi.Input[str],
                     after: list[pulumi.Resource], parent: pulumi.Resource) -> pulumi.Resource:
    """registries.yaml on stdin (secret), before K3s's install reads it; a change restarts K3s."""
    texts = plan.registries_scripts(node)
    return shell.command(
        f"{name}-registries",
        texts["registries"],
        update=texts["registries"],
        delete=texts["registries-remove"],
        stdin=pulumi.Output.secret(registries),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


class NodeImages:
    """The pre-pull list and bundle import of one node (children of its K3sNode)."""

    def __init__(self, name: str, settings: Settings, node: Node, shell: NodeShell, install: pulumi.Resource,
                 parent: pulumi.Resource):
        texts = plan.node_scripts(settings, node)
        self.imports: list[pulumi.Resource] = []
        self.prepull: pulumi.Resource | None = None
        files = plan.bundle_files(settings)
        if files:
            folder = shell.command(
                f"{name}-platform-images-dir", texts["bundle-dir"], delete=texts["bundle-remove"],
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[install]),
            )
            copies = []
            for f in files:
                target = f"{plan.BUNDLE_DIR}/{f.name}"
                opts = pulumi.ResourceOptions(parent=parent, depends_on=[folder], custom_timeouts=IMPORT_TIMEOUTS)
                if shell.is_local:
                    copies.append(shell.command(f"{name}-platform-image-{f.stem}",
                                                f"cp -f {shlex.quote(str(f))} {shlex.quote(target)}", opts=opts))
                else:
                    copies.append(remote.CopyToRemote(f"{name}-platform-image-{f.stem}", connection=shell.connection,
                                                      source=pulumi.FileAsset(str(f)), remote_path=target, opts=opts))
            self.imports.append(shell.command(
                f"{name}-platform-images",
                texts["import"],
                update=texts["import"],
                triggers=[plan.bundle_fingerprint(files)],
                opts=pulumi.ResourceOptions(parent=parent, depends_on=copies, custom_timeouts=IMPORT_TIMEOUTS),
            ))
        listing = plan.prepull_list(settings, node)
        if listing:
            self.prepull = shell.command(
                f"{name}-prepull",
                texts["prepull"],
                update=texts["prepull"],
                delete=texts["unprepull"],
                # After the import on air-gapped nodes: K3s then finds every listed image present.
                opts=pulumi.ResourceOptions(parent=parent, depends_on=[install, *self.imports]),
            )
