"""stacks/settings/kubeflow.py: the `kubeflow` section (components, users, the admin, image overrides) and
the password rule Dex's hashes set."""

from __future__ import annotations

import bcrypt
import pytest

from stacks.settings import admin_profile_name, parse_settings, password_problem
from stacks.settings.kubeflow import KubeflowUser
from tests.harness import stack_raw
from tests.stacks.settings.raw import problems, stack


def with_kubeflow(name: str, **kubeflow) -> dict:
    raw = stack(name)
    raw["kubeflow"] = {**(raw.get("kubeflow") or {}), **kubeflow}
    return raw


def test_kserve_with_knative_explicitly_off_fails_naming_both_switches():
    found = problems(with_kubeflow("dev", components={"kserve": True, "knative": False}))
    assert list(found) == ["kubeflow.components.knative"]
    assert "kserve needs it" in found["kubeflow.components.knative"]
    assert "set knative: true, or kserve: false" in found["kubeflow.components.knative"]


def test_multi_user_pipelines_need_profiles():
    off = {"profiles": False, "centralDashboard": False, "notebooks": False, "volumes": False}
    found = problems(with_kubeflow("dev", components=off))
    assert found["kubeflow.components.profiles"].startswith("is false, but pipelines needs it")
    # standalone (single-user) pipelines do not
    assert parse_settings(with_kubeflow("edge", components={"profiles": False}), "edge")


def test_a_quota_that_is_not_a_kubernetes_quantity_is_refused():
    raw = stack("cloud")
    raw["kubeflow"]["users"][0]["quota"] = {"cpu": "eight", "memory": "32Gi", "gpu": "1"}
    assert problems(raw, "cloud") == {
        "kubeflow.users[0].quota.cpu": "'eight' is not a Kubernetes quantity (e.g. \"8\", \"500m\", \"32Gi\")"}


def test_users_are_one_profile_per_person():
    users = [{"name": "alice", "email": "alice@example.com"}, {"name": "alice", "email": "alice@example.com"},
             {"name": "Bob", "email": "bob"}, {"name": "carol", "email": "carol@example.com", "contributors": ["dave"]}]
    found = problems(with_kubeflow("dev", users=users))
    assert "duplicate user name" in found["kubeflow.users[1].name"]
    assert "duplicate email" in found["kubeflow.users[1].email"]
    assert "namespace name" in found["kubeflow.users[2].name"] and "kubeflow.users[2].email" in found
    assert "kubeflow.users[3].contributors[0]" in found


def test_the_admin_owns_a_profile_named_after_their_address_unless_listed():
    s = parse_settings(with_kubeflow("dev", adminEmail="Ops.Team@example.com"), "dev")
    assert admin_profile_name(s.kubeflow.admin_email, s.kubeflow.users) == "ops-team"
    listed = (KubeflowUser(name="ops", email="Ops.Team@example.com"),)
    assert admin_profile_name("Ops.Team@example.com", listed) == "ops"
    # A user may not take the admin's namespace.
    found = problems(with_kubeflow("dev", adminEmail="alice@example.com",
                                   users=[{"name": "alice", "email": "a2@example.com"}]))
    assert "the admin's Profile" in found["kubeflow.users[0].name"]


@pytest.mark.parametrize("images,key", [
    ({"ghcr.io/kubeflow/kfp-api-server:2.16.0": "registry.local/kfp-api-server:2.16.0"}, "kubeflow.images.ghcr.io/kubeflow/kfp-api-server:2.16.0"),
    ({"ghcr.io/kubeflow/kfp-api-server": "registry.local/KFP:latest"}, "kubeflow.images.ghcr.io/kubeflow/kfp-api-server"),
    ({"ghcr.io/kubeflow/kfp-api-server": ""}, "kubeflow.images.ghcr.io/kubeflow/kfp-api-server"),
])
def test_image_overrides_map_an_upstream_name_to_a_reference(images, key):
    assert key in problems(with_kubeflow("dev", images=images))


def test_a_digest_pinned_override_is_kept_as_written():
    ref = "registry.local:5000/kfp-api-server:2.16.0-arm64@sha256:" + "a" * 64
    s = parse_settings(with_kubeflow("dev", images={"ghcr.io/kubeflow/kfp-api-server": ref}), "dev")
    assert s.kubeflow.images == {"ghcr.io/kubeflow/kfp-api-server": ref}


@pytest.mark.parametrize("length", [1, 8, 71, 72, 73, 100])
def test_a_password_is_refused_exactly_when_bcrypt_cannot_hash_it(length):
    password = "é" * (length // 2) + "a" * (length % 2)  # multi-byte: the limit is in bytes, not characters
    try:
        bcrypt.hashpw(password.encode(), bcrypt.gensalt(4))
        hashable = True
    except ValueError:
        hashable = False
    problem = password_problem("adminPassword", password)
    assert (problem is None) == hashable
    if problem:
        assert problem[0] == "adminPassword" and "bcrypt" in problem[1]


def test_the_checked_in_kubeflow_settings_parse():
    for name in ("dev", "edge", "cloud"):
        assert parse_settings(stack_raw(name), name).kubeflow.mode in ("full", "pipelines", "none")


def test_a_contributor_needs_a_login():
    users = [{"name": "alice", "email": "alice@example.com", "contributors": ["dave@example.com", "bob@example.com"]},
             {"name": "bob", "email": "bob@example.com", "contributors": ["admin@example.com"]}]
    found = problems(with_kubeflow("dev", adminEmail="admin@example.com", users=users))
    assert list(found) == ["kubeflow.users[0].contributors[0]"] and "has no login" in found["kubeflow.users[0].contributors[0]"]
    # The key names the entry as written, after an invalid one.
    users[0]["contributors"] = ["not-an-email", "dave@example.com"]
    found = problems(with_kubeflow("dev", adminEmail="admin@example.com", users=users))
    assert set(found) == {"kubeflow.users[0].contributors[0]", "kubeflow.users[0].contributors[1]"}
    assert "has no login" in found["kubeflow.users[0].contributors[1]"]
    # Users are ignored (with a warning) outside the full platform: nothing to refuse there.
    assert parse_settings(with_kubeflow("edge", users=[users[1], {**users[0], "contributors": ["dave@example.com"]}]), "edge")
    users[0]["contributors"] = ["dave@example.com", "bob@example.com"]
    # With an identity provider, anyone it knows can log in.
    idp = {"type": "github", "clientId": "kubeflow"}
    s = parse_settings(with_kubeflow("dev", adminEmail="admin@example.com", users=users, identityProvider=idp), "dev")
    assert s.kubeflow.users[0].contributors == ("dave@example.com", "bob@example.com")
