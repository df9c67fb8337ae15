"""K3sCluster: K3s on every configured node, its kubeconfig, and the Kubernetes provider.

Per node (a K3sNode component): preflight (read-only) -> prepare (sysctls, modules) -> [air-gap copies]
-> install (config.yaml on stdin, pinned install.sh). Servers join one at a time; agents join in
parallel once the first server is up. Then one command on the first server waits for every node to be
Ready, the admin kubeconfig is read (logging off, secret) and rewritten, and a Kubernetes provider is
built from it. Every Kubernetes resource of the later layers uses `k8s_options()`.

The cluster identity (docs/k3s.md "A new cluster behind the same stack"): a RandomId whose keepers are
the digest of the cluster's CA is replaced exactly when K3s starts a new cluster, and every Kubernetes
object is `deletedWith` it, so an engine that replaces deletedWith dependents (pulumi/pulumi#23818)
creates the platform again on a new cluster and leaves it alone when only the first server's install is
replaced (an HA re-host keeps the CA). For engines without that, a marker ConfigMap and a check on the
first server fail the `up` before any other object when the CA changed and the marker is not there.
"""

from __future__ import annotations

import shlex
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import remote

from stacks.settings import Node, Settings

from components.k3s import k3s_plan, node_images, node_images_plan, scripts
from components.storage import storage_plan
from components.k3s.connection import NodeShell, node_shell
from components.k3s.kubeconfig import ca_digest, rewrite_kubeconfig

INSTALL_TIMEOUTS = pulumi.CustomTimeouts(create="40m", update="40m", delete="15m")


