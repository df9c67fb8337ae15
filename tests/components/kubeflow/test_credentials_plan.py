"""Generated credentials: the Dex hash is stable, checkable and unique; every Secret is fully specified."""

from __future__ import annotations

import bcrypt

from components.kubeflow import credentials_plan as cp


def test_dex_hash_verifies_and_is_the_same_every_run():
    first = cp.dex_password_hash("correct horse", "seed-kept-in-state")
    assert first == cp.dex_password_hash("correct horse", "seed-kept-in-state")
    assert first.startswith("$2b$12$") and len(first) == 60
    assert bcrypt.checkpw(b"correct horse", first.encode())
    assert not bcrypt.checkpw(b"12341234", first.encode())


def test_dex_hash_salt_changes_with_the_seed_and_the_password():
    a = cp.dex_password_hash("pw", "seed-a")
    assert a != cp.dex_password_hash("pw", "seed-b")
    # a new password gets a new salt, not only a new digest
    assert a[:29] != cp.dex_password_hash("other", "seed-a")[:29]


def test_every_secret_value_is_generated_or_a_literal():
    for spec in cp.SECRETS.values():
        for key, src in spec.data.items():
            assert isinstance(src, cp.Literal) or src in cp.GENERATED or src == cp.ADMIN_PASSWORD_HASH, (spec.name, key)


def test_cookie_secret_is_a_valid_aes_key_length():
    assert cp.GENERATED["cookie-secret"] in (16, 24, 32)


def test_dex_and_oauth2_proxy_share_one_client_secret():
    assert cp.SECRETS["oauth2-proxy"].data["client-secret"] == cp.SECRETS["dex-oidc-client"].data["OIDC_CLIENT_SECRET"]
    assert cp.SECRETS["oauth2-proxy"].data["client-id"] == cp.SECRETS["dex-oidc-client"].data["OIDC_CLIENT_ID"]
