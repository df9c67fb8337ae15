"""The SSH test bed: node commands run the way pulumi-command runs them, against simulated hosts.

- One OpenSSH server per simulated host, started by the tests on 127.0.0.1 (a free port, its own
  config and host key in a temp dir), inside a sandbox: a mount + PID namespace (`unshare`) with
  overlays over /etc, /var, /usr/local and /run, so nothing a command does reaches the real machine's
  files, and every process of the host dies with the namespace.
- A non-root login user created for the test session, with a generated key and passwordless sudo
  (an /etc/sudoers.d entry); user, home, key and sudoers entry are removed at the end.
- In each sandbox: stubs for `systemctl`, `curl` and the host tools that would change the machine
  (iptables, ip, modprobe, sysctl, apt-get); `curl` serves K3s's real install.sh from
  ../shared/upstream/k3s/install.sh and generated stub `k3s` binaries, which simulate the cluster
  (nodes, versions, etcd members, node passwords) in files shared by the bed's hosts.
- `Host.run(command, stdin)`: paramiko exec of the command text, stdin written then closed (EOF),
  exactly as pulumi-command's remote.Command does; `Host.put()`: an SFTP put as CopyToRemote does.

API (see tests/sshbed/fixtures.py for the pytest fixtures):
    bed = SshBed.create(tmp_dir)          # sshd binary, user, key (one per test session)
    host = bed.host("server-1", address="192.0.2.11")   # a sandbox with its sshd
    result = host.run(command_text, stdin="...")       # Result(exit_status, stdout, stderr, seconds)
    host.read("/etc/rancher/k3s/config.yaml"); host.exists(path); host.root(cmd)  # inspect as root
    bed.calls(host="server-1")            # stub calls recorded, in order
    bed.nodes()                           # simulated Node objects {name: {role, version, ...}}
    bed.hang("server-1")                  # K3s on that host never becomes ready
    bed.not_ready("agent-1")              # K3s there starts, its Node stays NotReady
    host.stop(); bed.close()
"""

from __future__ import annotations

import os
import pathlib
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
STUBS = HERE / "stubs"
SSHD = "/usr/sbin/sshd"
# Host tools replaced by a recording no-op in the sandbox (they would change the real machine).
NOOP_TOOLS = ("iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore", "ip", "modprobe",
              "sysctl", "apt-get", "dnf", "journalctl", "iscsiadm")
OVERLAID = ("etc", "var", "usr/local", "run")


