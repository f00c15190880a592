# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small, fast POSIX (pax) tar writer and a streaming tar reader.

Python's tarfile spends most of its time building headers; writing ustar
headers directly, with a pax record only for what ustar cannot hold (long or
non-ASCII names, big sizes or ids), keeps the archive readable by GNU tar and
bsdtar while leaving the time to compression and encryption.
"""

from __future__ import annotations

import grp
import pwd
import re
import struct

from ._errors import IntegrityError

BLOCK = 512
ZERO_BLOCK = b"\0" * BLOCK
REGULAR, HARDLINK, SYMLINK, DIRECTORY, PAX, PAX_GLOBAL = b"0", b"1", b"2", b"5", b"x", b"g"
GNU_LONGNAME, GNU_LONGLINK = b"L", b"K"
_MAX_OCTAL = {8: 0o7777777, 12: 0o77777777777}
# What the pax records the reader uses and the GNU long names before one member may hold together: they are kept,
# so this bounds the reader's memory whatever a header claims. bsdtar refuses a GNU long name over 1 MiB too.
MAX_EXTENDED_HEADER = 1 << 20
# What one pax header may claim: its other records (a directory's listing in an incremental backup, GNU.dumpdir) are
# read past as they stream, never held, so only time is bounded here; a writer refuses a record that would exceed it.
MAX_PAX_SIZE = 1 << 28
DUMPDIR_KEY = "GNU.dumpdir"
# The pax keys the reader uses, with the syntax of their values; others are skipped.
_PAX_NUMBER = re.compile(rb"([0-9]{1,20})\Z")
_PAX_TIME = re.compile(rb"(-?[0-9]{1,20})(\.[0-9]*)?\Z")
_PAX_KEYS = {"path": None, "linkpath": None, "size": _PAX_NUMBER, "uid": _PAX_NUMBER, "gid": _PAX_NUMBER,
             "mtime": _PAX_TIME}
_PAX_LENGTH_DIGITS = 8  # a record's length, in decimal, before its space: MAX_EXTENDED_HEADER has 7 digits


def _fits_ustar_name(data, limit=100):
    return len(data) <= limit and data.isascii()


def _pax_record(key, value):
    payload = b" %s=%s\n" % (key.encode("ascii"), value)
    # The record starts with its own length in decimal, which counts its own digits too.
    length = len(payload) + 1
    while len(str(length)) + len(payload) != length:
        length = len(str(length)) + len(payload)
    return str(length).encode("ascii") + payload


def _padding(size):
    return b"\0" * (-size % BLOCK)


class _Names:
    """uid/gid to name, cached: getpwuid is a file scan per call."""

    def __init__(self):
        self._users = {}
        self._groups = {}

    def user(self, uid):
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = ""
        return self._users[uid]

    def group(self, gid):
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = ""
        return self._groups[gid]


def build_header(name, typeflag, size=0, mode=0o644, uid=0, gid=0, mtime=0, linkname="", uname="", gname="",
                 records=()):
    """Return the header blocks of one member: a pax record first when ustar cannot hold a value, or for the
    records given as (key, bytes)."""
    name_b = name.encode("utf-8", "surrogateescape")
    link_b = linkname.encode("utf-8", "surrogateescape")
    pax = [_pax_record(key, value) for key, value in records]
    if not _fits_ustar_name(name_b):
        pax.append(_pax_record("path", name_b))
        name_b = name_b[:100].decode("utf-8", "ignore").encode("ascii", "replace")
    if not _fits_ustar_name(link_b):
        pax.append(_pax_record("linkpath", link_b))
        link_b = b""
    for key, value, width in (("size", size, 12), ("uid", uid, 8), ("gid", gid, 8), ("mtime", mtime, 12)):
        if not 0 <= value <= _MAX_OCTAL[width]:
            pax.append(_pax_record(key, str(value).encode("ascii")))
    blocks = b""
    if pax:
        records = b"".join(pax)
        blocks = _ustar(b"PaxHeaders/" + name_b[:80], PAX, len(records), 0o644, 0, 0, 0, b"", "", "")
        blocks += records + _padding(len(records))
    return blocks + _ustar(name_b, typeflag, size, mode, uid, gid, mtime, link_b, uname, gname)


_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
_ZERO_DEVICE = b"%07o" % 0


def _ustar(name_b, typeflag, size, mode, uid, gid, mtime, link_b, uname, gname):
    def clamp(value, width):
        return min(max(value, 0), _MAX_OCTAL[width])

    # struct pads each field with NULs: the octal fields keep their terminating NUL.
    head = _USTAR.pack(name_b, b"%07o" % (mode & 0o7777), b"%07o" % clamp(uid, 8), b"%07o" % clamp(gid, 8),
                       b"%011o" % clamp(size, 12), b"%011o" % clamp(mtime, 12), b" " * 8, typeflag, link_b,
                       b"ustar\x0000", uname.encode("utf-8", "replace")[:32], gname.encode("utf-8", "replace")[:32],
                       _ZERO_DEVICE, _ZERO_DEVICE, b"")
    return head[:148] + b"%06o\0 " % sum(head) + head[156:]


class TarWriter:
    """Writes members to a sink; the caller streams each file's bytes after its header."""

    def __init__(self, sink):
        self._sink = sink
        self._names = _Names()
        self.bytes_written = 0

    def _write(self, data):
        self._sink.write(data)
        self.bytes_written += len(data)

    def header(self, name, typeflag, st=None, size=0, linkname="", mode=0o600, mtime=0, records=()):
        """The header blocks of a member; with st, mode, owner and mtime come from that stat result; records: pax
        records (key, bytes) it carries."""
        if st is not None:
            mode, mtime = st.st_mode, int(st.st_mtime)
            uid, gid = st.st_uid, st.st_gid
            uname, gname = self._names.user(uid), self._names.group(gid)
        else:
            uid = gid = 0
            uname = gname = "root"
        return build_header(name, typeflag, size, mode, uid, gid, mtime, linkname, uname, gname, records)

    def add_header(self, name, typeflag, st=None, size=0, linkname="", mode=0o600, mtime=0, records=()):
        self._write(self.header(name, typeflag, st, size, linkname, mode, mtime, records))

    def write_data(self, data):
        self._write(data)

    def end_member(self, size):
        pad = _padding(size)
        if pad:
            self._write(pad)

    def add_whole(self, header, data):
        """A small member in one write: header, data and padding (fewer calls into the compressor)."""
        self._write(header + data + _padding(len(data)))

    def add_bytes(self, name, data, mode=0o600, mtime=0):
        self.add_header(name, REGULAR, size=len(data), mode=mode, mtime=mtime)
        self._write(data)
        self.end_member(len(data))

    def close(self):
        # Two zero blocks end an archive; GNU tar pads to a 10 KiB record, readers do not need it.
        self._write(ZERO_BLOCK * 2)


