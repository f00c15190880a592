# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SFTP version 3 over the pipes of an `ssh -s HOST sftp` process: a Session (requests pipelined, each reply's
status), a Download (pipelined reads as a stream), and strict parsing of what the server says."""

from __future__ import annotations

import collections
import contextlib
import datetime
import io
import re
import stat
import struct
import subprocess

from .._errors import MissingDependencyError
from .._tools import StderrTail

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


def encode_uint32(value):
    return struct.pack(">I", value)


def encode_string(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return encode_uint32(len(value)) + value


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
        self._send(INIT, encode_uint32(3))
        kind, payload = self._receive()
        decoder = Decoder(payload)
        if kind != VERSION or decoder.uint32() != 3:
            raise ConnectionLost("the server does not speak SFTP version 3")
        extensions = set()
        while decoder.offset < len(payload):
            extensions.add(decoder.string())
            decoder.string()
        if b"limits@openssh.com" in extensions:
            limits = Decoder(self._expect(EXTENDED_REPLY, EXTENDED, encode_string("limits@openssh.com")))
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
        self._guard(self._send, kind, encode_uint32(request_id), *parts)
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
            return Decoder(self._expect(ATTRS, LSTAT, encode_string(path))).attributes()
        except StatusError as exc:
            if exc.code == FX_NO_SUCH_FILE:
                return None
            raise

    def open(self, path, flags, permissions=None):
        attrs = encode_uint32(ATTR_PERMISSIONS) + encode_uint32(permissions) if permissions is not None else encode_uint32(0)
        return Decoder(self._expect(HANDLE, OPEN, encode_string(path), encode_uint32(flags), attrs)).string()

    def opendir(self, path):
        return Decoder(self._expect(HANDLE, OPENDIR, encode_string(path))).string()

    def readdir(self, handle):
        """The entries of the next READDIR, or None at the end of the directory."""
        try:
            return parse_names(self._expect(NAME, READDIR, encode_string(handle)))
        except StatusError as exc:
            if exc.code == FX_EOF:
                return None
            raise

    def close_handle(self, handle):
        self.request(CLOSE, encode_string(handle))


class Download(io.RawIOBase):
    """A file's bytes read with up to WINDOW bytes of requests in flight; the end must come at the listed size."""

    def __init__(self, session, handle, info, failure):
        super().__init__()
        self._session = session
        self._handle = handle
        self._info = info
        self._failure = failure  # (sentence) -> VaultError naming the vault and the key
        self._handle_string = encode_string(handle)
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
