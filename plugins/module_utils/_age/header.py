# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The age header: version line, recipient stanzas and MAC, written and read; base64 as age requires it."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import re

from .._errors import CryptoError
from .primitives import hkdf

MAGIC = b"age-encryption.org/v1\n"
_HEADER_READ_SIZE = 4096
_MAX_HEADER_LINE = 64 * 1024
# A real header has one stanza per recipient, each body one line (32 bytes); a hostile one could go on for as long
# as the file does. Refused beyond these, far above any real file, so reading a header costs a bounded time.
MAX_STANZAS = 1024
MAX_BODY_LINES = 16384  # in the whole header: 1 MiB of base64
_ARGUMENT_LINE = re.compile(rb"-> [\x21-\x7e]+( [\x21-\x7e]+)*\n\Z")
_BODY_LINE = re.compile(rb"[A-Za-z0-9+/]{0,64}\n\Z")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*\Z")


def is_age_file(first_bytes):
    """Tell whether data starting with first_bytes is a (binary) age v1 file."""
    return bytes(first_bytes[:len(MAGIC)]) == MAGIC


def b64encode(data):
    return base64.b64encode(data).rstrip(b"=")


def b64decode(text, what):
    """Decode canonical unpadded base64 as age requires; anything else means a corrupted header."""
    if _BASE64.match(text) is None or len(text) % 4 == 1:
        raise CryptoError("header is corrupted (%s is not valid base64)" % what)
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if b64encode(data) != text:
        raise CryptoError("header is corrupted (%s is not canonical base64)" % what)
    return data


def header_mac(file_key, header_up_to_dashes):
    return hmac.new(hkdf(file_key, b"", b"header"), header_up_to_dashes, hashlib.sha256).digest()


# --- writing ------------------------------------------------------------------------------------------------

def encode_stanza(arguments, body):
    encoded = b64encode(body)
    # The body ends with a line shorter than 64 columns, empty if the last full line ends it exactly.
    lines = [encoded[start:start + 64] for start in range(0, len(encoded) + 1, 64)]
    return b"-> " + b" ".join(arguments) + b"\n" + b"".join(line + b"\n" for line in lines)


def encode_header(file_key, stanzas):
    up_to_dashes = MAGIC + b"".join(stanzas) + b"---"
    return up_to_dashes + b" " + b64encode(header_mac(file_key, up_to_dashes)) + b"\n"


# --- reading ------------------------------------------------------------------------------------------------

_Stanza = collections.namedtuple("_Stanza", "arguments body")


class _HeaderLines:
    """Reads header lines from a stream in blocks, keeping the bytes after the header for the payload."""

    def __init__(self, source):
        self._source = source
        self._buffer = bytearray()

    def readline(self, limit):
        """Return the next line with its newline, or at most limit bytes if there is no newline by then."""
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched, limit)
            if end >= 0 or len(self._buffer) >= limit:
                size = end + 1 if end >= 0 else limit
                line = bytes(self._buffer[:size])
                del self._buffer[:size]
                return line
            searched = len(self._buffer)
            block = self._source.read(_HEADER_READ_SIZE)
            if not block:
                line = bytes(self._buffer)
                self._buffer.clear()
                return line
            self._buffer += block

    def header_line(self):
        line = self.readline(_MAX_HEADER_LINE)
        if not line.endswith(b"\n"):
            if len(line) < _MAX_HEADER_LINE:
                raise CryptoError("file is truncated (the header is incomplete)")
            raise CryptoError("header is corrupted (a line is longer than %d bytes)" % _MAX_HEADER_LINE)
        return line

    def rest(self):
        return bytes(self._buffer)


def _check_version_line(line):
    if line == MAGIC:
        return
    if line.startswith(b"age-encryption.org/"):
        raise CryptoError("unsupported age format version (only age-encryption.org/v1 is supported)")
    if line.startswith(b"-----BEGIN AGE"):
        raise CryptoError("not an age file: this is ASCII-armored age, which is not supported here; "
                          "decode it first with: age -d")
    raise CryptoError("not an age file")


def _read_stanza_body(lines, budget):
    """Return (decoded body, raw lines) of a stanza body: base64 lines of 64 columns, then a shorter one; at most
    budget lines."""
    raw = []
    while True:
        if len(raw) == budget:
            raise CryptoError("header is corrupted (its stanzas hold more than %d body lines)" % MAX_BODY_LINES)
        line = lines.header_line()
        if _BODY_LINE.match(line) is None:
            raise CryptoError("header is corrupted (a stanza body line is not base64 of at most 64 columns)")
        raw.append(line)
        if len(line) < 65:
            encoded = b"".join(raw)
            return b64decode(encoded.replace(b"\n", b""), "a stanza body"), encoded


def read_header(source):
    """Parse the header; return (stanzas, header bytes up to '---', MAC, bytes already read after it)."""
    lines = _HeaderLines(source)
    _check_version_line(lines.readline(len(MAGIC)))
    stanzas = []
    up_to_dashes = [MAGIC]
    body_lines = MAX_BODY_LINES
    line = lines.header_line()
    while not line.startswith(b"---"):
        if _ARGUMENT_LINE.match(line) is None:
            raise CryptoError("header is corrupted (expected a '-> ' stanza or the '---' MAC line)")
        if len(stanzas) == MAX_STANZAS:
            raise CryptoError("header is corrupted (it has more than %d recipient stanzas)" % MAX_STANZAS)
        body, raw_body = _read_stanza_body(lines, body_lines)
        body_lines -= raw_body.count(b"\n")
        stanzas.append(_Stanza(line[3:-1].split(b" "), body))
        up_to_dashes += [line, raw_body]
        line = lines.header_line()
    if not stanzas:
        raise CryptoError("header is corrupted (it has no recipient stanza)")
    if len(line) != 48 or not line.startswith(b"--- "):
        raise CryptoError("header is corrupted (malformed MAC line)")
    up_to_dashes.append(b"---")
    return stanzas, b"".join(up_to_dashes), b64decode(line[4:-1], "the header MAC"), lines.rest()