def unavailable_reason(install_script: pathlib.Path) -> str | None:
    """Why the bed cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the SSH bed needs root (user, sudoers entry, namespaces); CI runs as root"
    for tool in (SSHD, shutil.which("sudo"), shutil.which("unshare"), shutil.which("ssh-keygen"), shutil.which("nsenter")):
        if not tool or not os.path.exists(tool):
            return f"missing {tool or 'sudo/unshare/ssh-keygen/nsenter'} (scripts/run-tests.sh installs openssh-server and sudo)"
    if not install_script.is_file():
        return f"K3s's install.sh not found at {install_script}"
    try:
        import paramiko  # noqa: F401
    except ImportError:
        return "paramiko is not installed (requirements-test.txt)"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create mount/pid namespaces: {probe.stderr.strip()}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_stale_users() -> None:
    """Users (and sudoers entries) of beds whose test process was killed before its cleanup ran."""
    for entry in pwd.getpwall():
        if not entry.pw_name.startswith("kk3s") or not entry.pw_gecos.startswith("k3s bed pid "):
            continue
        pid = entry.pw_gecos.rsplit(" ", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True)
            pathlib.Path(f"/etc/sudoers.d/{entry.pw_name}").unlink(missing_ok=True)


@dataclass
class Result:
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class Host:
    """One simulated node: a sandbox running its own sshd."""

    def __init__(self, bed: "SshBed", name: str, address: str):
        self.bed, self.name, self.address = bed, name, address
        self.dir = bed.dir / "hosts" / name
        self.port = free_port()
        self._client = None
        self._start()

    def _start(self) -> None:
        d = self.dir
        d.mkdir(parents=True)
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.bed.dir}/host_key\n"
            f"PidFile none\nAuthorizedKeysFile {self.bed.dir}/authorized_keys\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            f"AllowUsers {self.bed.user}\nLogLevel ERROR\nSubsystem sftp internal-sftp\n"
        )
        mounts = []
        for top in OVERLAID:
            key = top.replace("/", "-")
            (d / "ov" / key / "upper").mkdir(parents=True)
            (d / "ov" / key / "work").mkdir(parents=True)
            mounts.append(f"mount -t overlay overlay -o lowerdir=/{top},upperdir={d}/ov/{key}/upper,"
                          f"workdir={d}/ov/{key}/work /{top}")
        tools = " ".join(NOOP_TOOLS)
        init = "\n".join([
            "set -e",
            *mounts,
            "mkdir -p /run/sshd /run/systemd/system /run/k3sbed/units /usr/local/lib/k3sbed /usr/local/bin",
            # A host with systemd (above) and cgroup v2's memory controller, whatever this machine has.
            "mount -t tmpfs tmpfs /sys/fs/cgroup",
            "echo 'cpuset cpu io memory pids' > /sys/fs/cgroup/cgroup.controllers",
            f"printf %s {self.name} > /run/k3sbed/host",
            f"printf %s {self.address} > /run/k3sbed/address",
            f"cp {self.bed.dir}/stubs/lib.sh /usr/local/lib/k3sbed/lib.sh",
            f"for t in systemctl curl; do install -m 0755 {self.bed.dir}/stubs/$t /usr/local/bin/$t; done",
            f"for t in {tools}; do install -m 0755 {self.bed.dir}/stubs/noop /usr/local/bin/$t; done",
            f"exec {SSHD} -D -e -f {d}/sshd_config",
        ])
        self.log = open(d / "sshd.log", "w")
        # --kill-child: when the test kills unshare (by PID), the namespace's init and with it every
        # process of this host die too.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", init],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd for {self.name} exited: {(d / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd for {self.name} did not listen on {self.port}")
                time.sleep(0.02)

    # -- pulumi-command's way of running a command ---------------------------------------------------
    def client(self):
        import paramiko

        if self._client is None or not self._client.get_transport() or not self._client.get_transport().is_active():
            c = paramiko.SSHClient()
            c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            c.connect("127.0.0.1", port=self.port, username=self.bed.user, pkey=self.bed.pkey,
                      look_for_keys=False, allow_agent=False, timeout=10)
            self._client = c
        return self._client

    def run(self, command: str, stdin: str | None = None, timeout: float = 60) -> Result:
        """Exec `command` over SSH as the login user; stdin written then closed, like pulumi-command."""
        start = time.monotonic()
        chan = self.client().get_transport().open_session()
        chan.settimeout(timeout)
        chan.exec_command(command)
        try:
            if stdin:
                chan.sendall(stdin.encode())
            chan.shutdown_write()
        except OSError:
            pass  # the command ended without reading its stdin (e.g. a delete): pulumi-command ignores that too
        out, err = bytearray(), bytearray()
        deadline = start + timeout
        while True:
            if chan.recv_ready():
                out += chan.recv(65536)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            else:
                if time.monotonic() > deadline:
                    chan.close()
                    what = next((line for line in command.splitlines() if line.startswith("# kubeflow-k3s: ")), command[:80])
                    raise TimeoutError(f"{self.name}: {what} still running after {timeout}s:\n{err.decode()[-2000:]}")
                time.sleep(0.01)
        status = chan.recv_exit_status()
        chan.close()
        return Result(status, out.decode(), err.decode(), time.monotonic() - start)

    def put(self, local: str | os.PathLike, remote: str) -> None:
        """Copy a file the way pulumi-command's CopyToRemote does: an SFTP put as the login user,
        which creates no parent directories."""
        sftp = self.client().open_sftp()
        try:
            sftp.put(str(local), remote)
        finally:
            sftp.close()

    # -- inspection, as root inside the sandbox --------------------------------------------------------
    def root(self, command: str) -> subprocess.CompletedProcess:
        """Run a shell command as root inside this host's sandbox (mount and PID namespace)."""
        return subprocess.run(["nsenter", "-t", str(self._init_pid()), "-m", "-p", "sh", "-c", command],
                              capture_output=True, text=True, timeout=30)

    def read(self, path: str) -> str:
        done = self.root(f"cat {path}")
        if done.returncode != 0:
            raise FileNotFoundError(f"{self.name}:{path}: {done.stderr.strip()}")
        return done.stdout

    def exists(self, path: str) -> bool:
        return self.root(f"test -e {path}").returncode == 0

    def _init_pid(self) -> int:
        children = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc.poll() is None:
            self.proc.kill()  # by PID; --kill-child takes the namespace's processes with it
            self.proc.wait(timeout=10)
        self.log.close()


