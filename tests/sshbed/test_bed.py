"""The bed itself: a non-root login over real SSH, stdin then EOF, sudo, a sandbox that changes nothing."""

from __future__ import annotations

import os

from tests.sshbed.fixtures import bed, ssh_bed  # noqa: F401


def test_login_is_a_non_root_user_with_passwordless_sudo(bed):
    host = bed.host("h1")
    result = host.run("id -u; sudo -n id -u; cat", stdin="from stdin\n")
    assert result.ok, result.stderr
    uid, root_uid, echoed = result.stdout.splitlines()
    assert uid != "0" and root_uid == "0" and echoed == "from stdin"


def test_the_sandbox_keeps_the_machine_unchanged(bed):
    host = bed.host("h1")
    assert host.run("sudo -n mkdir -p /etc/rancher/k3s && sudo -n touch /etc/rancher/k3s/x /usr/local/bin/y").ok
    assert host.exists("/etc/rancher/k3s/x") and not os.path.exists("/etc/rancher/k3s/x")
    assert not os.path.exists("/usr/local/bin/y")
    # the sandbox has its own PID namespace: the host's processes are invisible
    assert int(host.run("ps -e -o pid= | wc -l").stdout) < 20


def test_stubs_record_calls_and_serve_the_real_installer(bed):
    host = bed.host("h1")
    result = host.run("curl -sfL https://raw.githubusercontent.com/k3s-io/k3s/v1.34.1%2Bk3s1/install.sh | head -3")
    assert "#!/bin/sh" in result.stdout
    assert bed.calls("h1")[0].startswith("curl ")
