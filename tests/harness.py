"""Run the whole `__main__.py` of a stack offline under Pulumi mocks, recording every registration.

`run_stack("cloud")` loads `Pulumi.yaml` and `Pulumi.cloud.yaml` the way the CLI would (project
defaults, then the stack file, with fake values for the secrets a user sets with
`pulumi config set --secret`), runs the program under `pulumi.runtime.set_mocks` with a recording
MockMonitor, and returns a `Run`: every RegisterResource request (type, name, inputs, parent,
dependencies, deletedWith, provider, custom timeouts, secret outputs...), the outputs each component
registered, and the stack's exports.

Mock outputs are realistic per resource type (the kubeconfig read returns a K3s-shaped kubeconfig,
RandomPassword a result) because an output that resolves to None silently drops the dependency
edges that flow through it. `run_stack(..., kubeconfig=f)` answers the kubeconfig read with `f(host)`
(host: the command's SSH host, "local" for a local command), e.g. `k3s_kubeconfig(ca=..., client=...)`
for a re-hosted server that has other client certificates, or a new cluster's CA.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import base64
import runpy
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi
import yaml
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc, settings as psettings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = "kubeflow-k3s"
STACKS = ("dev", "edge", "cloud")
SECRET_SIG = rpc._special_sig_key
SECRET_MARK = rpc._special_secret_sig

# Recognisable fake secrets: tests search every non-secret value for these strings.
FAKE_SECRETS = {
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-SSH-KEY-0123456789\n-----END OPENSSH PRIVATE KEY-----\n",
    "k3sToken": "FAKE-K3S-TOKEN-4b1d9c0e",
    "adminPassword": "FAKE-ADMIN-PASSWORD-77c1",
}
# What the generated secrets resolve to under mocks (RandomPassword etc.).
GENERATED_PREFIX = "MOCK-GENERATED-"

K3S_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0stQ0EtZGVmYXVsdAotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0stQ0xJRU5ULWRlZmF1bHQKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1PQ0stS0VZLWRlZmF1bHQKLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=
"""



def k3s_kubeconfig(ca: str = "default", client: str = "default") -> str:
    """A K3s admin kubeconfig like K3S_KUBECONFIG (which is `k3s_kubeconfig()`), with the CA and the client
    certificate named: another server of the same cluster has the same CA and other client certificates;
    a new cluster has a new CA."""
    def pem(kind: str, body: str) -> str:
        text = f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"
        return base64.b64encode(text.encode()).decode()

    return (K3S_KUBECONFIG
            .replace(pem("CERTIFICATE", "MOCK-CA-default"), pem("CERTIFICATE", f"MOCK-CA-{ca}"))
            .replace(pem("CERTIFICATE", "MOCK-CLIENT-default"), pem("CERTIFICATE", f"MOCK-CLIENT-{client}"))
            .replace(pem("EC PRIVATE KEY", "MOCK-KEY-default"), pem("EC PRIVATE KEY", f"MOCK-KEY-{client}")))


PREFLIGHT_REPORT = "started\tok\t1767225600\nos\tok\tubuntu 24.04\narch\tok\tamd64\nresult\tok\tall checks passed\n"
# What smoke.sh prints on success (its report lines; progress goes to stderr).
SMOKE_REPORT = ("reachedThrough\tdns\nlogin\tok admin@example.com\npipelinesApi\tok\nrun\tcreate\n"
                "pipelineRun\tSUCCEEDED 5f3c\ninstallSeconds\t1843\nchecks\tk3s=v1.34.6+k3s1\n")