class Member:
    """One member as read from a stream: name, type and size at once, the other header fields when asked for.

    A restore takes modes and times from the manifest, so most members never need them parsed.
    """

    __slots__ = ("name", "typeflag", "size", "_block", "_overrides", "_offset")

    def __init__(self, name, typeflag, size, block, overrides, offset):
        self.name, self.typeflag, self.size = name, typeflag, size
        self._block, self._overrides, self._offset = block, overrides, offset

    def _number(self, start, end, field):
        """A numeric field: from the pax header when it gives one, else the octal one of the block."""
        value = self._overrides.get(field)
        if value is None:
            value = _parse_octal(self._block[start:end])
            if value is None:
                raise _header_error(self._offset, self.name, "has an invalid %s field" % field)
        return value

    def _text(self, start, end):
        return self._block[start:end].split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def mode(self):
        return self._number(100, 108, "mode")

    @property
    def uid(self):
        return self._number(108, 116, "uid")

    @property
    def gid(self):
        return self._number(116, 124, "gid")

    @property
    def mtime(self):
        return self._number(136, 148, "mtime")

    @property
    def linkname(self):
        link = self._overrides.get("linkpath", self._block[157:257].split(b"\0", 1)[0])
        return link.decode("utf-8", "surrogateescape")

    @property
    def uname(self):
        return self._text(265, 297)

    @property
    def gname(self):
        return self._text(297, 329)

    @property
    def kind(self):
        return {REGULAR: "file", b"\0": "file", b"7": "file", HARDLINK: "hardlink", SYMLINK: "symlink",
                DIRECTORY: "dir", b"3": "chardev", b"4": "blockdev", b"6": "fifo"}.get(self.typeflag, "other")


