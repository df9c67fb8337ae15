import pytest
import yaml

from components.k3s.kubeconfig import rewrite_kubeconfig
from tests.harness import K3S_KUBECONFIG


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