class K3sNode(pulumi.ComponentResource):
    """One host: preflight, preparation, K3s install. `install` is what later steps wait for."""

    install: pulumi.CustomResource
    # What the cluster's readiness wait depends on: the install, or for agents the teardown command.
    joined: pulumi.CustomResource
    preflight_report: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        node: Node,
        shell: NodeShell,
        token: pulumi.Output[str],
        after: Sequence[pulumi.Resource],
        servers: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
        registries: pulumi.Input[str] | None = None,
    ):
        """`after`: what the install waits for. `servers`: for an agent, every server's install; its
        uninstall then runs before any server's on destroy, while the join still waits only for `after`."""
        super().__init__("kubeflow-k3s:k3s:Node", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)

        preflight = shell.command(
            f"{name}-preflight",
            scripts.render("preflight.sh", k3s_plan.preflight_params(settings, node)),
            opts=child,
        )
        # Host packages of the platform layers (Longhorn/NFS), installed only where the stack uses them.
        prepare_params = k3s_plan.prepare_params(settings, node, **storage_plan.host_requirements(settings, node))
        prepare = shell.command(
            f"{name}-prepare",
            scripts.render("prepare.sh", prepare_params),
            delete=scripts.render("unprepare.sh", k3s_plan.unprepare_params(node, prepare_params)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[preflight]),
        )
        staged: list[pulumi.Resource] = [prepare]
        if settings.k3s.airgap:
            staged += self._stage_airgap(name, settings, shell, prepare)
        if registries is not None:  # k3s.registries: before K3s first reads it
            staged.append(node_images.write_registries(name, node, shell, registries, [prepare], self))

        config = pulumi.Output.secret(
            token.apply(lambda t: k3s_plan.render_config(k3s_plan.node_config(settings, node, t)))
        )
        if registries is not None:  # a registries change restarts K3s through this install (registries_marker)
            config = pulumi.Output.secret(pulumi.Output.all(config, registries).apply(
                lambda a: a[0] + node_images_plan.registries_marker(a[1])))
        uninstall = scripts.render("uninstall.sh", k3s_plan.uninstall_params(node))
        # A new role or host is a different install: uninstall the old one first (never after).
        # Version and config changes are updates: install.sh re-runs in place, and restarts K3s only when
        # the digest of what K3s runs (config.yaml, version, staged files) changed.
        identity = [node.role, node.host or "local"]
        self.identity = identity
        install_script = scripts.render("install.sh", k3s_plan.install_params(settings, node))
        self.install = shell.command(
            f"{name}-install",
            install_script,
            update=install_script,
            # An agent's uninstall lives on its teardown command below, which waits for every server.
            delete=uninstall if node.is_server else None,
            stdin=config,
            triggers=identity,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*staged, *after],
                delete_before_replace=True,
                custom_timeouts=INSTALL_TIMEOUTS,
            ),
        )
        self.joined = self.install
        if not node.is_server:
            # Pulumi deletes a resource only after everything that depends on it. An agent joins as soon
            # as the first server is up, but this command depends on *all* servers, so on destroy every
            # agent is uninstalled before any server. Same identity triggers: a replaced agent install
            # replaces this too, and delete-before-replace runs the old uninstall first.
            self.joined = shell.command(
                f"{name}-teardown",
                scripts.render("joined.sh", {"NODE_NAME": node.name}),
                delete=uninstall,
                triggers=identity,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.install, *servers],
                    delete_before_replace=True,
                    custom_timeouts=INSTALL_TIMEOUTS,
                ),
            )
        self.preflight_report = preflight.stdout
        self.register_outputs({"preflightReport": preflight.stdout, "role": node.role})

    def _stage_airgap(self, name: str, settings: Settings, shell: NodeShell, prepare: pulumi.Resource) -> list[pulumi.Resource]:
        """Copy the K3s binary, images, installer and registries.yaml from this machine to the node."""
        airgap = settings.k3s.airgap
        assert airgap is not None
        # pulumi-command's SFTP put creates no parent directories: the staging folder exists first, owned by
        # the login user (the SFTP writer). Its delete runs only after the install is gone.
        stage_dir = shell.command(
            f"{name}-stage-dir",
            scripts.render("stage-dir.sh", {"NODE_NAME": shell.node.name, "STAGE_DIR": k3s_plan.STAGE_DIR}),
            delete=scripts.render("unstage.sh", {"NODE_NAME": shell.node.name, "STAGE_DIR": k3s_plan.STAGE_DIR}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[prepare]),
        )
        copies: list[pulumi.Resource] = [stage_dir]
        for key, (source, target) in k3s_plan.staged_files(settings).items():
            opts = pulumi.ResourceOptions(parent=self, depends_on=[stage_dir])
            path = f"{k3s_plan.STAGE_DIR}/{target}"
            if shell.is_local:
                copies.append(
                    shell.command(
                        f"{name}-stage-{key}",
                        f"cp -f {shlex.quote(source)} {shlex.quote(path)}",
                        opts=opts,
                    )
                )
            else:
                copies.append(
                    remote.CopyToRemote(
                        f"{name}-stage-{key}",
                        connection=shell.connection,
                        source=pulumi.FileAsset(source),
                        remote_path=path,
                        opts=opts,
                    )
                )
        return copies


