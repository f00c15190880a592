# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The age file format (age-encryption.org/v1): keys, a streaming writer and a streaming reader.

Files are interoperable with the age and rage command line tools. Supported recipient types are
X25519 (``age1...`` public keys, ``AGE-SECRET-KEY-1...`` identities) and scrypt (passphrase).
The payload is encrypted in 64 KiB ChaCha20-Poly1305 chunks; the last chunk carries a flag in its
nonce, so a truncated file is detected, not silently accepted.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import io
import os
import re
import struct

from ._errors import CryptoError, MissingDependencyError, UsageError, WrongKeyError

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # pragma: no cover - depends on the host
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

MAGIC = b"age-encryption.org/v1\n"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
FILE_KEY_SIZE = 16
PAYLOAD_NONCE_SIZE = 16
SCRYPT_LOG_N = 18  # what the age CLI uses: about a second of work
MAX_SCRYPT_LOG_N = 22  # 2^22 * 1 KiB = 4 GiB of memory; beyond that a file is a denial of service

_IDENTITY_HRP = "age-secret-key-"
_RECIPIENT_HRP = "age"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
# 11-byte big-endian chunk counter (3 zero bytes + 64 bits) and the last-chunk flag.
_CHUNK_NONCE = struct.Struct(">3xQ?")
_HEADER_READ_SIZE = 4096
_MAX_HEADER_LINE = 64 * 1024
_ARGUMENT_LINE = re.compile(rb"-> [\x21-\x7e]+( [\x21-\x7e]+)*\n\Z")
_BODY_LINE = re.compile(rb"[A-Za-z0-9+/]{0,64}\n\Z")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*\Z")
_WORK_FACTOR = re.compile(rb"[1-9][0-9]*\Z")

_RECIPIENT_FORMAT = "an age recipient is 'age1' followed by 58 lowercase letters and digits, as printed by age-keygen"
_IDENTITY_FORMAT = ("an age identity is a line 'AGE-SECRET-KEY-1' followed by 58 upper-case letters and digits, "
                    "as written by age-keygen (the value is not shown because it is secret)")


def _require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise MissingDependencyError(
            "age encryption needs the Python package 'cryptography' on this host "
            "(Debian/Ubuntu: apt install python3-cryptography; pip: pip install cryptography)")


# --- bech32 (BIP-173, without the 90-character limit, as age uses it) --------------------------------------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_VALUES = {char: value for value, char in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values):
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = ((checksum & 0x1FFFFFF) << 5) ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _bech32_hrp_values(hrp):
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _regroup_bits(values, from_bits, to_bits, pad):
    """Regroup a sequence of from_bits-wide integers into to_bits-wide ones (8 <-> 5 for bech32)."""
    accumulator = 0
    bits = 0
    mask = (1 << to_bits) - 1
    result = []
    for value in values:
        accumulator = ((accumulator << from_bits) | value) & 0xFFFF
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & mask)
    if pad and bits:
        result.append((accumulator << (to_bits - bits)) & mask)
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & mask):
        raise ValueError("invalid padding in the data part")
    return result


def bech32_encode(hrp, data):
    """Encode bytes as bech32 with the given human-readable part (lower case)."""
    values = _regroup_bits(data, 8, 5, True)
    polymod = _bech32_polymod(_bech32_hrp_values(hrp) + values + [0] * 6) ^ 1
    checksum = [(polymod >> (5 * (5 - index))) & 31 for index in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[value] for value in values + checksum)


