"""Helpers shared by the tests: the one operator key of a run, builders of backups, dumps and restores, trees to
back up and their fingerprint, a catalog's files and their digests, a file that grows while a backup reads it,
SQLite samples, the age CLI, a small tmpfs, an HTTP receiver, an SMTP server with its TLS certificate, a thread that
runs beside a with-block, a time and memory bound on a block, a directory another user can reach, children (make,
pytest) run apart from the enclosing run or as an ordinary user."""

import contextlib
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import tempfile
import threading
import tracemalloc

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _archive, _catalog, _dump, _restore

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
NOBODY = 65534  # the unprivileged user of the tests that play another user
COLLECTIONS = os.path.join(ROOT, "build", "pytest-collections")  # tests/conftest.py links the checkout there
# One operator key for the whole test run: every backup the tests make is encrypted to it.
IDENTITY, RECIPIENT = _age.generate_identity()
KEY = _age.Key(identities=[IDENTITY])


def make_tree(root):
    """A small tree with every kind of entry the archive must keep."""
    os.makedirs(os.path.join(root, "sub", "deeper"))
    os.makedirs(os.path.join(root, "empty"))
    with open(os.path.join(root, "text.txt"), "w", encoding="utf-8") as handle:
        handle.write("hello world\n" * 500)
    with open(os.path.join(root, "sub", "random.bin"), "wb") as handle:
        handle.write(os.urandom(200_000))
    with open(os.path.join(root, "sub", "deeper", "empty.txt"), "wb"):
        pass
    with open(os.path.join(root, "ünïcode ñame.txt"), "w", encoding="utf-8") as handle:
        handle.write("unicode\n")
    long_dir = os.path.join(root, "l" * 90, "m" * 90)
    os.makedirs(long_dir)
    with open(os.path.join(long_dir, "long-name-file.txt"), "w", encoding="utf-8") as handle:
        handle.write("long path\n")
    os.chmod(os.path.join(root, "text.txt"), 0o640)
    script = os.path.join(root, "run.sh")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    os.symlink("text.txt", os.path.join(root, "link-to-text"))
    os.symlink("/etc/passwd", os.path.join(root, "absolute-link"))
    os.link(os.path.join(root, "text.txt"), os.path.join(root, "sub", "hardlink.txt"))
    os.utime(os.path.join(root, "text.txt"), (1_600_000_000, 1_600_000_000))
    if os.geteuid() == 0:  # an owner that is not the one running the test, so keeping it is checked
        os.lchown(script, 1234, 5678)
    return root


def fingerprint(root, exclude=(), seconds=False, dir_mtimes=True):
    """Per relative path under root: type, mode, owner, mtime, content digest, link target, and which files share
    an inode: what a restore must keep. seconds: file mtimes in whole seconds (what a ustar header keeps);
    dir_mtimes false leaves directory mtimes out (making and removing an entry touches its parent's); exclude:
    absolute paths of files, or of directories whose subtree, left out (a catalog beside the tree under test)."""
    found, inodes = {}, {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if os.path.join(directory, name) not in exclude)
        for name in sorted(dirs + files):
            path = os.path.join(directory, name)
            if path in exclude:
                continue
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            common = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path), st.st_uid, st.st_gid)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir",) + common + ((st.st_mtime_ns,) if dir_mtimes else ())
            else:
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                group = inodes.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 else None
                mtime = int(st.st_mtime) if seconds else st.st_mtime_ns
                found[rel] = ("file",) + common + (mtime, digest, group)
    return found


def tree_digest(root):
    """One digest of a tree's fingerprint (file mtimes in seconds, directory mtimes left out)."""
    return hashlib.sha256(repr(sorted(fingerprint(root, seconds=True, dir_mtimes=False).items())).encode()).hexdigest()


