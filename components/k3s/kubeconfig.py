"""Rewrite K3s's admin kubeconfig for use outside the server, structurally (never string replace)."""

from __future__ import annotations

import base64
import binascii
import hashlib

import yaml


def _load(text: str) -> dict:
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        raise ValueError("not a kubeconfig: expected a YAML document with kind: Config")
    return doc


def rewrite_kubeconfig(text: str, server: str, name: str) -> str:
    """Point the single cluster at `server` and rename cluster, user and context to `name`.

    K3s writes /etc/rancher/k3s/k3s.yaml with server https://127.0.0.1:6443 and everything named
    `default`. A text replace of "default" or "127.0.0.1" would also hit certificate data; editing the
    parsed document touches only the fields meant.
    """
    doc = _load(text)
    clusters, users, contexts = doc.get("clusters") or [], doc.get("users") or [], doc.get("contexts") or []
    if len(clusters) != 1 or len(users) != 1 or len(contexts) != 1:
        raise ValueError(
            f"expected K3s's kubeconfig with one cluster, user and context; got "
            f"{len(clusters)}/{len(users)}/{len(contexts)}"
        )
    clusters[0]["name"] = name
    clusters[0]["cluster"]["server"] = server
    users[0]["name"] = name
    contexts[0]["name"] = name
    contexts[0]["context"]["cluster"] = name
    contexts[0]["context"]["user"] = name
    doc["current-context"] = name
    return yaml.safe_dump(doc, sort_keys=False)


def ca_digest(text: str) -> str:
    """sha256 (hex) of the cluster's certificate authority as K3s's kubeconfig carries it.

    The identity of the cluster behind the API: the same for every kubeconfig of one cluster (another
    server's, a renewed client certificate, a rewritten endpoint or name), different once K3s starts a
    new cluster (a new CA). Computed over the decoded `certificate-authority-data` (K3s's server CA
    bundle, PEM); whitespace is ignored so a re-wrapped base64 text gives the same digest.
    """
    clusters = _load(text).get("clusters") or []
    if len(clusters) != 1:
        raise ValueError(f"expected K3s's kubeconfig with one cluster; got {len(clusters)}")
    data = (clusters[0].get("cluster") or {}).get("certificate-authority-data")
    if not isinstance(data, str) or not data.strip():
        raise ValueError("the kubeconfig's cluster has no certificate-authority-data")
    try:
        pem = base64.b64decode("".join(data.split()), validate=True)
    except binascii.Error as err:
        raise ValueError(f"certificate-authority-data is not base64: {err}") from None
    return hashlib.sha256(pem).hexdigest()
