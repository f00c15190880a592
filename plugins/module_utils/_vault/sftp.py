# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The append-only SFTP vault (sftp://USER@HOST[:PORT]/PATH) through the system's OpenSSH client.

The transport is `ssh -s HOST sftp`, the very command the `sftp` program runs, so ssh_config, agents, ProxyJump
and known_hosts work as the operator knows them; this file speaks SFTP version 3 over its pipes. The `sftp`
program itself cannot stream: its put refuses anything but a regular file and its get seeks in its output.
Speaking the protocol also gives an exclusive create (a name is never written twice), exact sizes and times
without parsing `ls`, pipelined writes and reads, and each request's own status.

The vault's server (OpenSSH internal-sftp, -u 0222, remove, rename and attribute changes denied) refuses a host
anything but adding files: an interrupted upload stays as a shorter file for the vault host to sweep.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import hashlib
import io
import os
import re
import stat
import struct
import subprocess

from .._errors import IntegrityError, MissingDependencyError, UsageError, VaultError
from .._tools import StderrTail, find_client
from .store import ObjectInfo, Store

# Packet types and status codes of draft-ietf-secsh-filexfer-02 (version 3), the version OpenSSH speaks.
INIT, VERSION, OPEN, CLOSE, READ, WRITE, LSTAT = 1, 2, 3, 4, 5, 6, 7
OPENDIR, READDIR, REMOVE, EXTENDED = 11, 12, 13, 200
STATUS, HANDLE, DATA, NAME, ATTRS, EXTENDED_REPLY = 101, 102, 103, 104, 105, 201
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED = 0, 1, 2, 3
OPEN_READ, OPEN_WRITE, OPEN_CREATE, OPEN_EXCLUSIVE = 0x01, 0x02, 0x08, 0x20
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME, ATTR_EXTENDED = 0x1, 0x2, 0x4, 0x8, 0x80000000

DEFAULT_TRANSFER = 32768  # what every server takes (and OpenSSH's sftp uses) unless it states its limits
MAX_TRANSFER = 256 * 1024  # larger requests gain nothing: ssh's channel window is 2 MiB
WINDOW = 2 << 20  # bytes of requests in flight: enough to keep the link busy, bounded memory
MAX_PACKET = 4 << 20  # a reply claiming more is a broken or hostile server, refused before it is read
LOST_GRACE = 5  # seconds for an ssh whose connection broke to exit and write why
NAME_RE = re.compile(r"^[A-Za-z0-9._~-]+$")  # the names the product writes; anything else is not listed
# Set by the store, never by ssh_options: the vault's identity is always checked, nothing ever asks a question.
FORCED_OPTIONS = ("BatchMode=yes", "StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
                  "PasswordAuthentication=no", "KbdInteractiveAuthentication=no", "ForwardX11=no",
                  "ForwardAgent=no", "ClearAllForwardings=yes", "PermitLocalCommand=no", "RequestTTY=no")
FORCED_KEYS = {option.split("=", 1)[0].lower() for option in FORCED_OPTIONS} | {
    "userknownhostsfile", "identitiesonly", "identityfile", "connecttimeout", "serveraliveinterval",
    "serveralivecountmax"}
OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[^\r\n\0]+$")


