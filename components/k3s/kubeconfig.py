"""Rewrite K3s's admin kubeconfig for use outside the server, structurally (never string replace)."""

from __future__ import annotations

import yaml


def rewrite_kubeconfig(text: str, server: str, name: str) -> str:
    """Point the single cluster at `server` and rename cluster, user and context to `name`.

    K3s writes /etc/rancher/k3s/k3s.yaml with server https://127.0.0.1:6443 and everything named
    `default`. A text replace of "default" or "127.0.0.1" would also hit certificate data; editing the
    parsed document touches only the fields meant.
    """
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        raise ValueError("not a kubeconfig: expected a YAML document with kind: Config")
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