def bech32_decode(text):
    """Return (hrp, data) of a bech32 string; ValueError (never quoting the input) if it is invalid."""
    if text != text.lower() and text != text.upper():
        raise ValueError("mixed upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise ValueError("no '1' separator followed by a checksum")
    hrp = text[:separator]
    if any(not 33 <= ord(char) <= 126 for char in hrp):
        raise ValueError("invalid character before the '1' separator")
    try:
        values = [_BECH32_VALUES[char] for char in text[separator + 1:]]
    except KeyError:
        raise ValueError("invalid character after the '1' separator") from None
    if _bech32_polymod(_bech32_hrp_values(hrp) + values) != 1:
        raise ValueError("checksum mismatch (a character is mistyped or missing)")
    return hrp, bytes(_regroup_bits(values[:-6], 5, 8, False))


# --- keys ---------------------------------------------------------------------------------------------------

def _recipient_key(recipient):
    """Return the 32-byte X25519 public key of an age1... recipient, or raise UsageError."""
    if not isinstance(recipient, str):
        raise UsageError("an age recipient must be a string; %s" % _RECIPIENT_FORMAT)
    value = recipient.strip()
    if "SECRET-KEY" in value.upper():
        raise UsageError("a secret key (AGE-SECRET-KEY-1...) was given where a recipient is expected; give its "
                         "public key (age-keygen -y prints it); the value is not shown because it is secret")
    try:
        hrp, key = bech32_decode(value)
    except ValueError as exc:
        raise UsageError("invalid age recipient %r: %s; %s" % (value[:100], exc, _RECIPIENT_FORMAT)) from None
    if hrp != _RECIPIENT_HRP or len(key) != 32:
        raise UsageError("%r is not an X25519 age recipient; %s" % (value[:100], _RECIPIENT_FORMAT))
    return key


def _identity_key(identity, where="the identity"):
    """Return the 32-byte X25519 private key of an AGE-SECRET-KEY-1... identity, or raise UsageError."""
    if not isinstance(identity, str):
        raise UsageError("%s must be a string; %s" % (where, _IDENTITY_FORMAT))
    try:
        hrp, key = bech32_decode(identity.strip())
    except ValueError as exc:
        raise UsageError("%s is not a valid age identity (%s); %s" % (where, exc, _IDENTITY_FORMAT)) from None
    if hrp == _RECIPIENT_HRP:
        raise UsageError("%s is a recipient (public key), not an identity; %s" % (where, _IDENTITY_FORMAT))
    if hrp != _IDENTITY_HRP or len(key) != 32:
        raise UsageError("%s is not an X25519 age identity (plugin and post-quantum identities are not "
                         "supported); %s" % (where, _IDENTITY_FORMAT))
    return key


def _public_bytes(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _encode_identity(key):
    return bech32_encode(_IDENTITY_HRP, key).upper()


def _encode_recipient(public_key):
    return bech32_encode(_RECIPIENT_HRP, public_key)


def parse_recipient(recipient):
    """Validate an age1... recipient and return it in canonical (lower case) form."""
    return _encode_recipient(_recipient_key(recipient))


def parse_identities(text):
    """Return the identities of an identity file's content (comments and blank lines allowed), upper case."""
    if not isinstance(text, str):
        raise UsageError("the identities must be text; %s" % _IDENTITY_FORMAT)
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            identities.append(_encode_identity(_identity_key(line, "line %d of the identities" % number)))
    if not identities:
        raise UsageError("no age identity found (only blank lines or comments); %s" % _IDENTITY_FORMAT)
    return identities


def recipient_from_identity(identity):
    """Return the age1... recipient (public key) of an AGE-SECRET-KEY-1... identity."""
    _require_cryptography()
    private_key = X25519PrivateKey.from_private_bytes(_identity_key(identity))
    return _encode_recipient(_public_bytes(private_key))


def generate_identity():
    """Return a new (AGE-SECRET-KEY-1... identity, age1... recipient) pair."""
    _require_cryptography()
    private_key = X25519PrivateKey.generate()
    raw = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return _encode_identity(raw), _encode_recipient(_public_bytes(private_key))


def is_age_file(first_bytes):
    """Tell whether data starting with first_bytes is a (binary) age v1 file."""
    return bytes(first_bytes[:len(MAGIC)]) == MAGIC


# --- primitives shared by writer and reader -----------------------------------------------------------------

def _hkdf(key_material, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key_material)


def _b64encode(data):
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text, what):
    """Decode canonical unpadded base64 as age requires; anything else means a corrupted header."""
    if _BASE64.match(text) is None or len(text) % 4 == 1:
        raise CryptoError("header is corrupted (%s is not valid base64)" % what)
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise CryptoError("header is corrupted (%s is not canonical base64)" % what)
    return data


def _scrypt_key(passphrase, salt, log_n):
    return Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1).derive(passphrase)


def _header_mac(file_key, header_up_to_dashes):
    return hmac.new(_hkdf(file_key, b"", b"header"), header_up_to_dashes, hashlib.sha256).digest()