def nested_env(**variables):
    """os.environ without what an enclosing `make test` or pytest run sets (its partial mode, summary file, make
    flags, xdist worker), plus variables: for a make or pytest the tests run as a child."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("LIFEBOAT_", "PYTEST_", "MAKE", "MFLAGS"))}
    env.update(variables)
    return env


@contextlib.contextmanager
def shared_directory(mode=0o755):
    """A temporary directory that another user (nobody) can reach, or with mode 0o777 also write to: pytest's
    tmp_path is private to its owner. Removed on leaving."""
    path = tempfile.mkdtemp(prefix="lifeboat-shared-")
    try:
        os.chmod(path, mode)
        yield path
    finally:
        shutil.rmtree(path)


def become_nobody():
    """This process becomes the unprivileged user nobody for good: its group, no supplementary groups."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def drop_root():
    """preexec_fn of a child that must run as an ordinary user: nobody when the tests run as root."""
    if os.geteuid() == 0:
        become_nobody()


def require_binary(name):
    if shutil.which(name) is None:
        pytest.skip("%s is not installed (Debian package: see bindep.txt)" % name)


def age_decrypt_cli(path, identity, tmp_path):
    """Decrypt with the real age CLI; returns the plaintext bytes."""
    require_binary("age")
    key = tmp_path / "cli-identity.txt"
    key.write_text(identity + "\n")
    key.chmod(0o600)
    return subprocess.run(["age", "-d", "-i", str(key), str(path)], check=True, capture_output=True).stdout


@contextlib.contextmanager
def http_receiver(status=200):
    """A real HTTP server on loopback that answers every POST with status: yields (its base URL, the list of
    (path, body) it received, in order)."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            received.append((self.path, self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def self_signed_certificate(directory):
    """A throwaway self-signed certificate for 127.0.0.1 in directory: (its PEM file, which is also the CA to
    trust, its key file)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_file, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_file, key_file


class SMTPServer:
    """A real aiosmtpd server on loopback: plain, STARTTLS (required) or SMTPS, with AUTH that records logins.
    messages holds (envelope, whether it came over TLS), logins the (user, password) pairs it was given."""

    def __init__(self, security="none", certificate=None):
        controller_module = pytest.importorskip("aiosmtpd.controller")
        smtp_module = pytest.importorskip("aiosmtpd.smtp")
        self.messages, self.logins = [], []
        server = self

        class Recorder:
            async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 (the aiosmtpd API)
                server.messages.append((envelope, smtp.transport.get_extra_info("ssl_object") is not None))
                return "250 OK"

        def authenticator(_smtp, _session, _envelope, _mechanism, data):
            self.logins.append((data.login.decode(), data.password.decode()))
            return smtp_module.AuthResult(success=True)

        options = {"authenticator": authenticator}
        if security != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            # aiosmtpd only counts STARTTLS as TLS: on an SMTPS connection AUTH is allowed by turning that off
            options.update({"starttls": dict(tls_context=context, require_starttls=True),
                            "smtps": dict(ssl_context=context, auth_require_tls=False)}[security])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = controller_module.Controller(Recorder(), hostname="127.0.0.1", port=self.port, **options)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


@contextlib.contextmanager
def mounted_tmpfs(mountpoint, size):
    """A tmpfs of the given size (as mount takes it: "2m") at mountpoint, made if need be: a real small disk.
    Skips the test where mounting needs root that the tests do not have."""
    os.makedirs(mountpoint, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(mountpoint)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


class BackgroundThread(threading.Thread):
    """A thread that runs for the length of a with-block: run() ends soon after stop is set on leaving it."""

    JOIN_TIMEOUT = 30

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(self.JOIN_TIMEOUT)


class Overrun(BaseException):
    """Raised into a block that runs past its time: no engine handler (except Exception) can swallow it."""


def _overrun(_signum, _frame):
    raise Overrun("the block did not end in time (an endless loop?)")


@contextlib.contextmanager
def bounded(seconds=1.0, memory=16 << 20):
    """The block must end within seconds, and its allocations peak below memory bytes.

    SIGALRM interrupts a loop that would never end (pytest, and its xdist workers, run tests in the main
    thread); tracemalloc sees the buffers that zstandard and zlib allocate through Python as well.
    """
    previous = signal.signal(signal.SIGALRM, _overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    tracemalloc.start()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= memory, "the block allocated %d bytes at its peak, more than %d" % (peak, memory)


def sqlite_sample(path):
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, photo BLOB);"
            "CREATE TABLE \"odd \"\"name\" (v);")
        connection.executemany("INSERT INTO people VALUES (?, ?, ?)", [
            (i, None if i % 7 == 0 else "Zoë %d 名前 🚀" % i,
             None if i % 5 == 0 else hashlib.md5(str(i).encode()).digest() + b"\x00\xff") for i in range(1, 501)])
        connection.executemany('INSERT INTO "odd ""name" VALUES (?)', [("a",), (None,), (b"\x00",)])
    connection.close()


