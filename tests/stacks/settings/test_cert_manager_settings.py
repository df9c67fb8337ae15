"""stacks/settings/cert_manager.py: the `tls` section."""

from __future__ import annotations

import pytest

from stacks import profiles
from tests.stacks.settings.raw import edge, problems, settings, stack


def test_the_host_defaults_to_kubeflow_under_the_api_host_name():
    assert settings("dev").tls.host == "kubeflow.localhost"  # the API is 127.0.0.1
    named = edge(k3s={"apiEndpoint": "k8s.example.com"})
    from stacks.settings import parse_settings

    assert parse_settings(named, "edge").tls.host == "kubeflow.k8s.example.com"
    assert parse_settings(edge(), "edge").tls.host == "kubeflow.localhost"  # an IP address gives no name


def test_the_issuer_follows_the_profile():
    for name, profile in (("dev", "laptop"), ("edge", "edge"), ("cloud", "cloud")):
        assert settings(name).tls.issuer == profiles.PROFILES[profile].issuer


@pytest.mark.parametrize("issuer", ["letsencrypt", "letsencrypt-staging"])
def test_letsencrypt_needs_a_contact_and_a_public_name(issuer):
    found = problems(stack("dev", tls={"issuer": issuer}))
    assert f"is required with tls.issuer: {issuer} (ACME account contact)" in found["tls.email"]
    assert "public DNS name" in found["tls.host"]  # kubeflow.localhost
    found = problems(stack("dev", tls={"issuer": issuer, "host": "192.0.2.8", "email": "ops@example.com"}))
    assert list(found) == ["tls.host"]
    ok = settings("dev", tls={"issuer": issuer, "host": "kubeflow.example.com", "email": "ops@example.com"})
    assert (ok.tls.issuer, ok.tls.email) == (issuer, "ops@example.com")


@pytest.mark.parametrize("tls,key", [({"issuer": "vault"}, "tls.issuer"), ({"email": "ops"}, "tls.email"),
                                     ({"host": "bad host"}, "tls.host"), ({"hosts": ["a.example.com"]}, "tls.hosts")])
def test_bad_tls_values_name_their_key(tls, key):
    assert key in problems(stack("dev", tls=tls))