def _payload_cipher(file_key, nonce):
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))


def _aead_takes_buffers():
    """Tell whether ChaCha20Poly1305 encrypts from any buffer; older releases (Debian 12 ships 38) need bytes."""
    try:
        ChaCha20Poly1305(bytes(32)).encrypt(_ZERO_NONCE, bytearray(1), None)
    except TypeError:
        return False
    return True


def _passphrase_bytes(passphrase):
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes) or not passphrase:
        raise UsageError("the passphrase must be a non-empty string")
    return passphrase


def _check_one_key_source(keys, passphrase, keys_name):
    if (keys is None) == (passphrase is None):
        raise UsageError("give either %s or a passphrase, exactly one of them" % keys_name)


# --- writing ------------------------------------------------------------------------------------------------

def _stanza(arguments, body):
    encoded = _b64encode(body)
    # The body ends with a line shorter than 64 columns, empty if the last full line ends it exactly.
    lines = [encoded[start:start + 64] for start in range(0, len(encoded) + 1, 64)]
    return b"-> " + b" ".join(arguments) + b"\n" + b"".join(line + b"\n" for line in lines)


def _x25519_stanza(file_key, recipient_key):
    ephemeral = X25519PrivateKey.generate()
    share = _public_bytes(ephemeral)
    try:
        shared_secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_key))
    except ValueError:
        raise UsageError("the recipient %s is not a usable X25519 public key (low-order point)"
                         % _encode_recipient(recipient_key)) from None
    wrap_key = _hkdf(shared_secret, share + recipient_key, _X25519_INFO)
    return _stanza([b"X25519", _b64encode(share)], ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None))


def _scrypt_stanza(file_key, passphrase, log_n):
    salt = os.urandom(16)
    wrap_key = _scrypt_key(passphrase, salt, log_n)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return _stanza([b"scrypt", _b64encode(salt), str(log_n).encode("ascii")], body)


def _recipient_stanzas(file_key, recipients, passphrase, scrypt_log_n):
    _check_one_key_source(recipients, passphrase, "recipients")
    if passphrase is not None:
        return [_scrypt_stanza(file_key, _passphrase_bytes(passphrase), scrypt_log_n)]
    if isinstance(recipients, str) or not recipients:
        raise UsageError("recipients must be a non-empty list; %s" % _RECIPIENT_FORMAT)
    return [_x25519_stanza(file_key, _recipient_key(recipient)) for recipient in recipients]


def _header(file_key, stanzas):
    up_to_dashes = MAGIC + b"".join(stanzas) + b"---"
    return up_to_dashes + b" " + _b64encode(_header_mac(file_key, up_to_dashes)) + b"\n"


