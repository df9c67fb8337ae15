"""pytest fixtures of the SSH test bed (tests/sshbed/__init__.py). Use them from any test module:

    from tests.sshbed.fixtures import ssh_bed, bed  # noqa: F401  (pytest finds fixtures by name)

- `ssh_bed` (session): the shared parts (login user, keys); skips with the reason when the machine
  cannot run sshd or unshare.
- `bed` (per test): the same bed with a clean simulated cluster; every host a test creates with
  `bed.host(name, address)` is stopped (by PID) when the test ends.
"""

from __future__ import annotations

import shutil
import tempfile
import pathlib

import pytest

from tests.conftest import UPSTREAM
from tests.sshbed import SshBed, unavailable_reason

INSTALL_SH = UPSTREAM / "k3s" / "install.sh"


@pytest.fixture(scope="session")
def ssh_bed():
    reason = unavailable_reason(INSTALL_SH)
    if reason:
        pytest.skip(f"SSH bed unavailable: {reason}")
    # Not under pytest's tmp dir: that is 0700 root's, and sshd reads authorized_keys, and the stubs
    # the shared state, as the login user.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="kk3s-bed-"))
    try:
        bed = SshBed.create(directory, INSTALL_SH)
        try:
            yield bed
        finally:
            bed.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def bed(ssh_bed):
    yield ssh_bed
    for name in list(ssh_bed.hosts):
        ssh_bed.remove_host(name)
    for sub in ("nodes", "etcd", "hang", "notready"):
        for f in (ssh_bed.cluster / sub).iterdir():
            f.unlink()
    (ssh_bed.cluster / "token").unlink(missing_ok=True)
    ssh_bed.clear_calls()
    for host_dir in (ssh_bed.dir / "hosts").glob("*"):
        shutil.rmtree(host_dir, ignore_errors=True)