class SshBed:
    """Shared parts of the bed: the login user, its key, the host key, the simulated cluster."""

    def __init__(self, directory: pathlib.Path, install_script: pathlib.Path):
        import paramiko

        self.dir = directory
        self.user = "kk3s" + secrets.token_hex(4)
        self.hosts: dict[str, Host] = {}
        self.sudoers = pathlib.Path(f"/etc/sudoers.d/{self.user}")
        self.cluster = directory / "cluster"
        for sub in ("nodes", "etcd", "hang", "notready"):
            (self.cluster / sub).mkdir(parents=True)
        (self.cluster / "calls.log").touch()
        shutil.copy(install_script, self.cluster / "install.sh")
        shutil.copy(STUBS / "k3s.template", self.cluster / "k3s.template")
        (directory / "stubs").mkdir()
        for stub in STUBS.iterdir():
            text = stub.read_text().replace("@CLUSTER@", str(self.cluster))
            (directory / "stubs" / stub.name).write_text(text)
        # Stubs run as the login user too (curl, systemctl is-active): the shared state is writable.
        for path in [self.cluster, *self.cluster.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        directory.chmod(0o755)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "user_key")], check=True)
        (directory / "authorized_keys").write_text((directory / "user_key.pub").read_text())
        self.pkey = paramiko.Ed25519Key.from_private_key_file(str(directory / "user_key"))
        remove_stale_users()
        # The comment names the test process: a later bed removes the user if that process was killed.
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", f"k3s bed pid {os.getpid()}",
                        self.user], check=True)
        # useradd locks the password ("!"): sshd without PAM refuses locked accounts; "*" is no password.
        subprocess.run(["usermod", "-p", "*", self.user], check=True)
        self.sudoers.write_text(f"{self.user} ALL=(ALL) NOPASSWD:ALL\n")
        self.sudoers.chmod(0o440)

    @classmethod
    def create(cls, directory: pathlib.Path, install_script: pathlib.Path) -> "SshBed":
        bed = cls.__new__(cls)
        try:
            bed.__init__(directory, install_script)
        except BaseException:
            bed.close()
            raise
        return bed

    def host(self, name: str, address: str = "127.0.0.1") -> Host:
        assert name not in self.hosts, f"host {name} already exists"
        self.hosts[name] = Host(self, name, address)
        return self.hosts[name]

    def remove_host(self, name: str) -> None:
        """Take a host away (a machine that is gone): its sshd and sandbox stop, its files vanish."""
        self.hosts.pop(name).stop()

    def calls(self, host: str | None = None) -> list[str]:
        lines = (self.cluster / "calls.log").read_text().splitlines()
        return [line.split("\t", 1)[1] for line in lines if host is None or line.split("\t", 1)[0] == host]

    def clear_calls(self) -> None:
        (self.cluster / "calls.log").write_text("")

    def nodes(self) -> dict[str, dict[str, str]]:
        out = {}
        for f in sorted((self.cluster / "nodes").iterdir()):
            if f.suffix == ".tmp":
                continue
            out[f.name] = dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)
        return out

    def etcd_members(self) -> dict[str, str]:
        return {f.name: f.read_text().strip() for f in (self.cluster / "etcd").iterdir()}

    def hang(self, host: str, on: bool = True) -> None:
        marker = self.cluster / "hang" / host
        marker.touch() if on else marker.unlink(missing_ok=True)

    def not_ready(self, host: str, on: bool = True) -> None:
        """K3s on that host starts (its unit is active) but its Node stays NotReady (CNI, kubelet...)."""
        marker = self.cluster / "notready" / host
        marker.touch() if on else marker.unlink(missing_ok=True)

    def close(self) -> None:
        for host in list(getattr(self, "hosts", {}).values()):
            host.stop()
        self.hosts = {}
        user = getattr(self, "user", None)
        if user:
            try:
                pwd.getpwnam(user)
                subprocess.run(["userdel", "--remove", user], capture_output=True)
            except KeyError:
                pass
        sudoers = getattr(self, "sudoers", None)
        if sudoers is not None:
            sudoers.unlink(missing_ok=True)