class AgeWriter:
    """Encrypt a stream to an age file written to sink (anything with write(bytes)).

    The header is written at once; close() writes the final chunk and leaves the sink open.
    Used as a context manager, an exception skips the final chunk, so a partial stream never
    becomes a valid age file.
    """

    def __init__(self, sink, recipients=None, passphrase=None, _scrypt_log_n=SCRYPT_LOG_N):
        _require_cryptography()
        file_key = os.urandom(FILE_KEY_SIZE)
        stanzas = _recipient_stanzas(file_key, recipients, passphrase, _scrypt_log_n)
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        self._sink = sink
        self._cipher = _payload_cipher(file_key, nonce)
        self._needs_bytes = not _aead_takes_buffers()
        self._counter = 0
        self._reserved = 0
        self._shared_chunk = self._shared = None
        self._pending = bytearray()
        self._closed = False
        sink.write(_header(file_key, stanzas) + nonce)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            self.close()

    def _encrypt(self, index, plaintext, last):
        if self._needs_bytes:
            plaintext = bytes(plaintext)
        return self._cipher.encrypt(_CHUNK_NONCE.pack(index, last), plaintext, None)

    def _seal(self, plaintext, last):
        if self._counter == self._shared_chunk:
            # This chunk starts with the last reserved bytes: seal_reserved() seals it with them.
            self._shared = (bytes(plaintext[self._reserved % CHUNK_SIZE:]), last)
            if not last:
                self._sink.skip(ENCRYPTED_CHUNK_SIZE)
        else:
            self._sink.write(self._encrypt(self._counter, plaintext, last))
        self._counter += 1

    def reserve(self, size):
        """Leave the payload's first size bytes to seal_reserved(); what is written meanwhile follows them.

        Returns how many bytes of the file to leave free now, for the chunks that hold reserved bytes only.
        A chunk holding both is left free (through the sink's skip()) once complete. With size a whole number
        of chunks, the data written after it must not be empty: only an empty payload ends with an empty chunk.
        """
        if self._counter or self._pending:
            raise ValueError("room can be reserved only before any data is written")
        self._reserved = size
        self._counter = size // CHUNK_SIZE
        if size % CHUNK_SIZE:
            self._shared_chunk = self._counter
            self._pending = bytearray(size % CHUNK_SIZE)
        return self._counter * ENCRYPTED_CHUNK_SIZE

    def seal_reserved(self, plaintext):
        """After close(): the ciphertext of the chunks holding the reserved bytes, given exactly those bytes."""
        if len(plaintext) != self._reserved:
            raise ValueError("the reserved room holds exactly %d bytes" % self._reserved)
        whole = self._reserved // CHUNK_SIZE
        with memoryview(plaintext) as view:
            sealed = [self._encrypt(index, view[index * CHUNK_SIZE:(index + 1) * CHUNK_SIZE], False)
                      for index in range(whole)]
            if self._shared is not None:
                data, last = self._shared
                sealed.append(self._encrypt(whole, bytes(view[whole * CHUNK_SIZE:]) + data, last))
        return b"".join(sealed)

    def write(self, data):
        """Encrypt data; return its length. A full chunk is held back until it is known not to be the last."""
        if self._closed:
            raise ValueError("write to a closed AgeWriter")
        pending = self._pending
        with memoryview(data) as raw, raw.cast("B") as view:
            size = len(view)
            position = 0
            while position < size:
                if len(pending) == CHUNK_SIZE:
                    self._seal(pending, False)
                    pending.clear()
                elif not pending and size - position > CHUNK_SIZE:
                    self._seal(view[position:position + CHUNK_SIZE], False)
                    position += CHUNK_SIZE
                else:
                    taken = min(CHUNK_SIZE - len(pending), size - position)
                    pending += view[position:position + taken]
                    position += taken
        return size

    def close(self):
        """Write the final chunk (empty only if nothing was written). The sink stays open."""
        if not self._closed:
            self._seal(self._pending, True)
            self._pending = bytearray()
            self._closed = True


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


def _read_stanza_body(lines):
    """Return (decoded body, raw lines) of a stanza body: base64 lines of 64 columns, then a shorter one."""
    raw = []
    while True:
        line = lines.header_line()
        if _BODY_LINE.match(line) is None:
            raise CryptoError("header is corrupted (a stanza body line is not base64 of at most 64 columns)")
        raw.append(line)
        if len(line) < 65:
            encoded = b"".join(raw)
            return _b64decode(encoded.replace(b"\n", b""), "a stanza body"), encoded


def _read_header(source):
    """Parse the header; return (stanzas, header bytes up to '---', MAC, bytes already read after it)."""
    lines = _HeaderLines(source)
    _check_version_line(lines.readline(len(MAGIC)))
    stanzas = []
    up_to_dashes = [MAGIC]
    line = lines.header_line()
    while not line.startswith(b"---"):
        if _ARGUMENT_LINE.match(line) is None:
            raise CryptoError("header is corrupted (expected a '-> ' stanza or the '---' MAC line)")
        body, raw_body = _read_stanza_body(lines)
        stanzas.append(_Stanza(line[3:-1].split(b" "), body))
        up_to_dashes += [line, raw_body]
        line = lines.header_line()
    if not stanzas:
        raise CryptoError("header is corrupted (it has no recipient stanza)")
    if len(line) != 48 or not line.startswith(b"--- "):
        raise CryptoError("header is corrupted (malformed MAC line)")
    up_to_dashes.append(b"---")
    return stanzas, b"".join(up_to_dashes), _b64decode(line[4:-1], "the header MAC"), lines.rest()