class StatusError(Exception):
    """The server answered a request with a status other than OK."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ConnectionLost(Exception):
    """ssh ended, or the server sent something that is not SFTP: the session is unusable."""


class Attributes:
    """The part of an SFTP ATTRS block the store uses (None where the server left a field out)."""

    __slots__ = ("size", "permissions", "mtime")

    def __init__(self, size=None, permissions=None, mtime=None):
        self.size = size
        self.permissions = permissions
        self.mtime = mtime

    @property
    def is_dir(self):
        return self.permissions is not None and stat.S_ISDIR(self.permissions)

    @property
    def is_file(self):
        return self.permissions is not None and stat.S_ISREG(self.permissions)

    @property
    def modified(self):
        return datetime.datetime.fromtimestamp(self.mtime or 0, datetime.timezone.utc)


class Decoder:
    """Reads a packet's fields; a field that runs past the packet's end is a broken or hostile server."""

    def __init__(self, data):
        self.data = data
        self.offset = 0

    def take(self, count):
        end = self.offset + count
        if end > len(self.data):
            raise ConnectionLost("the server sent a truncated reply")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def uint32(self):
        return struct.unpack(">I", self.take(4))[0]

    def uint64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def string(self):
        return self.take(self.uint32())

    def attributes(self):
        flags = self.uint32()
        attrs = Attributes()
        if flags & ATTR_SIZE:
            attrs.size = self.uint64()
        if flags & ATTR_UIDGID:
            self.take(8)
        if flags & ATTR_PERMISSIONS:
            attrs.permissions = self.uint32()
        if flags & ATTR_ACMODTIME:
            self.take(4)
            attrs.mtime = self.uint32()
        if flags & ATTR_EXTENDED:
            for _pair in range(self.uint32()):
                self.string()
                self.string()
        return attrs


def parse_names(payload):
    """The (name, Attributes) of a NAME reply after its id; names that are not UTF-8 come back as None."""
    decoder = Decoder(payload)
    entries = []
    for _entry in range(decoder.uint32()):
        raw = decoder.string()
        decoder.string()  # the long name, ls -l style: never parsed
        attrs = decoder.attributes()
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = None
        entries.append((name, attrs))
    return entries


def listable(name, attrs):
    """Whether a directory entry is a file or directory the store lists: the product's names only, no links."""
    return name is not None and NAME_RE.match(name) is not None and name not in (".", "..") and (
        attrs.is_file or attrs.is_dir)


def _uint32(value):
    return struct.pack(">I", value)