def _parse_octal(raw):
    """A numeric field: octal digits up to a NUL, or base-256 as GNU tar writes what octal cannot hold; None if
    neither (int() alone would take a sign, '_' or '0o')."""
    if raw[:1] == b"\x80":
        return int.from_bytes(raw[1:], "big")
    if raw[:1] == b"\xff":
        return int.from_bytes(raw, "big", signed=True)
    digits = raw.split(b"\0", 1)[0].strip()
    if not digits:
        return 0
    if digits.isdigit():
        try:
            return int(digits, 8)
        except ValueError:  # an 8 or a 9
            pass
    return None


def _header_error(offset, name, problem):
    return IntegrityError("tar header at byte %d (%r) %s" % (offset, name, problem), stage="untar")


def _block_name(block):
    return block[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data, overrides, offset, name):
    """Apply a pax header's records ("LENGTH KEY=VALUE\\n") to overrides; an empty value removes the key (POSIX)."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + _PAX_LENGTH_DIGITS + 1)
        if space < 0 or not data[pos:space].isdigit():
            raise _header_error(offset, name, "has a malformed pax record at byte %d of its data (no length)" % pos)
        end = pos + int(data[pos:space])
        if not space + 2 < end <= len(data) or data[end - 1] != 0x0A:
            raise _header_error(offset, name, "has a malformed pax record at byte %d of its data (its length %d "
                                "does not end at a newline within the header)" % (pos, end - pos))
        key, equals, value = data[space + 1:end - 1].partition(b"=")
        if not equals or not key:
            raise _header_error(offset, name, "has a malformed pax record at byte %d of its data (no key=value)"
                                % pos)
        key = key.decode("utf-8", "replace")
        if key in _PAX_KEYS:
            syntax = _PAX_KEYS[key]
            if not value:
                overrides.pop(key, None)
            elif syntax is None:
                overrides[key] = value
            else:
                match = syntax.match(value)
                if match is None:
                    raise _header_error(offset, name, "has an invalid pax %s value %r" % (key, value[:40]))
                overrides[key] = int(match.group(1))
        pos = end


class TarReader:
    """Reads members from a stream in order; each member's data must be read before the next."""

    def __init__(self, source):
        self._source = source
        self._remaining = 0
        self._pad = 0
        self.offset = 0

    def _read_exact(self, size):
        chunks = []
        while size:
            chunk = self._source.read(size)
            if not chunk:
                raise IntegrityError("the tar stream ends in the middle of a member (truncated archive)",
                                     stage="untar")
            chunks.append(bytes(chunk))  # a source may reuse its buffer on the next read
            size -= len(chunk)
            self.offset += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def read(self, size=1 << 20):
        """Read up to size bytes of the current member's data; b'' at its end."""
        size = min(size, self._remaining)
        if size <= 0:
            return b""
        chunk = self._source.read(size)
        if not chunk:
            raise IntegrityError("the tar stream ends in the middle of a member (truncated archive)", stage="untar")
        self._remaining -= len(chunk)
        self.offset += len(chunk)
        return chunk

    def read_all(self):
        """The rest of the current member's data (for small members such as the manifest)."""
        chunks = []
        while True:
            chunk = self.read(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(bytes(chunk))

    def _skip_rest(self):
        while self._remaining:
            self.read(min(self._remaining, 1 << 20))
        if self._pad:
            self._read_exact(self._pad)
            self._pad = 0

    def __iter__(self):
        return self

    def __next__(self):
        self._skip_rest()
        overrides = {}
        extended = 0
        while True:
            start = self.offset
            block = self._read_exact(BLOCK)
            if block == ZERO_BLOCK:
                raise StopIteration
            if _parse_octal(block[148:156]) != sum(block) - sum(block[148:156]) + 256:
                raise _header_error(start, _block_name(block), "has a bad checksum (corrupted archive)")
            typeflag = block[156:157]
            size = _parse_octal(block[124:136])
            if size is None or size < 0:
                raise _header_error(start, _block_name(block), "has an invalid size field")
            if typeflag in (PAX, PAX_GLOBAL):
                if size > MAX_PAX_SIZE:
                    raise _header_error(start, _block_name(block), "claims %d bytes of pax records; more than %d are "
                                        "refused" % (size, MAX_PAX_SIZE))
                kept = self._read_pax(size, overrides if typeflag == PAX else {}, start, _block_name(block))
                extended = self._count_extended(extended, kept, start, block)
                continue
            if typeflag in (GNU_LONGNAME, GNU_LONGLINK):
                extended = self._count_extended(extended, size, start, block)
                data = self._read_exact(size + len(_padding(size)))[:size]
                overrides["path" if typeflag == GNU_LONGNAME else "linkpath"] = data.rstrip(b"\0")
                continue
            return self._member(block, typeflag, size, overrides, start)

    @staticmethod
    def _count_extended(extended, size, start, block):
        extended += size
        if extended > MAX_EXTENDED_HEADER:
            raise _header_error(start, _block_name(block), "brings the extended headers (pax records, long names) "
                                "before one member to %d bytes; more than %d are refused"
                                % (extended, MAX_EXTENDED_HEADER))
        return extended

    def _read_pax(self, size, overrides, start, name):
        """Apply the records of a pax header of size bytes as they stream past; returns the bytes of the records
        kept (those of the keys the reader uses). Another record's value, a directory's listing in an incremental
        backup, is read past in pieces and never held."""
        left, buffer, kept, pos = size, b"", 0, 0

        def fill(wanted):
            nonlocal left, buffer
            take = min(left, max(wanted - len(buffer), 0))
            if take:
                buffer += self._read_exact(take)
                left -= take

        while buffer or left:
            fill(_PAX_LENGTH_DIGITS + 1 + 64)  # the length, its space and the start of the key
            space = buffer.find(b" ", 0, _PAX_LENGTH_DIGITS + 1)
            if space < 0 or not buffer[:space].isdigit():
                raise _header_error(start, name, "has a malformed pax record at byte %d of its data (no length)" % pos)
            length = int(buffer[:space])
            if not space + 2 < length <= len(buffer) + left:
                raise _header_error(start, name, "has a malformed pax record at byte %d of its data (its length %d "
                                    "does not end at a newline within the header)" % (pos, length))
            key = buffer[space + 1:].partition(b"=")[0]
            if key.decode("utf-8", "replace") in _PAX_KEYS or length <= len(buffer):
                if length > MAX_EXTENDED_HEADER:
                    raise _header_error(start, name, "has a pax record of %d bytes; more than %d are refused"
                                        % (length, MAX_EXTENDED_HEADER))
                fill(length)
                _parse_pax(buffer[:length], overrides, start, name)
                kept += length if key.decode("utf-8", "replace") in _PAX_KEYS else 0
                buffer = buffer[length:]
            else:  # a value nothing here uses: read past it, keeping only its last byte to check the newline
                skip = length - len(buffer)
                while skip:
                    piece = self._read_exact(min(skip, 1 << 20))
                    skip -= len(piece)
                    left -= len(piece)
                if piece[-1:] != b"\n":
                    raise _header_error(start, name, "has a malformed pax record at byte %d of its data (its length "
                                        "%d does not end at a newline within the header)" % (pos, length))
                buffer = b""
            pos += length
        self._read_exact(len(_padding(size)))
        return kept

    def _member(self, block, typeflag, size, overrides, start):
        name = block[0:100].split(b"\0", 1)[0]
        if block[257:263] == b"ustar\x00" and block[345]:
            name = block[345:500].split(b"\0", 1)[0] + b"/" + name
        name = overrides.get("path", name)
        size = overrides.get("size", size)
        if typeflag in (HARDLINK, SYMLINK, DIRECTORY):
            size = 0
        self._remaining = size
        self._pad = -size % BLOCK
        return Member(name.decode("utf-8", "surrogateescape"), typeflag, size, block, overrides, start)