class K3sCluster(pulumi.ComponentResource):
    """The K3s cluster of a stack and the Kubernetes provider every later layer uses."""

    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    ready: pulumi.CustomResource
    nodes: dict[str, K3sNode]

    def __init__(
        self,
        name: str,
        settings: Settings,
        ssh_private_key: pulumi.Input[str] | None,
        k3s_token: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
        registries: pulumi.Input[str] | None = None,
    ):
        # Air-gap files are read (hashed) here, before any resource: a missing file is a ConfigError.
        k3s_plan.staged_sha256(settings)
        super().__init__("kubeflow-k3s:k3s:Cluster", name, {}, opts)
        if k3s_token is None:
            # Generated once and kept (encrypted) in state: stable across runs, never read from a host.
            k3s_token = random.RandomPassword(
                f"{name}-token", length=48, special=False, opts=pulumi.ResourceOptions(parent=self)
            ).result
        token = pulumi.Output.secret(k3s_token)

        shells = {n.name: node_shell(settings, n, ssh_private_key) for n in settings.nodes}
        self.nodes = {}
        previous: list[pulumi.Resource] = []
        for server in settings.servers:  # one at a time: etcd keeps quorum on join and on upgrade
            node = K3sNode(f"{name}-{server.name}", settings, server, shells[server.name], token, previous,
                           opts=pulumi.ResourceOptions(parent=self), registries=registries)
            self.nodes[server.name] = node
            previous = [node.install]
        first = self.nodes[settings.first_server.name]
        server_installs = [n.install for n in self.nodes.values()]
        for agent in settings.agents:  # in parallel, once the first server is up
            self.nodes[agent.name] = K3sNode(f"{name}-{agent.name}", settings, agent, shells[agent.name], token,
                                             [first.install], servers=server_installs,
                                             opts=pulumi.ResourceOptions(parent=self), registries=registries)

        # Pre-pull lists and air-gap bundle imports, once each node runs K3s (components/k3s/node_images.py).
        self.images = {n: node_images.NodeImages(f"{name}-{n}", settings, settings.node(n), shells[n],
                                                 self.nodes[n].install, self.nodes[n]) for n in self.nodes}
        first_shell = shells[settings.first_server.name]
        installs = [n.joined for n in self.nodes.values()]
        installs += [i for images in self.images.values() for i in images.imports]  # air-gap: nothing runs without
        self.ready = first_shell.command(
            f"{name}-nodes-ready",
            scripts.render(
                "wait-ready.sh",
                {
                    "NODE_NAME": settings.first_server.name,
                    "NODES": " ".join(n.name for n in settings.nodes),
                    "WAIT_SECONDS": settings.k3s.ready_timeout_seconds,
                },
            ),
            # Again after an upgrade (every node restarted on the new version), not only when the node list changes.
            triggers=[settings.k3s.version],
            opts=pulumi.ResourceOptions(parent=self, depends_on=installs),
        )
        read = first_shell.command(
            f"{name}-kubeconfig",
            scripts.render("read-kubeconfig.sh", {"NODE_NAME": settings.first_server.name}),
            secret_output=True,
            # Re-read when the first server is another host (a replaced first server has new client certs).
            triggers=first.identity,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[first.install]),
        )
        context = f"kubeflow-k3s-{settings.stack_name}"
        server = k3s_plan.api_url(settings)
        self.kubeconfig = pulumi.Output.secret(read.stdout.apply(lambda text: rewrite_kubeconfig(text, server, context)))
        self.first_install = first.install
        # For later layers' waits that must run next to K3s (e.g. the GPU toolkit's K3s restart).
        self.first_shell = first_shell
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Fixed, so no kubeconfig change (a renewed client certificate, a new endpoint, a new first
            # server) replaces the provider and every Kubernetes object with it. Which cluster answers is
            # the cluster identity's business (_identity).
            cluster_identifier=context,
            # After the hosts are gone, `pulumi destroy` drops the cluster's objects from state instead
            # of failing on an unreachable API.
            delete_unreachable=True,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._identity(name, settings, first_shell, read.stdout)
        self._name, self._settings = name, settings
        # Lives exactly as long as the cluster (no inputs change): only a whole-stack destroy deletes it.
        # The membership commands go with it, so a destroy drains nothing, while removing nodes (even a
        # server together with the server that would remove it) always drains and deletes them.
        self.lifetime = random.RandomId(f"{name}-lifetime", byte_length=4, opts=pulumi.ResourceOptions(parent=self))
        self._leaving = {node.name: self._membership(name, settings, node, shells) for node in settings.nodes}
        self.register_outputs(
            {"kubeconfig": self.kubeconfig, "apiEndpoint": server, "nodes": [n.name for n in settings.nodes]}
        )

    def _identity(self, name: str, settings: Settings, first_shell: NodeShell, kubeconfig: pulumi.Output[str]) -> None:
        """The cluster identity: `self.cluster_identity` (what every Kubernetes object is deletedWith) and
        `self.identity_check` (what every Kubernetes object but the marker waits for)."""
        # The CA certificate is public; its digest is shown in previews and in the check's message.
        digest = pulumi.Output.unsecret(kubeconfig.apply(ca_digest))
        # Replaced exactly when the CA changes. Not deletedWith the first install: an engine with #23818 would
        # then replace it, and so every object, whenever the first server is re-hosted, even in HA.
        self.cluster_identity = random.RandomId(
            f"{name}-cluster-identity", byte_length=8, keepers={"caSha256": digest},
            opts=pulumi.ResourceOptions(parent=self),
        )
        namespace, marker_name = k3s_plan.IDENTITY_MARKER
        marker = k8s.core.v1.ConfigMap(
            f"{name}-identity-marker",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=marker_name, namespace=namespace),
            data=k3s_plan.identity_marker_data(settings),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.ready],
                                        deleted_with=self.cluster_identity),
        )
        # Runs when the CA digest changed (triggers; a failed run leaves the old digest in state, so the next
        # `up` checks again) and when the first server moved (an update: same cluster, the marker is there).
        self.identity_check = first_shell.command(
            f"{name}-identity-check",
            digest.apply(lambda d: scripts.render("identity-check.sh", k3s_plan.identity_check_params(settings, d))),
            triggers=[digest],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[marker]),
        )

    def _membership(self, name: str, settings: Settings, node: Node, shells: dict[str, NodeShell]) -> list[pulumi.Resource]:
        """The command that drains and deletes a node's Node object when it leaves the cluster."""
        member = self.nodes[node.name]
        runner = k3s_plan.remover(settings, node)
        sole = runner.name == node.name  # the cluster's only server: nothing to drain it from
        # Leaving (the node is removed from the stack, or re-hosted): drain it and delete its Node from a
        # server that stays, before its uninstall (this command depends on it, so it is deleted first).
        # K3s then removes a server's etcd member (its etcd member controller, k3s-io/k3s#3973) and the
        # node-password secret, so a new host may take the name. Skipped only when the whole cluster goes
        # (deleted_with the cluster's lifetime), not when the runner leaves too: that skipped the drain and
        # left etcd members behind. It runs before the runner's own uninstall (depends_on).
        return [shells[runner.name].command(
            f"{name}-{node.name}-member",
            scripts.render("member.sh", k3s_plan.member_params(settings, node, runner)),
            delete=None if sole else scripts.render("leave.sh", k3s_plan.member_params(settings, node, runner)),
            triggers=member.identity,
            opts=pulumi.ResourceOptions(
                parent=member,
                depends_on=[member.joined, self.nodes[runner.name].install],
                deleted_with=self.lifetime,
                delete_before_replace=True,
                custom_timeouts=INSTALL_TIMEOUTS,
            ),
        )]

    def patch_nodes(self, after: Sequence[pulumi.Resource] = ()) -> None:
        """Labels and taints after registration, through the API: K3s's node-label/node-taint (kept in
        config.yaml for the first boot) apply only when a node registers. Server-side apply, forced
        (pulumi.com/patchForce): these fields are this program's, whoever set them first. Called by the
        platform once the GPU layer exists: `after` is what must finish first (the GPU toolkit's K3s restart
        on a single-node stack takes the API down)."""
        for node in self._settings.nodes:
            patch = k3s_plan.node_patch(self._settings, node)
            k8s.core.v1.NodePatch(
                f"{self._name}-{node.name}-labels",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=node.name, labels=patch["labels"], annotations={"pulumi.com/patchForce": "true"}
                ),
                spec=k8s.core.v1.NodeSpecPatchArgs(taints=[k8s.core.v1.TaintPatchArgs(**t) for t in patch["taints"]]),
                # Like every Kubernetes object: skipped when the whole cluster goes. When only this node leaves,
                # it is released (depends on the membership command) before the node is drained and deleted.
                opts=self.k8s_options(self.nodes[node.name], depends_on=[*self._leaving[node.name], *after]),
            )

    def k8s_options(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        """Options for a Kubernetes resource of a later layer: this cluster's provider, created after
        every node is Ready and the cluster identity check, and deleted with the cluster identity: no API
        calls when the whole cluster goes, and (engines with pulumi/pulumi#23818) re-created on a new cluster."""
        return pulumi.ResourceOptions(
            parent=parent,
            provider=self.provider,
            depends_on=[self.ready, self.identity_check, *depends_on],
            deleted_with=self.cluster_identity,
        )