def _string(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _uint32(len(value)) + value


def explain(stderr, vault, host, port, known_hosts):
    """The sentence for an ssh that could not connect or lost its connection, from the end of its stderr."""
    keyscan = "ssh-keyscan -p %d %s >> %s" % (port, host, known_hosts)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        sentence = ("the host key of %s port %d is not the one %s holds: the server was reinstalled, or someone "
                    "is in between; once its new fingerprint is checked with the vault's administrator, replace "
                    "the line (ssh-keygen -R '[%s]:%d' -f %s, then %s)"
                    % (host, port, known_hosts, host, port, known_hosts, keyscan))
    elif "host key is known for" in stderr or "Host key verification failed" in stderr:
        sentence = ("the host key of %s port %d is not in %s: add it with %s after checking its fingerprint with "
                    "the vault's administrator" % (host, port, known_hosts, keyscan))
    elif "Permission denied (" in stderr:
        sentence = ("the server refused this host's key: add the public key of identity_file to the account's "
                    "authorized keys on the vault host, or correct identity_file or the account in the url")
    elif "Connection refused" in stderr:
        sentence = "nothing accepts connections on %s port %d: start sshd there, or correct the url" % (host, port)
    elif "timed out" in stderr:
        sentence = ("no answer from %s port %d within connect_timeout: check the address, the firewall and that "
                    "the vault host is up" % (host, port))
    elif "Could not resolve hostname" in stderr:
        sentence = "the name %s does not resolve: correct the url, or the DNS or /etc/hosts" % host
    elif "No route to host" in stderr or "Network is unreachable" in stderr:
        sentence = "%s cannot be reached from this host (no route): check the network" % host
    elif "subsystem request failed" in stderr:
        sentence = "the server offers no sftp subsystem: configure the account with ForceCommand internal-sftp"
    else:
        sentence = "the connection was lost: the vault host or the network went away"
    last = stderr.strip().splitlines()[-1].strip() if stderr.strip() else "no message"
    return "%s: %s (ssh: %s)" % (vault, sentence, last)


class Session:
    """One `ssh -s HOST sftp` and the SFTP conversation over its pipes."""

    def __init__(self, argv, on_lost):
        self._on_lost = on_lost  # builds the VaultError of a lost connection from ssh's stderr
        try:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            raise MissingDependencyError("cannot run %s: %s" % (argv[0], exc), stage="vault") from exc
        self._stderr = StderrTail(self.process.stderr)
        self._next_id = 0
        self._early = {}  # replies that came before the one awaited
        self.busy = False
        self.read_size = self.write_size = DEFAULT_TRANSFER
        self._guard(self._handshake)

    def _handshake(self):
        self._send(INIT, _uint32(3))
        kind, payload = self._receive()
        decoder = Decoder(payload)
        if kind != VERSION or decoder.uint32() != 3:
            raise ConnectionLost("the server does not speak SFTP version 3")
        extensions = set()
        while decoder.offset < len(payload):
            extensions.add(decoder.string())
            decoder.string()
        if b"limits@openssh.com" in extensions:
            limits = Decoder(self._expect(EXTENDED_REPLY, EXTENDED, _string("limits@openssh.com")))
            limits.uint64()
            read_limit, write_limit = limits.uint64(), limits.uint64()
            self.read_size = min(read_limit or DEFAULT_TRANSFER, MAX_TRANSFER)
            self.write_size = min(write_limit or DEFAULT_TRANSFER, MAX_TRANSFER)

    def _guard(self, call, *args):
        """Run call; a broken pipe or a lost connection ends ssh and becomes the VaultError that explains it."""
        try:
            return call(*args)
        except (ConnectionLost, BrokenPipeError) as exc:
            raise self._on_lost(self.end(grace=LOST_GRACE), exc) from None

    @property
    def alive(self):
        return not self.process.stdout.closed

    def end(self, grace=0):
        """Stop ssh, after grace seconds for it to exit by itself (and say why), and return the end of its
        stderr. A request in flight is abandoned."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        if self.process.poll() is None:
            self.process.kill()
        self.process.stdout.close()
        self.process.wait()
        return self._stderr.text()

    def close(self):
        """End the session politely: EOF on its input, and ssh exits."""
        self.end(grace=10)

    def _send(self, kind, *parts):
        length = 1 + sum(len(part) for part in parts)
        self.process.stdin.write(struct.pack(">IB", length, kind))
        for part in parts:
            self.process.stdin.write(part)
        self.process.stdin.flush()

    def _receive(self):
        header = self.process.stdout.read(5)
        if len(header) < 5:
            raise ConnectionLost("ssh ended")
        length, kind = struct.unpack(">IB", header)
        if not 1 <= length <= MAX_PACKET:
            raise ConnectionLost("the server sent a reply of %d bytes" % length)
        payload = self.process.stdout.read(length - 1)
        if len(payload) < length - 1:
            raise ConnectionLost("ssh ended")
        return kind, payload

    def send(self, kind, *parts):
        """Send a request; returns its id (the reply is taken with reply(id))."""
        request_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        self._guard(self._send, kind, _uint32(request_id), *parts)
        return request_id

    def reply(self, request_id):
        """(type, payload after the id) of the reply to request_id; STATUS other than OK raises StatusError."""
        while request_id not in self._early:
            kind, payload = self._guard(self._receive)
            if len(payload) < 4:
                self._guard(self._lost, "the server sent a reply without an id")
            self._early[struct.unpack(">I", payload[:4])[0]] = (kind, payload[4:])
        kind, payload = self._early.pop(request_id)
        if kind == STATUS:
            decoder = Decoder(payload)
            code, message = self._guard(lambda: (decoder.uint32(), decoder.string()))
            if code != FX_OK:
                raise StatusError(code, message.decode("utf-8", errors="replace") or "status %d" % code)
        return kind, payload

    @staticmethod
    def _lost(why):
        raise ConnectionLost(why)

    def _expect(self, expected, kind, *parts):
        got, payload = self.reply(self.send(kind, *parts))
        if got != expected:
            self._guard(self._lost, "the server answered request %d with a packet of type %d" % (kind, got))
        return payload

    def request(self, kind, *parts):
        """A request whose only answer is a status: raises StatusError unless it is OK."""
        self.reply(self.send(kind, *parts))

    def lstat(self, path):
        """The Attributes of path (not following a link), or None where nothing is."""
        try:
            return Decoder(self._expect(ATTRS, LSTAT, _string(path))).attributes()
        except StatusError as exc:
            if exc.code == FX_NO_SUCH_FILE:
                return None
            raise

    def open(self, path, flags, permissions=None):
        attrs = _uint32(ATTR_PERMISSIONS) + _uint32(permissions) if permissions is not None else _uint32(0)
        return Decoder(self._expect(HANDLE, OPEN, _string(path), _uint32(flags), attrs)).string()

    def opendir(self, path):
        return Decoder(self._expect(HANDLE, OPENDIR, _string(path))).string()

    def readdir(self, handle):
        """The entries of the next READDIR, or None at the end of the directory."""
        try:
            return parse_names(self._expect(NAME, READDIR, _string(handle)))
        except StatusError as exc:
            if exc.code == FX_EOF:
                return None
            raise

    def close_handle(self, handle):
        self.request(CLOSE, _string(handle))


class Download(io.RawIOBase):
    """A file's bytes read with up to WINDOW bytes of requests in flight; the end must come at the listed size."""

    def __init__(self, session, handle, info, failure):
        super().__init__()
        self._session = session
        self._handle = handle
        self._info = info
        self._failure = failure  # (sentence) -> VaultError naming the vault and the key
        self._handle_string = _string(handle)
        self._in_flight = collections.deque()  # (id, offset, length) in offset order
        self._next = 0  # offset of the next request
        self._position = 0  # offset of the next byte the reader gets
        self._chunk = memoryview(b"")
        self._done = False

    def readable(self):
        return True

    def _fill(self):
        # Requests cover the listed size and one byte more: the reply there must be the end of the file.
        end = self._info.size + 1
        while self._next < end and (self._next - self._position) < WINDOW:
            length = min(self._session.read_size, end - self._next)
            request_id = self._session.send(READ, self._handle_string, struct.pack(">QI", self._next, length))
            self._in_flight.append((request_id, self._next, length))
            self._next += length

    def readinto(self, buffer):
        while not self._chunk and not self._done:
            self._next_chunk()
        count = min(len(buffer), len(self._chunk))
        buffer[:count] = self._chunk[:count]
        self._chunk = self._chunk[count:]
        self._position += count
        return count

    def _next_chunk(self):
        self._fill()
        request_id, offset, length = self._in_flight.popleft()
        try:
            payload = self._session.reply(request_id)[1]
        except StatusError as exc:
            if exc.code != FX_EOF:
                raise self._failure("the read failed at byte %d (%s)" % (offset, exc.message)) from None
            if offset != self._info.size:
                raise self._failure("the file ended after %d bytes, the listing said %d: it is shorter than when "
                                    "listed" % (offset, self._info.size)) from None
            self._done = True
            self._drain()
            return
        data = Decoder(payload).string()
        if not data:
            raise self._failure("the server sent no bytes at byte %d" % offset)
        if offset + len(data) > self._info.size:
            raise self._failure("the file holds more than the %d bytes listed: it changed since it was listed"
                                % self._info.size)
        if len(data) < length:
            if offset + len(data) == self._info.size:
                self._done = True  # this request asked past the listed size: the file ends there
            else:
                self._next = offset + len(data)  # a short read inside the file: ask again from there
            self._drain()
        self._chunk = memoryview(data)

    def _drain(self):
        while self._in_flight:
            with contextlib.suppress(StatusError):
                self._session.reply(self._in_flight.popleft()[0])

    def close(self):
        if not self.closed:
            try:
                if self._session.alive:  # not after a lost connection
                    self._drain()
                    self._session.close_handle(self._handle)
            finally:
                super().close()


class SftpStore(Store):
    """An append-only SFTP vault. Settings: url, known_hosts_file (required), identity_file, ssh_options (a list
    of extra Key=Value ssh options, e.g. ProxyJump=bastion), connect_timeout (seconds, 30)."""

    scheme = "sftp"
    versioned = False
    reusable_names = False

    def __init__(self, address, settings):
        super().__init__(address, settings)
        self.known_hosts = settings.get("known_hosts_file")
        if not self.known_hosts or not isinstance(self.known_hosts, str):
            raise UsageError("vault %s: known_hosts_file is required: the file that holds the vault's host key "
                             "(ssh-keyscan -p %d %s > FILE, after checking its fingerprint)"
                             % (self.describe(), address.port, address.host))
        self.identity = settings.get("identity_file")
        self.timeout = settings.get("connect_timeout", 30)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int) or self.timeout < 1:
            raise UsageError("vault %s: connect_timeout must be a whole number of seconds, at least 1"
                             % self.describe())
        self.ssh_options = settings.get("ssh_options") or []
        if not isinstance(self.ssh_options, list):
            raise UsageError("vault %s: ssh_options must be a list of Key=Value strings" % self.describe())
        for option in self.ssh_options:
            if not isinstance(option, str) or not OPTION_RE.match(option):
                raise UsageError("vault %s: ssh option %r is not Key=Value" % (self.describe(), option))
            if option.split("=", 1)[0].lower() in FORCED_KEYS:
                raise UsageError("vault %s: ssh option %r cannot be changed: the store sets it (host keys are "
                                 "always checked against known_hosts_file, the key is identity_file)"
                                 % (self.describe(), option))
        self._session = None

    def _path(self, key):
        return "/" + key

    def _argv(self):
        argv = [find_client(["ssh"], "openssh-client")]
        for option in FORCED_OPTIONS + ("UserKnownHostsFile=" + self.known_hosts,
                                        "ConnectTimeout=%d" % self.timeout,
                                        "ServerAliveInterval=%d" % self.timeout, "ServerAliveCountMax=3"):
            argv += ["-o", option]
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        for option in self.ssh_options:
            argv += ["-o", option]
        return argv + ["-p", str(self.address.port), "-l", self.address.user, "-s", "--", self.address.host, "sftp"]

    def _check_files(self):
        if not os.path.isfile(self.known_hosts):
            raise VaultError("%s: known_hosts_file %s does not exist: add the vault's host key with ssh-keyscan -p "
                             "%d %s >> %s after checking its fingerprint" % (
                                 self.describe(), self.known_hosts, self.address.port, self.address.host,
                                 self.known_hosts), stage="vault")
        if not self.identity:
            return
        try:
            st = os.stat(self.identity)
        except OSError as exc:
            raise VaultError("%s: identity_file %s cannot be read: %s" % (self.describe(), self.identity,
                                                                          exc.strerror), stage="vault") from None
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise VaultError("%s: identity_file %s is mode %04o, owned by uid %d: a private key must be readable by "
                             "its owner only (chmod 600, owned by uid %d)" % (
                                 self.describe(), self.identity, stat.S_IMODE(st.st_mode), st.st_uid, os.geteuid()),
                             stage="vault")

    def _lost(self, stderr, exc):
        detail = explain(stderr, self.describe(), self.address.host, self.address.port, self.known_hosts)
        if str(exc) and "ssh ended" not in str(exc) and not isinstance(exc, BrokenPipeError):
            detail += "; %s" % exc
        return VaultError(detail, stage="vault")

    @contextlib.contextmanager
    def _connected(self):
        """The store's session, made at the first use and kept; one that fails in the middle of a request is
        ended (what the server made of it is unknown), the next request connects again."""
        if self._session is None or self._session.busy:
            self._check_files()
            session = Session(self._argv(), self._lost)
            if self._session is None:
                self._session = session
        else:
            session = self._session
        session.busy = True
        try:
            yield session
        except BaseException as exc:
            session.end()
            if session is self._session:
                self._session = None
            if isinstance(exc, StatusError):
                raise VaultError("%s: the server refused a request: %s" % (self.describe(), exc.message),
                                 stage="vault") from None
            raise
        finally:
            session.busy = False
        if session is not self._session:
            session.close()

    def _refused(self, what, key, exc):
        if exc.code == FX_NO_SUCH_FILE:
            hint = ("the directory %s does not exist on the vault: the vault host creates each host's job "
                    "directories, writable by its account" % self._path(key.rsplit("/", 1)[0]))
        elif exc.code == FX_PERMISSION_DENIED:
            hint = "permission denied"
        else:
            hint = exc.message
        return VaultError("%s: cannot %s %s: %s" % (self.describe(), what, self._path(key), hint), stage="vault")

    def check(self, write=False):
        # write changes nothing: an append-only vault keeps whatever a probe would write, so writing is learnt
        # from the first upload.
        with self._connected() as session:
            attrs = session.lstat(self._path(self.address.prefix))
        if attrs is None or not attrs.is_dir:
            raise VaultError("%s: the directory %s does not exist on the vault: create it on the vault host, or "
                             "correct the url" % (self.describe(), self._path(self.address.prefix)), stage="vault")
        return {}

    def list(self, directory):
        found = []
        with self._connected() as session:
            pending = [directory]
            while pending:
                current = pending.pop()
                try:
                    handle = session.opendir(self._path(current))
                except StatusError as exc:
                    if exc.code == FX_NO_SUCH_FILE:
                        continue  # nothing there yet, or removed by the vault host meanwhile
                    raise self._refused("list", current, exc) from None
                try:
                    entries = session.readdir(handle)
                    while entries is not None:
                        for name, attrs in entries:
                            if not listable(name, attrs):
                                continue
                            key = current + "/" + name
                            if attrs.is_dir:
                                pending.append(key)
                            else:
                                found.append(ObjectInfo(key, attrs.size, attrs.modified))
                        entries = session.readdir(handle)
                except StatusError as exc:
                    raise self._refused("list", current, exc) from None
                session.close_handle(handle)
        return found

    def upload(self, key, stream, size, sha256):
        path = self._path(key)
        with self._connected() as session:
            if session.lstat(path) is not None:
                raise VaultError("%s: %s is already on the vault, and a name on an append-only vault is never "
                                 "written twice: the copy takes another name" % (self.describe(), path),
                                 stage="vault")
            try:
                # Exclusive: a name that appears meanwhile is refused by the server, never overwritten.
                handle = session.open(path, OPEN_WRITE | OPEN_CREATE | OPEN_EXCLUSIVE, 0o600)
            except StatusError as exc:
                raise self._refused("create", key, exc) from None
            digest = hashlib.sha256()
            in_flight = collections.deque()
            offset = 0
            held = b""  # the last chunk read, sent only once the whole stream is known to be right
            try:
                while True:
                    chunk = stream.read(session.write_size)
                    if not chunk:
                        break
                    digest.update(chunk)
                    if held:
                        self._write(session, handle, offset, held, in_flight)
                        offset += len(held)
                    held = chunk
                    if offset + len(held) > size:
                        break
                read = offset + len(held)
                if read != size or digest.hexdigest() != sha256:
                    # Without its last chunk the file on the vault is shorter than any copy: never counted.
                    session.end()
                    raise IntegrityError("%s changed while it was copied to %s (%s): the partial %s stays on the "
                                         "vault until the vault host sweeps it" % (
                                             key, self.describe(), "%s bytes read, %d expected" % (
                                                 read if read <= size else "more than %d" % size, size)
                                             if read != size else "its SHA-256 is not the one expected", path),
                                         stage="vault")
                if held:
                    self._write(session, handle, offset, held, in_flight)
                while in_flight:
                    session.reply(in_flight.popleft())
                session.close_handle(handle)
            except StatusError as exc:
                raise self._refused("write", key, exc) from None
            attrs = session.lstat(path)
        if attrs is None or attrs.size != size:
            raise VaultError("%s: %s holds %s bytes after its upload, %d were sent" % (
                self.describe(), path, attrs.size if attrs else "no", size), stage="vault")
        return ObjectInfo(key, size, attrs.modified, sha256=sha256)

    @staticmethod
    def _write(session, handle, offset, data, in_flight):
        in_flight.append(session.send(WRITE, _string(handle), struct.pack(">QI", offset, len(data)), data))
        while len(in_flight) * session.write_size > WINDOW:
            session.reply(in_flight.popleft())

    @contextlib.contextmanager
    def open(self, info):
        path = self._path(info.key)

        def failure(sentence):
            return VaultError("%s: reading %s: %s" % (self.describe(), path, sentence), stage="vault")

        with self._connected() as session:
            try:
                handle = session.open(path, OPEN_READ)
            except StatusError as exc:
                raise self._refused("read", info.key, exc) from None
            raw = Download(session, handle, info, failure)
            reader = io.BufferedReader(raw, buffer_size=session.read_size)
            try:
                yield reader
            finally:
                reader.close()

    def remove(self, info):
        with self._connected() as session:
            try:
                session.request(REMOVE, _string(self._path(info.key)))
            except StatusError as exc:
                if exc.code == FX_NO_SUCH_FILE:
                    return
                if exc.code == FX_PERMISSION_DENIED:
                    raise VaultError("%s: the vault refused to remove %s (permission denied): an append-only vault "
                                     "keeps what hosts write; retention and sweeping run on the vault host itself, "
                                     "over its directory" % (self.describe(), self._path(info.key)),
                                     stage="vault") from None
                raise self._refused("remove", info.key, exc) from None

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None