def _x25519_keys(identities):
    """Return [(private key, public bytes)] for a list of identities (each a key or an identity file's text)."""
    if isinstance(identities, str):
        identities = [identities]
    keys = []
    for text in identities:
        for identity in parse_identities(text):
            private_key = X25519PrivateKey.from_private_bytes(_identity_key(identity))
            keys.append((private_key, _public_bytes(private_key)))
    if not keys:
        raise UsageError("no identity given to decrypt with; %s" % _IDENTITY_FORMAT)
    return keys


def _x25519_shared_secret(private_key, share):
    try:
        shared_secret = private_key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:
        shared_secret = bytes(32)
    if not any(shared_secret):
        raise CryptoError("header is corrupted (an X25519 stanza has a low-order ephemeral share)")
    return shared_secret


def _unwrap_x25519(stanza, keys):
    """Return the file key if one of keys opens this X25519 stanza, else None."""
    if len(stanza.arguments) != 2 or len(stanza.body) != 32:
        raise CryptoError("header is corrupted (malformed X25519 stanza)")
    share = _b64decode(stanza.arguments[1], "an X25519 ephemeral share")
    if len(share) != 32:
        raise CryptoError("header is corrupted (malformed X25519 stanza)")
    for private_key, public_key in keys:
        wrap_key = _hkdf(_x25519_shared_secret(private_key, share), share + public_key, _X25519_INFO)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            continue
    return None


def _scrypt_work_factor(argument):
    if _WORK_FACTOR.match(argument) is None:
        raise CryptoError("header is corrupted (malformed scrypt work factor)")
    if len(argument) > 2 or int(argument) > MAX_SCRYPT_LOG_N:
        raise CryptoError("the file's passphrase work factor 2^%s exceeds the limit of 2^%d (it would need more "
                          "than 4 GiB of memory); refusing to decrypt it"
                          % (argument.decode("ascii"), MAX_SCRYPT_LOG_N))
    return int(argument)


def _unwrap_scrypt(stanza, passphrase):
    if len(stanza.arguments) != 3 or len(stanza.body) != 32:
        raise CryptoError("header is corrupted (malformed scrypt stanza)")
    salt = _b64decode(stanza.arguments[1], "the scrypt salt")
    if len(salt) != 16:
        raise CryptoError("header is corrupted (malformed scrypt stanza)")
    wrap_key = _scrypt_key(passphrase, salt, _scrypt_work_factor(stanza.arguments[2]))
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        raise WrongKeyError("wrong passphrase") from None


def _unwrap_file_key(stanzas, identities, passphrase):
    _check_one_key_source(identities, passphrase, "identities")
    is_passphrase_file = any(stanza.arguments[0] == b"scrypt" for stanza in stanzas)
    if is_passphrase_file and len(stanzas) > 1:
        raise CryptoError("header is corrupted (a passphrase stanza must be the only stanza)")
    if passphrase is not None:
        if not is_passphrase_file:
            raise WrongKeyError("this file is encrypted to recipients (public keys), not with a passphrase; "
                                "give an identity to decrypt it")
        return _unwrap_scrypt(stanzas[0], _passphrase_bytes(passphrase))
    if is_passphrase_file:
        raise WrongKeyError("this file is encrypted with a passphrase, not to recipients; give the passphrase")
    keys = _x25519_keys(identities)
    for stanza in stanzas:
        if stanza.arguments[0] == b"X25519":
            file_key = _unwrap_x25519(stanza, keys)
            if file_key is not None:
                return file_key
    raise WrongKeyError("no identity matches any recipient of this file")


