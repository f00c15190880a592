# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway PostgreSQL and MariaDB servers for the integration tests.

Each server lives in its own temporary directory, listens on a unix socket there and on a free
TCP port of 127.0.0.1, and is removed by stop(). As root, PostgreSQL runs as the ``postgres`` OS
user (it refuses to run as root) and MariaDB with ``--user=root``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PASSWORD_USER = "lifeboat"
# Unique to the run: the tests that look for the password in every process must find only this run's leaks.
PASSWORD = "Tr0ub4dor&3-lifeboat-%s" % secrets.token_hex(4)
START_TIMEOUT = 60


class ServerUnavailable(Exception):
    """The server binaries are not installed: the tests that need the server are skipped."""


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv, **kwargs):
    """Run a command, raising with its output when it fails."""
    result = subprocess.run(argv, stdin=kwargs.pop("stdin", subprocess.DEVNULL), capture_output=True,
                            check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (
            " ".join(argv), result.returncode, result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace")))
    return result.stdout.decode()


def _wait_for(predicate, what, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s" % what)
        time.sleep(0.05)


class PostgresServer:
    """A PostgreSQL cluster made with initdb, run by pg_ctl."""

    superuser = "postgres"
    user = PASSWORD_USER
    password = PASSWORD
    host = "127.0.0.1"

    def __init__(self, parent=None):
        self.bindir = self._find_bindir()
        self.root = tempfile.mkdtemp(prefix="lifeboat-pg-", dir=parent)
        self.datadir = os.path.join(self.root, "data")
        self.socket_dir = os.path.join(self.root, "sock")
        self.port = free_port()
        self.running = False

    @staticmethod
    def _find_bindir():
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                            key=lambda path: int(path.split("/")[4]))
        if not candidates:
            raise ServerUnavailable("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
        return os.path.dirname(candidates[-1])

    def _as_owner(self, argv):
        """Run server programs as the postgres OS user when we are root."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _chown_tree(self):
        if os.geteuid() != 0:
            return
        owner = pwd.getpwnam("postgres")
        for path in (self.root, self.socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def start(self):
        os.mkdir(self.socket_dir, 0o700)
        self._chown_tree()
        _run(self._as_owner([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", self.superuser,
                             "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                             "-E", "UTF8", "--locale=C.UTF-8"]))
        self._write_hba()
        options = "-k %s -p %d -c listen_addresses=127.0.0.1 -c autovacuum=off -c fsync=off" % (
            self.socket_dir, self.port)
        _run(self._as_owner([os.path.join(self.bindir, "pg_ctl"), "start", "-w", "-D", self.datadir,
                             "-l", os.path.join(self.root, "server.log"), "-o", options]))
        self.running = True
        self.psql("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (self.user, self.password))

    def _write_hba(self):
        """Trust only the superuser on the socket; the password user authenticates everywhere."""
        hba = os.path.join(self.datadir, "pg_hba.conf")
        with open(hba, "w", encoding="utf-8") as handle:
            handle.write("local all %s trust\n" % self.superuser)
            handle.write("local all all scram-sha-256\n")
            handle.write("host all all 127.0.0.1/32 scram-sha-256\n")

    def stop(self):
        if self.running:
            subprocess.run(self._as_owner([os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.datadir,
                                           "-m", "immediate", "-w"]), capture_output=True, check=False)
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, name):
        return os.path.join(self.bindir, name)

    def psql_argv(self, database="postgres"):
        """psql as the superuser over the socket."""
        return [self.client("psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                "-p", str(self.port), "-U", self.superuser, "-d", database]

    def psql(self, sql, database="postgres"):
        return _run(self.psql_argv(database) + ["-c", sql])

    def create_database(self, name, owner=None):
        self.psql('CREATE DATABASE "%s" OWNER "%s"' % (name, owner or self.user))
        return name

    def drop_database(self, name):
        self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class MariadbServer:
    """A MariaDB server made with mariadb-install-db, run in the background."""

    superuser = "root"
    user = PASSWORD_USER
    password = PASSWORD
    host = "127.0.0.1"

    def __init__(self, parent=None):
        self.mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
        self.install_db = shutil.which("mariadb-install-db")
        self.mariadb = shutil.which("mariadb")
        if not (self.mariadbd and self.install_db and self.mariadb):
            raise ServerUnavailable("MariaDB server binaries (mariadbd, mariadb-install-db, mariadb) not found")
        self.root = tempfile.mkdtemp(prefix="lifeboat-my-", dir=parent)
        self.datadir = os.path.join(self.root, "data")
        self.socket = os.path.join(self.root, "mysqld.sock")
        self.port = free_port()
        self.process = None

    def _server_options(self):
        options = ["--no-defaults", "--datadir=" + self.datadir, "--socket=" + self.socket,
                   "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-name-resolve",
                   "--pid-file=" + os.path.join(self.root, "mariadbd.pid"),
                   "--log-error=" + os.path.join(self.root, "server.log"),
                   "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
                   "--innodb-flush-log-at-trx-commit=0", "--skip-innodb-doublewrite"]
        if os.geteuid() == 0:
            options.append("--user=root")
        return options

    def start(self):
        install = [self.install_db, "--no-defaults", "--datadir=" + self.datadir,
                   "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            install.append("--user=root")
        _run(install)
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [self.mariadbd] + self._server_options(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(self._accepts_connections, "mariadbd on %s" % self.socket)
        for host in ("localhost", "127.0.0.1"):
            self.sql("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO '%s'@'%s'"
                     % (self.user, host, self.password, self.user, host))

    def _accepts_connections(self):
        if self.process.poll() is not None:
            raise RuntimeError("mariadbd exited with %s; see %s" % (self.process.returncode, self.root))
        if not os.path.exists(self.socket):
            return False
        probe = subprocess.run(self.client_argv() + ["-e", "SELECT 1"], capture_output=True, check=False)
        return probe.returncode == 0

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            subprocess.run([shutil.which("mariadb-admin") or "mariadb-admin", "--no-defaults",
                            "--socket=" + self.socket, "-u", self.superuser, "shutdown"],
                           capture_output=True, check=False, timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def client_argv(self, database=None):
        """The mariadb client as root over the socket, batch mode."""
        argv = [self.mariadb, "--no-defaults", "--socket=" + self.socket, "-u", self.superuser, "-N", "-B",
                "--default-character-set=utf8mb4"]
        if database:
            argv.append("--database=" + database)
        return argv

    def sql(self, sql, database=None):
        return _run(self.client_argv(database) + ["-e", sql])

    def load(self, path, database):
        """Feed an SQL file to the client, as a restore would."""
        with open(path, "rb") as handle:
            return _run(self.client_argv(database), stdin=handle)

    def create_database(self, name):
        self.sql("CREATE DATABASE `%s` CHARACTER SET utf8mb4" % name)
        return name

    def drop_database(self, name):
        self.sql("DROP DATABASE IF EXISTS `%s`" % name)


def started(server_class, parent=None):
    """A started server; a server that fails to start leaves nothing behind."""
    server = server_class(parent)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def login(server, password=None):
    """The password user over TCP: the path a real secret takes."""
    return dict(login_host=server.host, login_port=server.port, login_user=server.user,
                login_password=password or server.password)
