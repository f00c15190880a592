# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real append-only SFTP vault for the tests: a second OpenSSH sshd on a free port of 127.0.0.1.

Configured as an append-only vault host is: one system account per backed-up host, chrooted, forced into
`internal-sftp -u 0222` with removal, rename, attribute changes and links denied; its job directories made in
advance and writable by the account (what the client makes comes out 0555); its authorized key in a root-owned
file outside the chroot. The whole tree lives under /srv (a chroot path must be root-owned and not group- or
world-writable, so not under /tmp) and is removed with the account by remove().

Import the fixture into a test module: `from sshvault import ssh_vault  # pylint: disable=unused-import`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

SSHD = "/usr/sbin/sshd"
DENIED = "remove,rmdir,rename,posix-rename,setstat,fsetstat,lsetstat,symlink,hardlink,copy-data"
PREFIX = "vault"  # the vault's directory inside each account's chroot: sftp://ACCOUNT@127.0.0.1:PORT/vault
START_TIMEOUT = 30

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized/%u
AllowUsers {account}
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
LogLevel VERBOSE
Subsystem sftp internal-sftp

Match User {account}
    ChrootDirectory {chroot}
    ForceCommand internal-sftp -u 0222 -P {denied}
    AllowTcpForwarding no
    X11Forwarding no
    PermitTTY no
"""


def _run(argv):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(argv), result.returncode, result.stdout, result.stderr))
    return result.stdout


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keypair(path):
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path])
    with open(path + ".pub", encoding="ascii") as handle:
        return handle.read().strip()


class SshVault:
    """One backed-up host's account on an append-only vault.

    settings      the vault option a host would hold (url, identity_file, known_hosts_file, connect_timeout)
    directory     the vault's directory on disk, the trusted side: key K is at os.path.join(chroot, K)
    client_dir    0700, holds the host's key pair and its known_hosts
    """

    def __init__(self, host="web1", jobs=("daily", "db")):
        if not os.path.exists(SSHD):
            pytest.skip("%s is not installed (Debian package openssh-server: see bindep.txt)" % SSHD)
        self.host = host
        self.jobs = jobs
        self.account = "lbvault-%s" % secrets.token_hex(4)
        self.port = _free_port()
        os.makedirs("/srv", mode=0o755, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="lifeboat-sshvault-", dir="/srv")
        os.chmod(self.root, 0o755)  # sshd reads the authorized keys as the account
        self.chroot = os.path.join(self.root, "chroot")
        self.directory = os.path.join(self.chroot, PREFIX)
        self.client_dir = os.path.join(self.root, "client")
        self.identity_file = os.path.join(self.client_dir, "id_ed25519")
        self.known_hosts_file = os.path.join(self.client_dir, "known_hosts")
        self.host_key = os.path.join(self.root, "ssh_host_ed25519_key")
        self.log = os.path.join(self.root, "sshd.log")
        self.process = None
        self._account_made = False
        try:
            self._prepare()
        except BaseException:
            self.remove()
            raise

    @property
    def url(self):
        return "sftp://%s@127.0.0.1:%d/%s" % (self.account, self.port, PREFIX)

    @property
    def settings(self):
        return {"url": self.url, "identity_file": self.identity_file, "known_hosts_file": self.known_hosts_file,
                "connect_timeout": 10}

    def key(self, *parts):
        """A key under this host's directory: PREFIX/HOST/parts..."""
        return "/".join((PREFIX, self.host) + parts)

    def path(self, key):
        """Where the vault keeps key on its disk."""
        return os.path.join(self.chroot, key)

    def _prepare(self):
        _run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
              "/usr/sbin/nologin", "--password", "*", self.account])  # "*": no password, but not a locked account
        self._account_made = True
        for path in (self.chroot, self.directory, os.path.join(self.directory, self.host)):
            os.mkdir(path, 0o755)
        for job in self.jobs:
            job_dir = os.path.join(self.directory, self.host, job)
            os.mkdir(job_dir, 0o700)
            shutil.chown(job_dir, self.account, self.account)
        os.mkdir(self.client_dir, 0o700)
        public = _keypair(self.identity_file)
        self.host_public = _keypair(self.host_key)
        os.mkdir(os.path.join(self.root, "authorized"), 0o755)
        self.authorize(public)
        self.trust(self.host_public)
        with open(os.path.join(self.root, "sshd_config"), "w", encoding="ascii") as handle:
            handle.write(CONFIG.format(port=self.port, host_key=self.host_key, root=self.root, account=self.account,
                                       chroot=self.chroot, denied=DENIED))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        _run([SSHD, "-t", "-f", os.path.join(self.root, "sshd_config")])

    def authorize(self, public_key):
        """The one client key the account accepts (root-owned, outside the chroot)."""
        with open(os.path.join(self.root, "authorized", self.account), "w", encoding="ascii") as handle:
            handle.write(public_key + "\n")

    def trust(self, public_key, path=None):
        """Write a known_hosts file (the host's own by default) that holds public_key for the server."""
        with open(path or self.known_hosts_file, "w", encoding="ascii") as handle:
            handle.write("[127.0.0.1]:%d %s\n" % (self.port, " ".join(public_key.split()[:2])))

    def start(self):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                [SSHD, "-D", "-e", "-f", os.path.join(self.root, "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("sshd exited with %s: %s" % (self.process.returncode, self.log_text()))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("sshd did not listen on 127.0.0.1:%d: %s" % (self.port, self.log_text()))
            time.sleep(0.05)

    def stop(self):
        """Stop the server and every session it serves, at once (a vault host that goes away)."""
        if self.process is None:
            return
        children = descendants(self.process.pid)
        self.process.terminate()
        self.process.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.process = None

    def client_argv(self, program="sftp"):
        """sftp or ssh as the host would run it by hand, with its own key and known_hosts."""
        return [program, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o",
                "UserKnownHostsFile=" + self.known_hosts_file, "-o", "GlobalKnownHostsFile=/dev/null", "-o",
                "IdentitiesOnly=yes", "-i", self.identity_file, "-P" if program == "sftp" else "-p", str(self.port)]

    def sftp(self, commands):
        """Run sftp -b with these commands (one a line) as the host; returns the CompletedProcess (text)."""
        return subprocess.run(self.client_argv() + ["-b", "-", "%s@127.0.0.1" % self.account], input=commands,
                              capture_output=True, text=True, timeout=60, check=False)

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-4000:]

    def remove(self):
        self.stop()
        if self._account_made:
            subprocess.run(["userdel", self.account], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def files(self):
        """Every file under the vault's directory on disk: {key: bytes}."""
        found = {}
        for top, _dirs, names in os.walk(self.directory):
            for name in names:
                path = os.path.join(top, name)
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, self.chroot)] = handle.read()
        return found


def descendants(pid):
    """Every descendant of pid (the sessions of a listening sshd, the ssh of a client)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        children = "/proc/%d/task/%d/children" % (parent, parent)
        with contextlib.suppress(OSError), open(children, encoding="ascii") as handle:  # gone meanwhile
            kids = [int(child) for child in handle.read().split()]
            found.extend(kids)
            queue.extend(kids)
    return found


@pytest.fixture
def ssh_vault():
    """A started SshVault for the host web1 with the jobs daily and db, removed after the test."""
    vault = SshVault()
    try:
        vault.start()
        yield vault
    finally:
        vault.remove()
