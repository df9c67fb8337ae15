"""The policy pack's rules as plain functions: data in, a list of violation messages out.

No Pulumi engine is needed to call them, so they are unit-tested offline (tests/policy/) with passing and
violating inputs, and also run over every resource of every stack evaluated under the test mocks.
`__main__.py` only adapts the engine's arguments to these functions.

`props` are a resource's inputs as the engine hands them to an analyzer: secret values arrive unwrapped,
so no rule here can rely on secretness of a property; the secret rule instead looks at the properties
that are never secret (command text, ConfigMap data) and at the resource's `additionalSecretOutputs`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

import yaml

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
# Manifest sources: the resource type and the properties that name where the manifests come from.
MANIFEST_SOURCES = {
    "kubernetes:kustomize/v2:Directory": ("directory",),
    "kubernetes:kustomize:Directory": ("directory",),
    "kubernetes:yaml/v2:ConfigGroup": ("files",),
    "kubernetes:yaml/v2:ConfigFile": ("file",),
    "kubernetes:yaml:ConfigGroup": ("files",),
    "kubernetes:yaml:ConfigFile": ("file",),
}
COMMAND_TYPES = ("command:remote:Command", "command:local:Command")

# 26.03, v1.19.4, 2.16.0, v1.34.6+k3s1, 1.0.0-rc.1 (a suffix only after three numbers: v1.11-branch is a branch).
EXACT_VERSION = re.compile(r"^v?\d+\.\d+(\.\d+(\.\d+)?([-+][0-9A-Za-z.+-]+)?)?$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
FLOATING_REFS = {"main", "master", "head", "latest", "stable", "develop", "dev", "trunk", "nightly", "edge"}
ARCHIVE_SUFFIX = re.compile(r"\.(tar\.gz|tgz|zip|tar|ya?ml)$")

# Kubeflow's example credentials (kubeflow/manifests 26.03: common/dex/base/dex-passwords.yaml,
# common/dex/base/config-map.yaml, common/oauth2-proxy/base/params.env, common/user-namespace/base).
DEFAULT_USER = "user@example.com"
DEFAULT_PASSWORD = "12341234"
DEFAULT_PASSWORD_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
DEFAULT_OIDC_CLIENT_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
DEFAULT_PROFILE = "kubeflow-user-example-com"
DEFAULT_MANIFEST_DIRS = ("common/user-namespace/base", "example")

SECRET_PATTERNS = {
    "a private key": re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
    "a kubeconfig client key": re.compile(r"client-key-data:\s*[A-Za-z0-9+/=]{8,}"),
    "a K3s join token": re.compile(r"\bK10[0-9a-f]{32,}::"),
    "a token in a config file": re.compile(r"(?m)^\s*(token|agent-token)\s*:\s*['\"]?[^\s'\"#]+"),
    "a bcrypt password hash": re.compile(r"\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}"),
}
# Files whose content is a credential: a command that prints one must keep its output secret.
SECRET_FILES = ("/etc/rancher/k3s/k3s.yaml", "/var/lib/rancher/k3s/server/token", "/var/lib/rancher/k3s/server/node-token")
GPU_LABELS = ("kubeflow-k3s/gpu", "nvidia.com/gpu.present")
GPU_TAINT_KEY = "nvidia.com/gpu"
SECRET_SIGS = {"4dabf18193072939515e22adb298388d"}  # Pulumi's special signature key
# Values not known during a preview (pulumi_policy/proxy.py): treated as absent, so a rule checks what is
# known instead of failing the whole policy with "can't be known during preview".
UNKNOWN_SENTINELS = {
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
}


class Resource(NamedTuple):
    """What a stack rule needs of a resource (built from the engine's PolicyResource or a test)."""

    type: str
    name: str
    props: Mapping[str, Any]


# Helpers -------------------------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """Plain data from what the engine or a test hands a rule: secret wrappers ({sig: secret, value: ...},
    pulumi_policy.Secret) unwrapped, pulumi_policy's unknown-checking proxies opened, unknowns -> None."""
    if type(value).__name__ in ("_DictProxy", "_ListProxy"):
        value = value["__target"]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return None
    if hasattr(value, "value") and type(value).__name__ == "Secret":
        return plain(value.value)
    if isinstance(value, Mapping):
        if any(k in SECRET_SIGS for k in value) and "value" in value:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def pairs(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, leaf value) for every leaf of a nested structure (list items keep their parent's key)."""
    value = plain(value)
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from pairs(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from pairs(v, key)
    else:
        yield key, value


def strings(value: Any) -> Iterator[str]:
    value = plain(value)
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def is_exact_version(version: Any) -> bool:
    return (
        isinstance(version, str)
        and bool(EXACT_VERSION.match(version))
        and not any(word in version.lower() for word in ("branch", "latest", "snapshot"))
    )


def is_exact_ref(ref: str) -> bool:
    return is_exact_version(ref) or bool(COMMIT_SHA.match(ref))


def is_remote(source: str) -> bool:
    return bool(re.match(r"^([a-z][a-z0-9+.-]*://|git@|github\.com/|git::)", source))


def source_pin_problem(source: str) -> str | None:
    """None when `source` is pinned: a local path (versioned with its checkout) or a URL with an exact
    version tag or commit (`?ref=26.03`, `.../v1.19.4/...`, `.../refs/tags/2.16.0.tar.gz`)."""
    if not isinstance(source, str) or not source:
        return "has no source"
    if not is_remote(source):
        return None
    url, _, query = source.partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    for key in ("ref", "version", "tag"):
        if key in params:
            return None if is_exact_ref(params[key]) else f"{source!r} uses ref {params[key]!r}, not an exact tag or commit"
    segments = [ARCHIVE_SUFFIX.sub("", s) for s in re.split(r"/+", url.split("://", 1)[-1])]
    floating = [s for s in segments if s.lower() in FLOATING_REFS]
    if floating:
        return f"{source!r} follows the moving ref {floating[0]!r}"
    if any(is_exact_ref(s) or re.search(r"-v?\d+\.\d+\.\d+$", s) for s in segments[1:]):
        return None
    return f"{source!r} names no exact version tag or commit (add ?ref=<tag>)"


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_sources(directory: str, base_dir: str | None, depth: int = 0) -> list[str]:
    """Remote sources a local kustomization pulls in (resources, components, bases; local directories
    followed up to 5 levels). Empty when the directory is not there to read."""
    import os

    root = directory if os.path.isabs(directory) or base_dir is None else os.path.join(base_dir, directory)
    found: list[str] = []
    for name in KUSTOMIZATION_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError):
                return found
            for key in ("resources", "components", "bases"):
                for entry in data.get(key) or []:
                    entry = str(entry)
                    if is_remote(entry):
                        found.append(entry)
                    elif depth < 5 and os.path.isdir(os.path.join(root, entry)):
                        found += kustomization_sources(os.path.join(root, entry), None, depth + 1)
            break
    return found


# 1. Pinned sources -----------------------------------------------------------------------------------

def pinned_source_violations(resource_type: str, props: Mapping[str, Any], base_dir: str | None = None) -> list[str]:
    """Every Helm release has an exact chart version; every manifest source an exact tag or commit,
    including the remote sources of a local kustomization (read from `base_dir`, the program's directory)."""
    props = plain(props) or {}
    problems = []
    if resource_type in HELM_TYPES:
        chart, version = props.get("chart"), props.get("version")
        if props.get("devel"):
            problems.append(f"Helm chart {chart!r} allows development versions (devel: true)")
        if version in (None, ""):
            if not (isinstance(chart, str) and re.search(r"-v?\d+\.\d+\.\d+\.tgz$", chart)):
                problems.append(f"Helm chart {chart!r} has no version: it would install whatever is newest")
        elif not is_exact_version(str(version)):
            problems.append(f"Helm chart {chart!r} version {version!r} is not an exact version (no ranges or tags like latest)")
    for key in MANIFEST_SOURCES.get(resource_type, ()):
        value = props.get(key)
        for source in (value if isinstance(value, list) else [value]):
            if source is None and key == "files":
                continue
            problem = source_pin_problem(source)
            if problem:
                problems.append(f"manifest source {key}: {problem}")
            elif "kustomize" in resource_type and isinstance(source, str) and not is_remote(source):
                for inner in kustomization_sources(source, base_dir):
                    problem = source_pin_problem(inner)
                    if problem:
                        problems.append(f"manifest source {source}/kustomization.yaml: {problem}")
    return problems


# 2. Exposure on cloud --------------------------------------------------------------------------------

def _istio_gateway_problems(name: str, spec: Mapping[str, Any]) -> tuple[list[str], bool]:
    problems, has_tls = [], False
    for i, server in enumerate(spec.get("servers") or []):
        protocol = str((server.get("port") or {}).get("protocol", "")).upper()
        tls = server.get("tls") or {}
        if protocol in ("HTTPS", "TLS"):
            if tls.get("mode", "SIMPLE").upper() == "PASSTHROUGH" or tls.get("credentialName") or tls.get("mode", "").upper() == "ISTIO_MUTUAL":
                has_tls = True
            else:
                problems.append(f"gateway {name} server {i} ({protocol}) has no certificate (tls.credentialName)")
        elif protocol in ("HTTP", "HTTP2", "GRPC", "TCP", ""):
            if not tls.get("httpsRedirect"):
                problems.append(f"gateway {name} server {i} serves plain {protocol or 'traffic'} (set tls.httpsRedirect or use HTTPS)")
    return problems, has_tls


def _gateway_api_problems(name: str, spec: Mapping[str, Any]) -> tuple[list[str], bool]:
    problems, has_tls = [], False
    for listener in spec.get("listeners") or []:
        protocol = str(listener.get("protocol", "")).upper()
        if protocol in ("HTTPS", "TLS"):
            tls = listener.get("tls") or {}
            if tls.get("certificateRefs") or str(tls.get("mode", "")).lower() == "passthrough":
                has_tls = True
            else:
                problems.append(f"gateway {name} listener {listener.get('name')} ({protocol}) has no certificateRefs")
        else:
            problems.append(f"gateway {name} listener {listener.get('name')} serves plain {protocol}")
    return problems, has_tls


def gateway_tls(resource_type: str, name: str, props: Mapping[str, Any]) -> tuple[list[str], bool] | None:
    """(problems, terminates TLS) for a gateway resource, None for anything else."""
    props = plain(props) or {}
    spec = props.get("spec") or {}
    if re.match(r"^kubernetes:networking\.istio\.io/v\w+:Gateway$", resource_type):
        return _istio_gateway_problems(name, spec)
    if re.match(r"^kubernetes:gateway\.networking\.k8s\.io/v\w+:Gateway$", resource_type):
        return _gateway_api_problems(name, spec)
    return None


def _service_type(resource_type: str, props: Mapping[str, Any]) -> str | None:
    if resource_type == "kubernetes:core/v1:Service":
        return (props.get("spec") or {}).get("type", "ClusterIP")
    if resource_type in HELM_TYPES and str(props.get("chart", "")).rsplit("/", 1)[-1] == "gateway":
        service = (props.get("values") or {}).get("service") or {}
        return service.get("type", "LoadBalancer")  # the istio/gateway chart's default
    return None


def _workload_labels(resource_type: str, name: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod labels a Service selects, or that the istio/gateway chart gives its gateway pods."""
    if resource_type == "kubernetes:core/v1:Service":
        return (props.get("spec") or {}).get("selector") or {}
    values = props.get("values") or {}
    release = str(values.get("name") or props.get("name") or name)
    return values.get("labels") or {"app": release, "istio": release.removeprefix("istio-")}


def load_balancer(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A Service of type LoadBalancer, or the Istio gateway chart with its (default) LoadBalancer Service."""
    return _service_type(resource_type, plain(props) or {}) == "LoadBalancer"


def exposure_violations(resources: Sequence[Resource], cloud: bool) -> list[str]:
    """On cloud: every gateway reachable from outside the cluster (selected by a LoadBalancer or NodePort
    Service, or not matched by any Service in the stack) terminates TLS and redirects HTTP to HTTPS, and a
    LoadBalancer exists only when such a TLS gateway does. Cluster-internal gateways (ClusterIP) are free."""
    if not cloud:
        return []
    exposed, internal = [], []
    for r in resources:
        props = plain(r.props) or {}
        kind = _service_type(r.type, props)
        if kind is not None:
            (exposed if kind in ("LoadBalancer", "NodePort") else internal).append(_workload_labels(r.type, r.name, props))

    def matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    problems, tls_gateway = [], False
    for r in resources:
        found = gateway_tls(r.type, r.name, r.props)
        if found is None:
            continue
        selector = ((plain(r.props) or {}).get("spec") or {}).get("selector") or {}
        if any(matches(selector, labels) for labels in internal) and not any(matches(selector, l) for l in exposed):
            continue  # a cluster-local gateway
        problems += found[0]
        tls_gateway = tls_gateway or (found[1] and not found[0])
    for r in resources:
        if load_balancer(r.type, r.props) and not tls_gateway:
            problems.append(f"{r.name} ({r.type}) exposes a LoadBalancer but no gateway in the stack terminates TLS")
    return problems


# 3. Secrets only in secret outputs ----------------------------------------------------------------------

def secret_violations(resource_type: str, props: Mapping[str, Any], additional_secret_outputs: Iterable[str] = ()) -> list[str]:
    """Credentials never sit in properties that are shown and stored in clear, and a command that prints
    a credential keeps its output secret (logging off, stdout/stderr in additionalSecretOutputs)."""
    props = plain(props) or {}
    secret_outputs = set(additional_secret_outputs or ())
    problems = []
    if resource_type in COMMAND_TYPES:
        for key in ("create", "update", "delete", "triggers", "environment", "dir"):
            for text in strings(props.get(key)):
                for what, pattern in SECRET_PATTERNS.items():
                    if pattern.search(text):
                        problems.append(f"command {key} contains {what}: pass it on stdin as a secret")
        texts = " ".join(strings([props.get("create"), props.get("update")]))
        reads_secret = any(f in texts for f in SECRET_FILES)
        if reads_secret or str(props.get("logging", "")).lower() == "none":
            missing = {"stdout", "stderr"} - secret_outputs
            if missing:
                problems.append(f"command prints a credential but {sorted(missing)} are not additionalSecretOutputs")
            if reads_secret and str(props.get("logging", "")).lower() != "none":
                problems.append("command reads a credential file with logging on: its output reaches the logs")
    elif resource_type.startswith("kubernetes:") and not resource_type.endswith("v1:Secret") and resource_type not in HELM_TYPES:
        # ConfigMaps and every other object are stored and diffed in clear. (Helm values are skipped: the
        # engine unwraps secret values before policies see them, so a secret value there looks plain.)
        # (The `token:` line pattern is for K3s config text in commands; in upstream objects it would
        # flag harmless keys.)
        for text in strings({k: v for k, v in props.items() if k != "metadata"}):
            for what, pattern in SECRET_PATTERNS.items():
                if what != "a token in a config file" and pattern.search(text):
                    problems.append(f"{resource_type} holds {what} in clear: use a Secret")
    return sorted(set(problems))


# 4. GPU nodes tainted on cloud ---------------------------------------------------------------------------

def node_config_of(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A K3s node's config.yaml, from an install command's stdin (None when not an install or unknown)."""
    props = plain(props) or {}
    if resource_type not in COMMAND_TYPES or "# kubeflow-k3s: install.sh" not in " ".join(strings(props.get("create"))):
        return None
    stdin = props.get("stdin")
    if not isinstance(stdin, str):
        return None
    try:
        config = yaml.safe_load(stdin)
    except yaml.YAMLError:
        return None
    return config if isinstance(config, Mapping) else None


def gpu_taint_violations(resource_type: str, props: Mapping[str, Any], cloud: bool) -> list[str]:
    """On cloud, a node labelled as a GPU node carries a NoSchedule (or NoExecute) nvidia.com/gpu taint,
    so only pods that tolerate it (that asked for a GPU) land there."""
    if not cloud:
        return []
    config = node_config_of(resource_type, props)
    if config is None:
        return []
    labels = [str(x) for x in config.get("node-label") or []]
    if not any(label.split("=", 1)[0] in GPU_LABELS for label in labels):
        return []
    taints = [str(x) for x in config.get("node-taint") or []]
    ok = any(t.split("=", 1)[0].split(":", 1)[0] == GPU_TAINT_KEY and t.rsplit(":", 1)[-1] in ("NoSchedule", "NoExecute") for t in taints)
    name = config.get("node-name", "a GPU node")
    return [] if ok else [f"GPU node {name} has no {GPU_TAINT_KEY}:NoSchedule taint (has {taints or 'none'})"]


# 5. No Kubeflow default credentials -----------------------------------------------------------------------

def default_credential_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Kubeflow's example user, password, hash, OIDC client secret and default profile are never deployed."""
    props = plain(props) or {}
    problems = set()
    for text in strings(props):
        if DEFAULT_PASSWORD_HASH in text or (
            re.search(rf"(^|[^0-9]){DEFAULT_PASSWORD}([^0-9]|$)", text) and "password" in text.lower()
        ):
            problems.add("Kubeflow's example password (12341234)")
        if DEFAULT_OIDC_CLIENT_SECRET in text:
            problems.add("Kubeflow's example OIDC client secret")
        if DEFAULT_USER in text:
            problems.add(f"Kubeflow's example user {DEFAULT_USER}")
        if DEFAULT_PROFILE in text:
            problems.add(f"Kubeflow's example profile {DEFAULT_PROFILE}")
    for key, value in pairs(props):
        # By value, wherever it is: a Secret's data, Helm values, a command's stdin.
        if str(value).strip() == DEFAULT_PASSWORD:
            problems.add("Kubeflow's example password (12341234)")
    for text in strings(props):
        for found in BCRYPT_HASH.findall(text):
            if hashes_default_password(found):
                problems.add("a bcrypt hash of Kubeflow's example password (12341234)")
    for key in MANIFEST_SOURCES.get(resource_type, ()):
        value = props.get(key)
        for source in value if isinstance(value, list) else [value]:
            path = str(source or "").split("?", 1)[0].rstrip("/")
            if any(path == d or path.endswith("/" + d) for d in DEFAULT_MANIFEST_DIRS):
                problems.add(f"{path} installs the example user's profile ({DEFAULT_PROFILE})")
    return [f"{resource_type} deploys {p}" for p in sorted(problems)]


BCRYPT_HASH = re.compile(r"\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}")


def hashes_default_password(hashed: str) -> bool:
    """True when a bcrypt hash is one of 12341234 (any salt): the pack sees only the hash of a Dex password.
    False when the bcrypt module is not installed in the pack's environment."""
    try:
        import bcrypt
    except ImportError:  # pragma: no cover - policy/requirements.txt installs it
        return False
    try:
        return bcrypt.checkpw(DEFAULT_PASSWORD.encode(), hashed.encode())
    except ValueError:
        return False


def config_violations(config: Mapping[str, Any], namespace: str = "kubeflow-k3s") -> list[str]:
    """The stack's own config (what the engine passes the pack): no example password as adminPassword."""
    if str(config.get(f"{namespace}:adminPassword", "")).strip() == DEFAULT_PASSWORD:
        return [f"{namespace}:adminPassword is Kubeflow's example password (12341234)"]
    return []


# Stack helpers -----------------------------------------------------------------------------------------------

def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::... -> <stack>."""
    parts = urn.split("::", 1)[0].split(":")
    return parts[2] if len(parts) > 2 else ""


def is_cloud(urn: str, cloud_stacks: Iterable[str] = ("cloud",), profile: str | None = None) -> bool:
    """The cloud rules apply to every stack whose config says `profile: cloud` (whatever its name: `prod`,
    `cloud-eu`), and also to the stacks named in the pack's `cloudStacks` config."""
    return profile == "cloud" or stack_of(urn) in set(cloud_stacks)