class AgeReader(io.RawIOBase):
    """Decrypt an age file read from source (anything with read(n)), as a binary file-like object.

    The header is checked on construction, so a wrong key fails before any plaintext is produced.
    Every chunk is authenticated before its plaintext is returned. The source is not closed.
    """

    def __init__(self, source, identities=None, passphrase=None):
        super().__init__()
        _require_cryptography()
        self._source = source
        stanzas, up_to_dashes, mac, self._unread = _read_header(source)
        file_key = _unwrap_file_key(stanzas, identities, passphrase)
        if not hmac.compare_digest(_header_mac(file_key, up_to_dashes), mac):
            raise CryptoError("header is corrupted (MAC mismatch)")
        nonce = self._read_exact(PAYLOAD_NONCE_SIZE)
        if len(nonce) < PAYLOAD_NONCE_SIZE:
            raise CryptoError("file is truncated (the payload nonce is missing)")
        self._cipher = _payload_cipher(file_key, nonce)
        self._counter = 0
        self._next_chunk = self._read_exact(ENCRYPTED_CHUNK_SIZE)
        self._finished = False
        self._plaintext = b""
        self._offset = 0

    def _read_exact(self, size):
        """Read size bytes from the source (fewer only at its end), first using what the header read left."""
        parts = []
        if self._unread:
            parts.append(self._unread[:size])
            self._unread = self._unread[size:]
            size -= len(parts[0])
        while size > 0:
            block = self._source.read(size)
            if not block:
                break
            parts.append(block)
            size -= len(block)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def _chunk_error(self, chunk, index, last):
        """Explain why a chunk failed: a full chunk that opens with the other flag tells what happened."""
        if len(chunk) == ENCRYPTED_CHUNK_SIZE and self._opens(chunk, index, not last):
            if last:
                return CryptoError("file is truncated (the final chunk is missing)")
            return CryptoError("trailing data after the final chunk")
        reason = "corrupted or tampered"
        if last:
            reason += ", or the file was cut short or appended to"
        return CryptoError("chunk %d of the payload failed authentication (%s); its plaintext starts at byte %d"
                           % (index + 1, reason, index * CHUNK_SIZE))

    def _opens(self, chunk, index, last):
        try:
            self._cipher.decrypt(_CHUNK_NONCE.pack(index, last), chunk, None)
        except InvalidTag:
            return False
        return True

    def _decrypt_next_chunk(self):
        """Authenticate and decrypt the next chunk; the read-ahead chunk tells whether it is the last one."""
        chunk = self._next_chunk
        index = self._counter
        if len(chunk) == ENCRYPTED_CHUNK_SIZE:
            self._next_chunk = self._read_exact(ENCRYPTED_CHUNK_SIZE)
            last = not self._next_chunk
        else:
            self._next_chunk = b""
            last = True
        if len(chunk) < TAG_SIZE:
            if not chunk:
                raise CryptoError("file is truncated (the final chunk is missing)")
            raise CryptoError("file is truncated (chunk %d of the payload is cut short)" % (index + 1))
        try:
            plaintext = self._cipher.decrypt(_CHUNK_NONCE.pack(index, last), chunk, None)
        except InvalidTag:
            raise self._chunk_error(chunk, index, last) from None
        if last and index and not plaintext:
            raise CryptoError("the final chunk is empty, which the age format forbids (corrupted file)")
        self._counter += 1
        self._finished = last
        return plaintext

    def _take(self, size):
        """Return up to size bytes of plaintext (the whole chunk without copying when it fits); b'' at the end."""
        if self._offset == len(self._plaintext):
            if self._finished:
                return b""
            self._plaintext = self._decrypt_next_chunk()
            self._offset = 0
        start = self._offset
        if start == 0 and size >= len(self._plaintext):
            self._offset = len(self._plaintext)
            return self._plaintext
        self._offset = min(start + size, len(self._plaintext))
        return self._plaintext[start:self._offset]

    def close(self):
        self._is_closed = True
        super().close()

    def _check_open(self):
        # A flag of our own: pylint takes IOBase.closed for a method and the test for a constant.
        if getattr(self, "_is_closed", False):
            raise ValueError("I/O operation on a closed AgeReader")

    def readable(self):
        return True

    def read(self, size=-1):
        """Return size bytes of plaintext (fewer only at the end), or all the rest if size is negative."""
        self._check_open()
        if size is None or size < 0:
            return self.readall()
        parts = []
        while size > 0:
            part = self._take(size)
            if not part:
                break
            parts.append(part)
            size -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self):
        self._check_open()
        return b"".join(iter(lambda: self._take(CHUNK_SIZE), b""))

    def readinto(self, buffer):
        """Fill buffer with plaintext; return the number of bytes, less than its size only at the end."""
        self._check_open()
        with memoryview(buffer) as raw, raw.cast("B") as view:
            filled = 0
            while filled < len(view):
                part = self._take(len(view) - filled)
                if not part:
                    break
                view[filled:filled + len(part)] = part
                filled += len(part)
        return filled
