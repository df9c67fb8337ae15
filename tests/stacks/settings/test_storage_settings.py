"""stacks/settings/storage.py: the `storage` section."""

from __future__ import annotations

import pytest

from stacks import profiles
from tests.stacks.settings.raw import problems, settings, stack


def test_the_default_class_follows_the_profile_and_longhorn_comes_with_it():
    for name, profile in (("dev", "laptop"), ("edge", "edge"), ("cloud", "cloud")):
        s = settings(name, storage={})
        assert s.storage.default == profiles.PROFILES[profile].storage
        assert (s.storage.longhorn is not None) == (s.storage.default == "longhorn")
    assert settings("dev", storage={"default": "longhorn"}).storage.longhorn.replicas is None  # Longhorn decides


def test_nfs_needs_an_existing_export_with_an_absolute_path():
    assert "{server, path}" in problems(stack("dev", storage={"default": "nfs"}))["storage.nfs"]
    found = problems(stack("dev", storage={"default": "nfs", "nfs": {"server": "bad host", "path": "exports/ml"}}))
    assert "neither an IP address nor a hostname" in found["storage.nfs.server"]
    assert "absolute export path" in found["storage.nfs.path"]
    nfs = settings("dev", storage={"default": "nfs", "nfs": {"server": "192.0.2.5", "path": "/exports/ml"}}).storage.nfs
    assert (nfs.server, nfs.path) == ("192.0.2.5", "/exports/ml")


@pytest.mark.parametrize("storage,key", [({"default": "ceph"}, "storage.default"),
                                         ({"localPath": "data"}, "storage.localPath"),
                                         ({"longhorn": {"replicas": 0}}, "storage.longhorn.replicas"),
                                         ({"longhorn": {"replica": 2}}, "storage.longhorn.replica")])
def test_bad_storage_values_name_their_key(storage, key):
    assert key in problems(stack("dev", storage=storage))
