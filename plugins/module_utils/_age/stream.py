# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The age payload: AgeWriter and AgeReader, the header then 64 KiB ChaCha20-Poly1305 chunks, the last one flagged."""

from __future__ import annotations

import io
import os
import struct

from .._errors import CryptoError
from .header import encode_header, read_header
from .key import FILE_KEY_SIZE
from .primitives import ZERO_NONCE, hkdf, require_cryptography
from .recipients import SCRYPT_LOG_N, recipient_stanzas

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
except ImportError:  # pragma: no cover - require_cryptography() reports it before any use
    pass

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
PAYLOAD_NONCE_SIZE = 16
# 11-byte big-endian chunk counter (3 zero bytes + 64 bits) and the last-chunk flag.
_CHUNK_NONCE = struct.Struct(">3xQ?")


def _payload_cipher(file_key, nonce):
    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))


def _aead_takes_buffers():
    """Tell whether ChaCha20Poly1305 encrypts from any buffer; older releases (Debian 12 ships 38) need bytes."""
    try:
        ChaCha20Poly1305(bytes(32)).encrypt(ZERO_NONCE, bytearray(1), None)
    except TypeError:
        return False
    return True


class AgeWriter:
    """Encrypt a stream to an age file written to sink (anything with write(bytes)).

    The header is written at once; close() writes the final chunk and leaves the sink open.
    Used as a context manager, an exception skips the final chunk, so a partial stream never
    becomes a valid age file. file_key: this file's key, which opens it and no other (Key(file_key=...)).
    """

    def __init__(self, sink, recipients=None, passphrase=None, _scrypt_log_n=SCRYPT_LOG_N, seal=None):
        require_cryptography()
        if seal is not None:  # sealed as another file (a Seal): its stanzas and file key
            self.file_key = file_key = seal.file_key
            stanzas = [seal.stanzas]
        else:
            self.file_key = file_key = os.urandom(FILE_KEY_SIZE)
            stanzas = recipient_stanzas(file_key, recipients, passphrase, _scrypt_log_n)
        nonce = os.urandom(PAYLOAD_NONCE_SIZE)
        self._sink = sink
        self._cipher = _payload_cipher(file_key, nonce)
        self._needs_bytes = not _aead_takes_buffers()
        self._counter = 0
        self._reserved = 0
        self._shared_chunk = self._shared = None
        self._pending = bytearray()
        self._closed = False
        sink.write(encode_header(file_key, stanzas) + nonce)

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


class AgeReader(io.RawIOBase):
    """Decrypt an age file read from source (anything with read(n)) with key (a Key), as a binary file-like object.

    The header is checked on construction, so a wrong key fails before any plaintext is produced.
    Every chunk is authenticated before its plaintext is returned. The source is not closed.
    """

    def __init__(self, source, key):
        super().__init__()
        require_cryptography()
        self._source = source
        stanzas, up_to_dashes, mac, self._unread = read_header(source)
        file_key = key.open(stanzas, up_to_dashes, mac)
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
