# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The write side of every artifact: payload -> compression -> age -> SHA-256 -> atomic file.

And the read side: file -> SHA-256 -> age -> decompression -> payload.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from . import _age
from ._atomic import AtomicFile, storage_error, temp_prefix
from ._compression import SUFFIXES, open_compressor, open_decompressor, resolve_level
from ._errors import UsageError

AGE_SUFFIX = ".age"


def encryption_method(recipients, passphrase):
    if recipients and passphrase:
        raise UsageError("give either recipients or passphrase, not both: an age file has either X25519 "
                         "recipients or a single scrypt passphrase")
    if recipients:
        for recipient in recipients:
            _age.parse_recipient(recipient)
        return "x25519"
    return "scrypt" if passphrase else "none"


def artifact_suffix(base, compression, encrypted):
    """'tar' + zstd + age -> '.tar.zst.age': the suffixes say how to open the file by hand."""
    return ".%s%s%s" % (base, SUFFIXES[compression], AGE_SUFFIX if encrypted else "")


class _HashingSink:
    """Hashes and counts what reaches the disk: the digest that the .sha256 sidecar records."""

    def __init__(self, target):
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return self._target.write(data)


class ArtifactWriter:
    """One artifact being written; nothing exists under its final name before commit()."""

    def __init__(self, final_path, compression="zstd", level=None, recipients=None, passphrase=None,
                 content_digest=False):
        self.method = encryption_method(recipients, passphrase)
        self.level = resolve_level(compression, level)
        self.compression = compression
        self.recipients = list(recipients or [])
        self._file = AtomicFile(final_path)
        try:
            self._sink = _HashingSink(self._file)
            self._age = None
            if self.method != "none":
                self._age = _age.AgeWriter(self._sink, recipients=recipients or None, passphrase=passphrase or None)
            self._compressor = open_compressor(compression, self._age or self._sink, self.level)
        except BaseException:
            self._file.abort()
            raise
        self._content = hashlib.sha256() if content_digest else None
        self.input_size = 0

    @property
    def final_path(self):
        return self._file.final_path

    def write(self, data):
        if self._content is not None:
            self._content.update(data)
        self.input_size += len(data)
        self._compressor.write(data)

    def end_frame(self):
        """End the compressed frame written so far; write_compressed() then appends frames compressed elsewhere.

        zstd and gzip streams may be concatenated frames: decompressors read them as one stream.
        """
        self._compressor.close()
        self._compressor = None

    def write_compressed(self, data):
        (self._age or self._sink).write(data)

    def commit(self):
        """Finish every layer, make the file durable and visible; return its digests and sizes."""
        try:
            if self._compressor is not None:
                self._compressor.close()
            if self._age is not None:
                self._age.close()
        except BaseException:
            self._file.abort()
            raise
        self._file.commit()
        result = {"sha256": self._sink.sha256.hexdigest(), "size": self._sink.size, "input_size": self.input_size}
        if self._content is not None:
            result["content_sha256"] = self._content.hexdigest()
        return result

    def abort(self):
        self._file.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


class Spool:
    """Compressed data parked beside the artifact until its place in the artifact is known.

    When the artifact is encrypted, so is the spool: with ChaCha20 under a key that exists only in this
    process's memory, so no plaintext reaches the disk. Its name is a temporary file's: a run killed
    meanwhile leaves a leftover that the catalog reports and prune removes.
    """

    def __init__(self, final_path, encrypted):
        self.final_path = final_path
        try:
            fd, self.path = tempfile.mkstemp(prefix=temp_prefix(final_path), dir=os.path.dirname(final_path))
        except OSError as exc:
            raise storage_error(exc, final_path) from exc
        self._file = os.fdopen(fd, "w+b", buffering=1 << 20)
        self._key = (os.urandom(32), os.urandom(16)) if encrypted else None
        self._encryptor = _age.stream_cipher(*self._key).encryptor() if encrypted else None
        self._out = bytearray(0)

    def _output(self, size):
        """A reused buffer for update_into: four times faster than update(), which allocates every time.

        64 bytes of room beyond the data: older cryptography releases ask for a block's worth of slack.
        """
        if len(self._out) < size + 64:
            self._out = bytearray(size + 64)
        return memoryview(self._out)

    def write(self, data):
        try:
            if self._encryptor is None:
                self._file.write(data)
            else:
                out = self._output(len(data))
                self._file.write(out[:self._encryptor.update_into(data, out)])
        except OSError as exc:
            raise storage_error(exc, self.final_path) from exc

    def replay(self, write):
        """Hand everything written back, in order, to write() (which must copy what it keeps)."""
        try:
            self._file.flush()
            self._file.seek(0)
        except OSError as exc:
            raise storage_error(exc, self.final_path) from exc
        decryptor = _age.stream_cipher(*self._key).decryptor() if self._key else None
        chunk = bytearray(1 << 20)
        while True:
            count = self._file.readinto(chunk)
            if not count:
                return
            if decryptor is None:
                write(memoryview(chunk)[:count])
            else:
                out = self._output(count)
                write(out[:decryptor.update_into(memoryview(chunk)[:count], out)])

    def close(self):
        try:
            self._file.close()
        except OSError:
            pass  # a full disk may refuse the last flush: the unlink below is what matters
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _HashingSource:
    def __init__(self, source):
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self):
        return True

    def read(self, size=-1):
        data = self._source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def open_payload(handle, compression, encrypted, identities=None, passphrase=None):
    """Wrap an open artifact file: returns (payload reader, hashing source of the raw bytes)."""
    raw = _HashingSource(handle)
    layer = raw
    if encrypted:
        if not identities and not passphrase:
            raise UsageError("this artifact is encrypted: give identity (an AGE-SECRET-KEY-1... string) "
                             "or passphrase to read it")
        layer = _age.AgeReader(raw, identities=identities or None, passphrase=passphrase or None)
    return open_decompressor(compression, layer), raw


def artifact_layers(path, metadata=None):
    """(compression, encrypted) of an artifact: from its metadata, or from its file name without one."""
    compression, encrypted = describe_artifact(path)
    if metadata:
        compression = metadata.get("compression", {}).get("algorithm", compression)
        encrypted = metadata.get("encryption", {}).get("method", "none") != "none"
    return compression, encrypted


def describe_artifact(path):
    """(compression, encrypted) from an artifact's file name, for artifacts without metadata."""
    name = os.path.basename(path)
    encrypted = name.endswith(AGE_SUFFIX)
    stem = name[:-len(AGE_SUFFIX)] if encrypted else name
    for algorithm, suffix in SUFFIXES.items():
        if suffix and stem.endswith(suffix):
            return algorithm, encrypted
    return "none", encrypted
