"""The policy pack as the engine runs it: policy/__main__.py started as its own process, serving
Pulumi's Analyzer gRPC protocol, asked what it checks and given resources to analyze (what
`pulumi preview --policy-pack ./policy` does, minus the engine; the Pulumi CLI is not needed)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests import harness

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
URN = "urn:pulumi:{stack}::kubeflow-k3s::{type}::{name}"


@contextlib.contextmanager
def serve(stack_config: dict | None = None):
    """The pack as its own process. `stack_config`: the stack's config, passed as the engine passes it
    (the PULUMI_CONFIG environment variable, pulumi/pulumi#3612)."""
    env = {k: val for k, val in os.environ.items() if not k.startswith("PULUMI_CONFIG")}
    if stack_config is not None:
        env["PULUMI_CONFIG"] = json.dumps(stack_config)
    process = subprocess.Popen([sys.executable, str(harness.ROOT / "policy" / "__main__.py")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=harness.ROOT / "policy")
    try:
        port = int(process.stdout.readline().decode().strip() or 0)
        assert port, process.stderr.read().decode()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def analyzer():
    with serve() as stub:
        yield stub


def struct(props: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(props, out)
    return out


def analyze(stub, typ: str, props: dict, stack: str = "cloud", name: str = "r") -> list[str]:
    request = analyzer_pb2.AnalyzeRequest(type=typ, properties=struct(props), name=name,
                                          urn=URN.format(stack=stack, type=typ, name=name),
                                          options=analyzer_pb2.AnalyzerResourceOptions())
    return [f"{d.policyName}: {d.message}" for d in stub.Analyze(request).diagnostics]


def test_the_pack_describes_its_policies(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "kubeflow-k3s"
    assert {p.name for p in info.policies} == {
        "pinned-sources", "tls-on-cloud", "secrets-stay-secret", "gpu-nodes-tainted-on-cloud",
        "no-kubeflow-default-credentials", "no-example-password-in-config",
    }
    assert all(p.enforcementLevel == analyzer_pb2.MANDATORY for p in info.policies)


def test_a_compliant_release_passes_and_a_floating_one_is_reported(analyzer):
    good = {"chart": "cert-manager", "version": "v1.19.4", "repositoryOpts": {"repo": "https://charts.jetstack.io"}}
    assert analyze(analyzer, "kubernetes:helm.sh/v3:Release", good) == []
    (found,) = analyze(analyzer, "kubernetes:helm.sh/v3:Release", {**good, "version": "latest"})
    assert found.startswith("pinned-sources:") and "not an exact version" in found


def test_values_unknown_during_preview_do_not_fail_the_rules(analyzer):
    install = {"create": "#!/bin/sh\n# kubeflow-k3s: install.sh\n", "stdin": UNKNOWN_STRING, "logging": "stdoutAndStderr"}
    assert analyze(analyzer, "command:remote:Command", install) == []


def test_cloud_rules_follow_the_stack_name(analyzer):
    install = {"create": "# kubeflow-k3s: install.sh", "stdin": "node-name: gpu-1\nnode-label: [kubeflow-k3s/gpu=nvidia]\n"}
    (found,) = analyze(analyzer, "command:remote:Command", install, stack="cloud")
    assert found.startswith("gpu-nodes-tainted-on-cloud:")
    assert analyze(analyzer, "command:remote:Command", install, stack="dev") == []


def test_stack_policy_sees_every_resource(analyzer):
    def resource(typ, name, props):
        return analyzer_pb2.AnalyzerResource(type=typ, name=name, urn=URN.format(stack="cloud", type=typ, name=name),
                                             properties=struct(props), options=analyzer_pb2.AnalyzerResourceOptions())
    lb = resource("kubernetes:core/v1:Service", "lb", {"spec": {"type": "LoadBalancer"}})
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[lb]))
    assert [d.policyName for d in response.diagnostics] == ["tls-on-cloud"]


INSTALL_UNTAINTED_GPU = {"create": "# kubeflow-k3s: install.sh",
                         "stdin": "node-name: gpu-1\nnode-label: [kubeflow-k3s/gpu=nvidia]\n"}


@pytest.mark.parametrize("profile,stack,cloud_rules", [
    ("cloud", "prod", True),      # the profile decides, whatever the stack is called
    ("cloud", "cloud", True),
    ("edge", "edge", False),
    ("laptop", "dev", False),
    ("edge", "cloud", True),      # cloudStacks (default ["cloud"]) still adds stacks by name
])
def test_cloud_rules_follow_the_profile_in_the_stack_config(profile, stack, cloud_rules):
    with serve({"kubeflow-k3s:profile": profile}) as stub:
        found = analyze(stub, "command:remote:Command", INSTALL_UNTAINTED_GPU, stack=stack)
        response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_pb2.AnalyzerResource(
            type="kubernetes:core/v1:Service", name="lb", urn=URN.format(stack=stack, type="kubernetes:core/v1:Service", name="lb"),
            properties=struct({"spec": {"type": "LoadBalancer"}}), options=analyzer_pb2.AnalyzerResourceOptions())]))
    assert bool(found) == cloud_rules and all(f.startswith("gpu-nodes-tainted-on-cloud:") for f in found)
    assert ("tls-on-cloud" in [d.policyName for d in response.diagnostics]) == cloud_rules


def test_the_example_password_in_the_stack_config_is_a_violation():
    with serve({"kubeflow-k3s:profile": "laptop", "kubeflow-k3s:adminPassword": "12341234"}) as stub:
        response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[]))
    assert [d.policyName for d in response.diagnostics] == ["no-example-password-in-config"]


def test_the_profile_also_arrives_through_configure_stack():
    """Newer engines also send the stack's config in the ConfigureStack call."""
    with serve() as stub:
        before = analyze(stub, "command:remote:Command", INSTALL_UNTAINTED_GPU, stack="prod")
        stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(
            stack="prod", project="kubeflow-k3s", config={"kubeflow-k3s:profile": "cloud"}))
        after = analyze(stub, "command:remote:Command", INSTALL_UNTAINTED_GPU, stack="prod")
    assert before == [] and [f.split(":")[0] for f in after] == ["gpu-nodes-tainted-on-cloud"]