def sqlite_rows(path):
    connection = sqlite3.connect(path)
    try:
        return {table: connection.execute('SELECT * FROM "%s" ORDER BY rowid' % table.replace('"', '""')).fetchall()
                for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def backup(paths, backup_dir, job="app", **options):
    """A file backup of paths (one or a list), encrypted to RECIPIENT, without default excludes: exactly the tree."""
    options.setdefault("recipients", [RECIPIENT])
    options.setdefault("default_excludes", False)
    paths = [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(path) for path in paths]
    return _archive.run_archive(_archive.ArchiveRequest(paths, job, backup_dir=str(backup_dir), **options))


def dump(database, backup_dir, engine="sqlite", check_mode=False, **options):
    """A dump of the job "db", encrypted to RECIPIENT unless told otherwise."""
    options.setdefault("recipients", [RECIPIENT])
    request = _dump.DumpRequest(engine, str(database), "db", backup_dir=str(backup_dir), **options)
    return _dump.run_dump(request, check_mode=check_mode)


def restore(backup_dir, backup_id, check_mode=False, **options):
    """A restore by id through the one entry point, decrypted with IDENTITY unless another key is given."""
    options.setdefault("key", KEY)
    request = _restore.RestoreRequest(backup_dir=str(backup_dir), backup_id=backup_id, **options)
    return _restore.restore_backup(request, check_mode=check_mode)


@contextlib.contextmanager
def lock_held_elsewhere(backup_dir):
    """The catalog's lock held by another thread, as another run holds it (within one thread the lock is reentrant)."""
    taken, release = threading.Event(), threading.Event()

    def hold():
        with _catalog.CatalogLock(str(backup_dir)):
            taken.set()
            release.wait()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(10), "the lock was not taken"
    try:
        yield
    finally:
        release.set()
        holder.join()


def as_nobody(steps):
    """Run steps() in a child that is nobody; fails the test if they raise."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            become_nobody()
            steps()
            code = 0
        finally:
            os._exit(code)  # pylint: disable=protected-access
    assert os.waitpid(pid, 0)[1] == 0, "the other user's steps failed"


def custom_stats(output):
    """The custom stats (set_stats) an ansible-playbook run printed with ANSIBLE_SHOW_CUSTOM_STATS: what AWX records."""
    return json.loads(output.split("CUSTOM STATS:", 1)[1].split("RUN:", 1)[1].strip().split("\n\n", 1)[0])


def incremental_chain(source, backup_dir, count, job="app", **options):
    """count incremental backups of source (a directory made if missing), one file changed before each so every
    level stores something; returns their results, oldest first. A chain is at most max_chain + 1 long."""
    os.makedirs(str(source), exist_ok=True)
    made = []
    for number in range(count):
        with open(os.path.join(str(source), "changing-%d.txt" % number), "w", encoding="utf-8") as handle:
            handle.write("change %d\n" % number)
        made.append(backup(source, backup_dir, job, incremental=True, **options))
    return made


def catalog_state(backup_dir):
    """Every file under the catalog (the lock file aside) with the SHA-256 of its content."""
    state = {}
    for directory, _dirs, names in os.walk(backup_dir):
        for name in names:
            path = os.path.join(directory, name)
            if name != ".lock":
                with open(path, "rb") as handle:
                    state[os.path.relpath(path, backup_dir)] = hashlib.sha256(handle.read()).hexdigest()
    return state


def grows_while_read(monkeypatch, victim):
    """The file victim grows while an archive reads it, as an application appending to it would."""
    real_open = _archive.open_nofollow

    def open_then_change(path):
        handle = real_open(path)
        if path == victim:
            with open(path, "ab") as writer:
                writer.write(b"appended meanwhile\n" * 10)
        return handle

    monkeypatch.setattr(_archive, "open_nofollow", open_then_change)
