"""What every layer's settings use: the error type, the reader that records problems under their config
key, and value checks (addresses, host names, e-mails, quantities) that are not one layer's business."""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any, Mapping

from pulumi.errors import RunError

NS = "kubeflow-k3s"
# CPU architectures a node may have (`nodes[i].arch`); the GPU kinds narrow them (gpu.GPU_ARCHES).
ARCHES = ("amd64", "arm64")

# A DNS label (RFC 1123): node names and namespace (Profile) names.
NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
HOST_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+=*( .*)?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")


class ConfigError(RunError, ValueError):
    """Invalid stack config. `problems` lists every (key, message) pair found.

    A RunError, so `pulumi preview` prints the message alone ("error: invalid stack configuration: ...")
    instead of a Python traceback."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        # A key with its own namespace (a misspelled `kubeflow_k3s:gpu`) is printed as it is.
        lines = [f"  {key if ':' in key else f'{NS}:{key}'}: {msg}" for key, msg in problems]
        super().__init__("invalid stack configuration:\n" + "\n".join(lines))


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def did_you_mean(word: str, choices) -> str:
    """' (did you mean X?)' for the closest of `choices`, '' when none is close (difflib's ratio >= 0.6)."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1)
    if not close:
        # A different case or separator (`apiendpoint`, `api_endpoint`) is no typo difflib always sees.
        squash = re.sub(r"[-_.]", "", str(word)).lower()
        close = [c for c in sorted(choices) if re.sub(r"[-_.]", "", c).lower() == squash][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
        return True
    except ValueError:
        return False


def is_hostname(value: str) -> bool:
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    # An all-numeric dotted name (999.1.1.1) is a mistyped IP address, not a hostname.
    if all(label.isdigit() for label in labels):
        return False
    return all(HOSTNAME_LABEL_RE.match(label) for label in labels)


MISSING = object()


class Reader:
    """Reads typed values out of nested dicts, recording problems under their config key path."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        self.notices: list[str] = []  # warnings found while parsing (Settings.warnings())

    def fail(self, key: str, msg: str) -> None:
        self.problems.append((key, msg))

    def warn(self, key: str, msg: str) -> None:
        line = f"{NS}:{key} {msg}"
        if line not in self.notices:
            self.notices.append(line)

    def obj(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"must be an object, got {type(value).__name__}")
            return {}
        for k in value:
            if k not in allowed:
                self.fail(
                    f"{key}.{k}" if key else k,
                    f"unknown setting{did_you_mean(k, allowed)}; allowed: {', '.join(sorted(allowed))}",
                )
        return dict(value)

    def quantity(self, d: Mapping[str, Any], k: str, key: str) -> str | None:
        """A Kubernetes quantity; a number (what `pulumi config set --path` stores for `8`) is one too."""
        value = d.get(k)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str) or not QUANTITY_RE.match(value.strip()):
            self.fail(key, f"{value!r} is not a Kubernetes quantity (e.g. \"8\", \"500m\", \"32Gi\")")
            return None
        return value.strip()

    def string(self, d: Mapping[str, Any], k: str, key: str, default: Any = MISSING) -> Any:
        value = d.get(k, MISSING)
        if value is MISSING or value is None:
            if default is MISSING:
                self.fail(key, "is required")
                return None
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {value!r}")
            return default if default is not MISSING else None
        return value.strip()

    def choice(self, d: Mapping[str, Any], k: str, key: str, allowed: tuple[str, ...], default: Any = MISSING) -> Any:
        value = self.string(d, k, key, default)
        if value is not None and value not in allowed:
            self.fail(key, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
            return default if default is not MISSING else None
        return value

    def integer(self, d: Mapping[str, Any], k: str, key: str, default: int, lo: int, hi: int) -> int:
        value = d.get(k, None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.fail(key, f"must be a whole number from {lo} to {hi}, got {value!r}")
            return default
        try:
            number = int(value)
        except ValueError:
            self.fail(key, f"must be a whole number from {lo} to {hi}, got {value!r}")
            return default
        if not lo <= number <= hi:
            self.fail(key, f"must be from {lo} to {hi}, got {number}")
            return default
        return number

    def boolean(self, d: Mapping[str, Any], k: str, key: str, default: bool) -> bool:
        value = d.get(k, None)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"must be true or false, got {value!r}")
        return default

    def host(self, d: Mapping[str, Any], k: str, key: str, default: Any = MISSING) -> Any:
        provided = d.get(k) is not None
        value = self.string(d, k, key, default)
        if provided and value is not None and not (is_ip(value) or is_hostname(value)):
            self.fail(key, f"{value!r} is neither an IP address nor a hostname")
            return None
        return value

    def host_key(self, d: Mapping[str, Any], k: str, key: str) -> str | None:
        value = self.string(d, k, key, None)
        if value is not None and not HOST_KEY_RE.match(value):
            self.fail(
                key,
                "must be one public host key line as printed by `ssh-keyscan -t ed25519 <host>` "
                "without the host name, e.g. 'ssh-ed25519 AAAAC3...'",
            )
            return None
        if value is not None and "replacewith" in value.lower():
            # The example stack files ship such placeholders: no real host has them, so SSH would fail.
            self.warn(key, "is a placeholder from the example stack file, not the host's key: "
                           "replace it with `ssh-keyscan -t ed25519 <host> | cut -d' ' -f2-`")
        return value

    def string_map(self, d: Mapping[str, Any], k: str, key: str) -> dict[str, str]:
        value = d.get(k, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            self.fail(key, "must be an object of string values")
            return {}
        return {str(a): str(b).lower() if isinstance(b, bool) else str(b) for a, b in value.items()}


def listed(value: Any) -> list[Any]:
    """A K3s list value as K3s reads it: a YAML list, or one comma-separated string."""
    if isinstance(value, list):
        return value
    return [p.strip() for p in value.split(",")] if isinstance(value, str) else [value]
