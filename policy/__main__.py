"""The kubeflow-k3s policy pack: adapts the engine's arguments to the plain validators in validators.py.

Every policy is mandatory. The cloud-only rules apply to every stack whose config sets
`kubeflow-k3s:profile: cloud`: the engine gives a policy pack the stack's config as it gives the program
(PULUMI_CONFIG, read by pulumi.Config / pulumi.runtime.get_config in a pack: pulumi/pulumi#3612, #20570).
Policy config (`pulumi preview --policy-pack-config`): `cloudStacks`, stack names the cloud rules apply to
in addition (default ["cloud"]).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pulumi  # noqa: E402
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

import validators as v  # noqa: E402

# The program's directory: local manifest sources are relative to it (this pack lives in <project>/policy).
PROJECT_DIR = os.environ.get("KUBEFLOW_K3S_PROJECT_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLOUD_SCHEMA = PolicyConfigSchema(
    properties={"cloudStacks": {"type": "array", "items": {"type": "string"}, "default": ["cloud"]}}
)


NS = "kubeflow-k3s"


# The stack config of the engine's ConfigureStack call (newer engines send it there too, with the stack's
# name; pulumi-policy 1.21 keeps only its tags), kept as a second source next to PULUMI_CONFIG.
CONFIGURED: dict = {}


def _remember_stack_config() -> None:
    import pulumi_policy.policy as pp

    servicer = getattr(pp, "_PolicyAnalyzerServicer", None)
    original = getattr(servicer, "ConfigureStack", None)
    if original is None or getattr(original, "_kubeflow_k3s", False):
        return

    def configure_stack(self, request, context):
        CONFIGURED.update(dict(request.config))
        return original(self, request, context)

    configure_stack._kubeflow_k3s = True
    servicer.ConfigureStack = configure_stack


_remember_stack_config()


def stack_config() -> dict:
    """The stack's config as the engine passed it to the pack (namespaced keys)."""
    found = dict(CONFIGURED)
    found.update(pulumi.runtime.get_config_env())
    found.update(pulumi.runtime.config.CONFIG.get())
    return found


def _cloud(args) -> bool:
    stacks = args.get_config().get("cloudStacks") or ["cloud"]
    urn = args.urn if hasattr(args, "urn") else next((r.urn for r in args.resources), "")
    return v.is_cloud(urn, stacks, stack_config().get(f"{NS}:profile"))


def _report(messages, report_violation, urn=None):
    for message in messages:
        report_violation(message, urn) if urn else report_violation(message)


def pinned(args, report_violation):
    _report(v.pinned_source_violations(args.resource_type, args.props, PROJECT_DIR), report_violation)


def exposure(args, report_violation):
    resources = [v.Resource(r.resource_type, r.name, r.props) for r in args.resources]
    _report(v.exposure_violations(resources, _cloud(args)), report_violation)


def secrets(args, report_violation):
    outputs = args.opts.additional_secret_outputs if args.opts else []
    _report(v.secret_violations(args.resource_type, args.props, outputs), report_violation)


def gpu_taint(args, report_violation):
    _report(v.gpu_taint_violations(args.resource_type, args.props, _cloud(args)), report_violation)


def default_credentials(args, report_violation):
    _report(v.default_credential_violations(args.resource_type, args.props), report_violation)


def stack_credentials(args, report_violation):
    _report(v.config_violations(stack_config(), NS), report_violation)


PolicyPack(
    name="kubeflow-k3s",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="pinned-sources",
            description="Every Helm release has an exact chart version; every manifest source an exact tag or commit.",
            validate=pinned,
        ),
        StackValidationPolicy(
            name="tls-on-cloud",
            description="On cloud: every gateway terminates TLS, and no LoadBalancer exists without a TLS gateway.",
            validate=exposure,
            config_schema=CLOUD_SCHEMA,
        ),
        ResourceValidationPolicy(
            name="secrets-stay-secret",
            description="No credential in command text or ConfigMaps; commands that print credentials keep their output secret.",
            validate=secrets,
        ),
        ResourceValidationPolicy(
            name="gpu-nodes-tainted-on-cloud",
            description="On cloud, every GPU node carries an nvidia.com/gpu NoSchedule taint.",
            validate=gpu_taint,
            config_schema=CLOUD_SCHEMA,
        ),
        ResourceValidationPolicy(
            name="no-kubeflow-default-credentials",
            description="Kubeflow's example user, password, OIDC client secret and profile are never deployed.",
            validate=default_credentials,
        ),
        StackValidationPolicy(
            name="no-example-password-in-config",
            description="The stack's adminPassword is not Kubeflow's example password 12341234.",
            validate=stack_credentials,
        ),
    ],
)
