# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What opens an age file: the operator's identities, a passphrase, or the file key of that one file.

Every age file has its own random file key, wrapped in the header for each recipient. Whoever holds the identity
can unwrap it from the header alone (a few hundred public bytes), and the file key then opens that file and no
other: the header's MAC, keyed by it, tells at once whether it belongs to the file. So the identity can stay on the
operator's machine and a host be handed the file key of the one artifact it restores.
"""

from __future__ import annotations

import hmac
import io

from .._errors import CryptoError, UsageError, WrongKeyError
from .bech32 import bech32_decode, bech32_encode
from .header import MAGIC, b64encode, header_mac, read_header
from .keys import parse_identities, recipient_from_identity
from .recipients import unwrap_file_key

FILE_KEY_SIZE = 16
_FILE_KEY_HRP = "lifeboat-file-key-"
FILE_KEY_FORMAT = ("a file key is 'LIFEBOAT-FILE-KEY-1' followed by 32 upper-case letters and digits, as printed by "
                   "lifeboat unwrap (the value is not shown because it is secret)")


class Key:
    """One way to open age files, given once and passed along: identities (AGE-SECRET-KEY-1... strings, or an
    identity file's text), a passphrase, or file keys (bytes, or LIFEBOAT-FILE-KEY-1... texts separated by blank
    space: one per backup of an incremental chain), each opening its own file only. Its repr never shows the
    secret."""

    def __init__(self, identities=None, passphrase=None, file_key=None):
        if sum(1 for given in (identities, passphrase, file_key) if given) != 1:
            raise UsageError("give either identity or passphrase, exactly one of them" if file_key is None else
                             "give exactly one of identity, passphrase or file key")
        if isinstance(identities, str):
            identities = [identities]
        # each an identity or an identity file's text: parsed now, so a malformed one fails before a file is opened
        self.identities = [identity for text in identities or () for identity in parse_identities(text)]
        self.passphrase = passphrase
        given = file_key.split() if isinstance(file_key, str) else [file_key] if file_key is not None else []
        self.file_keys = [parse_file_key(text) if isinstance(text, str) else text for text in given]
        if any(not isinstance(each, bytes) or len(each) != FILE_KEY_SIZE for each in self.file_keys):
            raise UsageError("a file key is %d bytes; %s" % (FILE_KEY_SIZE, FILE_KEY_FORMAT))
        self.file_key = self.file_keys[0] if self.file_keys else None

    def __repr__(self):
        return "Key(%s)" % self.kind

    @property
    def kind(self):
        if self.file_key is not None:
            return "file key"
        return "identity" if self.identities else "passphrase"

    def open(self, stanzas, up_to_dashes, mac):
        """The file key of the file whose header this is, once the header's MAC proved it."""
        if self.file_key is not None:
            for file_key in self.file_keys:
                if hmac.compare_digest(header_mac(file_key, up_to_dashes), mac):
                    return file_key
            raise WrongKeyError("the file key given does not open this file: it is the key of another artifact "
                                "(or this header is damaged); a file key opens only the artifact it was "
                                "unwrapped from" if len(self.file_keys) == 1 else
                                "none of the %d file keys given opens this file: they are the keys of other "
                                "artifacts (or this header is damaged)" % len(self.file_keys))
        file_key = unwrap_file_key(stanzas, self.identities or None, self.passphrase)
        if not hmac.compare_digest(header_mac(file_key, up_to_dashes), mac):
            raise CryptoError("header is corrupted (MAC mismatch)")
        return file_key

    def recipients(self):
        """The public recipients of the identities (none for a passphrase or a file key): who can open what this
        key opens."""
        return [recipient_from_identity(identity) for identity in self.identities]


class Seal:
    """How to seal a new file exactly as an existing one whose header is given and whose file key key is: the new
    header holds the same stanzas, which wrap the same file key, so whatever opens that file opens this one. Each
    file's payload key is still its own: age derives it from the file key and a fresh random nonce. A restore with a
    file key seals its safety backup so when the backup has no recipients to encrypt to (a passphrase backup)."""

    def __init__(self, header, key):
        stanzas, up_to_dashes, mac = _read_whole_header(header)
        self.file_key = key.open(stanzas, up_to_dashes, mac)
        self.stanzas = up_to_dashes[len(MAGIC):-len(b"---")]
        self.method = "scrypt" if stanzas[0].arguments[0] == b"scrypt" else "x25519"

    def __repr__(self):
        return "Seal(%s)" % self.method


def encode_file_key(file_key):
    """The text form of a file key: LIFEBOAT-FILE-KEY-1..., bech32 with a checksum, so a mistyped one is caught."""
    return bech32_encode(_FILE_KEY_HRP, file_key).upper()


def parse_file_key(text):
    """The 16 bytes of a LIFEBOAT-FILE-KEY-1... text (surrounding blank space allowed), or UsageError."""
    if not isinstance(text, str):
        raise UsageError("a file key must be a string; %s" % FILE_KEY_FORMAT)
    try:
        hrp, file_key = bech32_decode(text.strip())
    except ValueError as exc:
        raise UsageError("the file key is not valid (%s); %s" % (exc, FILE_KEY_FORMAT)) from None
    if hrp != _FILE_KEY_HRP or len(file_key) != FILE_KEY_SIZE:
        if hrp == "age-secret-key-":
            raise UsageError("an identity was given where a file key is expected: the identity stays with the "
                             "operator; %s" % FILE_KEY_FORMAT)
        raise UsageError("this is not a file key; %s" % FILE_KEY_FORMAT)
    return file_key


def read_header_bytes(source):
    """The header of the age file read from source, exactly as it is written (public: recipient stanzas, MAC);
    checked for form, not opened. Reads the header and at most a few KiB after it."""
    _stanzas, up_to_dashes, mac, _rest = read_header(source)
    return up_to_dashes + b" " + b64encode(mac) + b"\n"


class _Prefixed:
    """A stream with bytes already read put back in front."""

    def __init__(self, prefix, source):
        self.prefix, self.source = prefix, source

    def read(self, size=-1):
        if not self.prefix:
            return self.source.read(size)
        if size < 0:
            data, self.prefix = self.prefix + self.source.read(), b""
            return data
        data, self.prefix = self.prefix[:size], self.prefix[size:]
        return data


def read_headers(source):
    """The headers read_header_bytes gives, of every header in source: one artifact's, or several headers one after
    the other (lifeboat header of a backup with its incremental chain)."""
    headers = []
    while True:
        _stanzas, up_to_dashes, mac, rest = read_header(source)
        headers.append(up_to_dashes + b" " + b64encode(mac) + b"\n")
        rest += source.read(max(0, len(MAGIC) - len(rest)))
        if not rest.startswith(MAGIC):
            return headers
        source = _Prefixed(rest, source)


def _read_whole_header(header):
    """(stanzas, bytes up to '---', MAC) of a header as read_header_bytes gives it, with nothing after it."""
    stanzas, up_to_dashes, mac, rest = read_header(io.BytesIO(header))
    if rest:
        raise CryptoError("header is corrupted (bytes after its MAC line)")
    return stanzas, up_to_dashes, mac


def file_key_of(header, key):
    """The file key of the file whose header this is (as read_header_bytes gives it), opened with key (a file key
    only proves itself) and checked by the header's MAC."""
    return key.open(*_read_whole_header(header))


def unwrap(header, key):
    """The file key that the header's stanzas wrap for key (identities or passphrase), checked by its MAC."""
    if key.file_key is not None:
        raise UsageError("unwrapping needs the identity or the passphrase, not a file key")
    return file_key_of(header, key)
