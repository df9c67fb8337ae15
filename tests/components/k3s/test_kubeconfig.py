import pytest
import yaml

from components.k3s.kubeconfig import ca_digest, rewrite_kubeconfig
from tests.harness import K3S_KUBECONFIG, k3s_kubeconfig


def test_rewrites_server_and_names_structurally():
    out = yaml.safe_load(rewrite_kubeconfig(K3S_KUBECONFIG, "https://k8s.example.com:6443", "kubeflow-k3s-cloud"))
    assert out["clusters"][0]["cluster"]["server"] == "https://k8s.example.com:6443"
    assert out["clusters"][0]["name"] == out["users"][0]["name"] == out["contexts"][0]["name"] == "kubeflow-k3s-cloud"
    assert out["contexts"][0]["context"] == {"cluster": "kubeflow-k3s-cloud", "user": "kubeflow-k3s-cloud"}
    assert out["current-context"] == "kubeflow-k3s-cloud"


def test_certificate_data_is_untouched_even_when_it_contains_default():
    # base64 of text containing "default": a string replace would corrupt it.
    src = yaml.safe_load(K3S_KUBECONFIG)
    src["users"][0]["user"]["client-key-data"] = "ZGVmYXVsdDEyNy4wLjAuMWRlZmF1bHQ="
    out = yaml.safe_load(rewrite_kubeconfig(yaml.safe_dump(src), "https://10.0.0.1:6443", "x"))
    assert out["users"][0]["user"]["client-key-data"] == "ZGVmYXVsdDEyNy4wLjAuMWRlZmF1bHQ="
    assert out["clusters"][0]["cluster"]["certificate-authority-data"] == src["clusters"][0]["cluster"]["certificate-authority-data"]


@pytest.mark.parametrize("text", ["", "just text", "kind: Pod\n", yaml.safe_dump({"kind": "Config", "clusters": []})])
def test_rejects_what_is_not_k3s_kubeconfig(text):
    with pytest.raises(ValueError):
        rewrite_kubeconfig(text, "https://x:6443", "n")


# The cluster identity: the digest of the CA, whatever else the kubeconfig carries.

def test_the_same_ca_gives_the_same_digest_whatever_the_client_certificate():
    # Another server of the same cluster (an HA re-host), or a renewed client certificate.
    assert ca_digest(k3s_kubeconfig(client="server-2")) == ca_digest(K3S_KUBECONFIG)
    assert k3s_kubeconfig(client="server-2") != K3S_KUBECONFIG


def test_a_new_ca_gives_a_new_digest():
    # K3s started a new cluster (a single server replaced): a new CA.
    assert ca_digest(k3s_kubeconfig(ca="new-cluster")) != ca_digest(K3S_KUBECONFIG)


def test_the_digest_ignores_the_rewrite_and_the_base64_wrapping():
    rewritten = rewrite_kubeconfig(K3S_KUBECONFIG, "https://k8s.example.com:6443", "kubeflow-k3s-cloud")
    assert ca_digest(rewritten) == ca_digest(K3S_KUBECONFIG)
    doc = yaml.safe_load(K3S_KUBECONFIG)
    data = doc["clusters"][0]["cluster"]["certificate-authority-data"]
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = "\n".join(data[i:i + 16] for i in range(0, len(data), 16))
    assert ca_digest(yaml.safe_dump(doc)) == ca_digest(K3S_KUBECONFIG)


def test_the_digest_is_sha256_of_the_ca_bundle():
    import base64
    import hashlib

    data = yaml.safe_load(K3S_KUBECONFIG)["clusters"][0]["cluster"]["certificate-authority-data"]
    assert ca_digest(K3S_KUBECONFIG) == hashlib.sha256(base64.b64decode(data)).hexdigest()


@pytest.mark.parametrize("ca", [None, "", "not base64!"])
def test_a_kubeconfig_without_a_usable_ca_is_rejected(ca):
    doc = yaml.safe_load(K3S_KUBECONFIG)
    if ca is None:
        del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    else:
        doc["clusters"][0]["cluster"]["certificate-authority-data"] = ca
    with pytest.raises(ValueError):
        ca_digest(yaml.safe_dump(doc))