def unwrap(value: Any) -> Any:
    """Strip Pulumi's secret wrappers from a deserialized property value."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_MARK:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def script(text: str | None) -> str:
    """The script inside a command text: remote commands are `/bin/sh -c '<script>'`."""
    if not text:
        return ""
    if text.startswith("/bin/sh -c "):
        import shlex

        return shlex.split(text)[2]
    return text


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def strings_outside_secrets(value: Any):
    """Every string in `value` that is not inside a secret wrapper."""
    if is_secret(value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings_outside_secrets(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_outside_secrets(v)
    elif isinstance(value, str):
        yield value


class PlatformMocks(pulumi.runtime.Mocks):
    def __init__(self, kubeconfig: Callable[[str], str] | None = None):
        super().__init__()
        self.kubeconfig = kubeconfig

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ in ("command:remote:Command", "command:local:Command"):
            create = args.inputs.get("create") or ""
            if "kubeflow-k3s: read-kubeconfig.sh" in create:
                host = unwrap(args.inputs.get("connection") or {}).get("host", "local")
                state["stdout"] = self.kubeconfig(host) if self.kubeconfig else K3S_KUBECONFIG
            elif "kubeflow-k3s: preflight.sh" in create:
                state["stdout"] = PREFLIGHT_REPORT
            elif "kubeflow-k3s: smoke.sh" in create:
                state["stdout"] = SMOKE_REPORT
            else:
                state["stdout"] = ""
            state["stderr"] = ""
        elif args.typ.startswith("random:index/random"):
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            length = int(args.inputs.get("length", 32))
            state["result"] = (GENERATED_PREFIX + digest)[:max(length, len(GENERATED_PREFIX) + 8)]
            if args.typ == "random:index/randomPassword:RandomPassword":
                state["bcryptHash"] = "$2a$10$" + digest[:53]
        elif args.typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {"status": "deployed", "name": args.inputs.get("name", args.name)}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    custom: bool
    parent: str
    inputs: dict
    raw_inputs: dict  # with secret wrappers kept
    dependencies: list[str]
    deleted_with: str
    provider: str
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    custom_timeouts: dict
    replace_on_changes: list[str]
    remote: bool


@dataclass
class Run:
    stack: str
    registrations: list[Registration]
    component_outputs: dict[str, dict]
    exports: dict[str, Any]
    secret_exports: dict[str, bool] = field(default_factory=dict)

    def by_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def get(self, name: str, typ: str | None = None) -> Registration:
        found = [r for r in self.registrations if r.name == name and (typ is None or r.type == typ)]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def names(self, typ: str | None = None) -> list[str]:
        return [r.name for r in self.registrations if typ is None or r.type == typ]

    def depends_on(self, a: str, b: str) -> bool:
        """Does resource `a` wait for resource `b` (directly or transitively)? Names are unique here."""
        return self.waits_for(self.get(a), self.get(b))

    def waits_for(self, a: Registration, b: Registration) -> bool:
        """Does registration `a` wait for registration `b`, directly or transitively?"""
        seen: set[str] = set()
        stack = list(a.dependencies)
        while stack:
            urn = stack.pop()
            if urn == b.urn:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            try:
                stack.extend(self.by_urn(urn).dependencies)
            except StopIteration:
                pass
        return False

    def ancestors(self, name: str) -> list[str]:
        out = []
        urn = self.get(name).parent
        while urn:
            try:
                reg = self.by_urn(urn)
            except StopIteration:
                break
            out.append(reg.name)
            urn = reg.parent
        return out


class Recorder(pmocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.requests: list[Registration] = []
        self.outputs: dict[str, dict] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
        self.requests.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                custom=request.custom,
                parent=request.parent,
                inputs=unwrap(raw),
                raw_inputs=raw,
                dependencies=list(request.dependencies),
                deleted_with=request.deletedWith,
                provider=request.provider,
                delete_before_replace=request.deleteBeforeReplace,
                additional_secret_outputs=list(request.additionalSecretOutputs),
                custom_timeouts={
                    "create": request.customTimeouts.create,
                    "update": request.customTimeouts.update,
                    "delete": request.customTimeouts.delete,
                },
                replace_on_changes=list(request.replaceOnChanges),
                remote=request.remote,
            )
        )
        return response

    def RegisterResourceOutputs(self, request):
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)


def stack_raw(stack: str) -> dict[str, Any]:
    """Pulumi.<stack>.yaml's config as parse_settings takes it: keys without the project namespace."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in doc.items()}


def load_config(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
                drop: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """Pulumi.yaml defaults + Pulumi.<stack>.yaml + fake secrets, as the engine passes config."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict) and "default" in spec:
            values[full] = spec["default"]
        elif isinstance(spec, dict) and "value" in spec:
            values[full] = spec["value"]
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    values.update(stack_file.get("config") or {})
    for key, value in (overrides or {}).items():
        values[f"{PROJECT}:{key}"] = value
    for key in drop:
        values.pop(f"{PROJECT}:{key}", None)
    if secrets is None:
        secrets = {"sshPrivateKey": FAKE_SECRETS["sshPrivateKey"]} if stack != "dev" else {}
    secret_keys = []
    for key, value in secrets.items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return encoded, secret_keys


_HERMETIC_ENV = ("KUBECONFIG", "SSH_AUTH_SOCK")


def run_stack(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None,
              drop: tuple[str, ...] = (), kubeconfig: Callable[[str], str] | None = None,
              stack_name: str | None = None) -> Run:
    """Evaluate __main__.py for `stack` under mocks. Raises whatever the program raises.
    `kubeconfig(host)`: what the kubeconfig read prints on that host (default K3S_KUBECONFIG).
    `stack_name`: the Pulumi stack's name when not `stack` (the program writes Kubeflow overlays under
    .build/kubeflow/<stack name>/, so a variant with its own name cannot race the checked-in stack's files)."""
    for key in list(os.environ):
        if key in _HERMETIC_ENV or key.startswith("PULUMI_K8S_"):
            del os.environ[key]
    config, secret_keys = load_config(stack, overrides, secrets, drop)
    psettings.ROOT.set(None)
    mocks = PlatformMocks(kubeconfig)
    recorder = Recorder(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack_name or stack, preview=False, monitor=recorder)
    pulumi.runtime.set_all_config(config, secret_keys)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    except Exception as err:
        err.recorded = recorder.requests  # what was registered before the failure
        raise
    finally:
        os.chdir(cwd)
    # Under mocks the root Stack registers its outputs before the program runs, so read the exports
    # from the root resource and resolve them (value and secretness) here.
    exports, secret_exports = {}, {}
    for key, value in psettings.get_root_resource().outputs.items():
        output = pulumi.Output.from_input(value)
        exports[key] = _sync_await(output.future())
        secret_exports[key] = _sync_await(output.is_secret())
    return Run(
        stack=stack,
        registrations=recorder.requests,
        component_outputs=recorder.outputs,
        exports=exports,
        secret_exports=secret_exports,
    )
