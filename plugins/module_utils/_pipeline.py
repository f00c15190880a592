# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The write side of every artifact: payload -> compression -> age -> SHA-256 -> atomic file.

And the read side: file -> SHA-256 -> age -> decompression -> payload.

Each stage of the write side writes into the next, its sink, through three calls: write(data) appends;
skip(count) leaves count bytes to be filled later and goes on after them; write_at(offset, data) fills such room.
AgeWriter, _HashingSink and AtomicFile are sinks. The room an archive keeps at its start for its manifest, which
is complete only at the end, relies on skip() and write_at() (ArtifactWriter.reserve).
"""

from __future__ import annotations

import hashlib
import os

from . import _age
from ._fileio import AbortsOnError, AtomicFile
from ._compression import SUFFIXES, open_compressor, open_decompressor, resolve_level
from ._errors import UsageError

AGE_SUFFIX = ".age"


def encryption_method(recipients, passphrase, seal=None):
    if seal is not None:
        return seal.method
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
    """Hashes and counts what reaches the disk: the digest that the .sha256 sidecar records.

    Once part of the file is left to be written last (ArtifactWriter's reserve), it only counts.
    """

    def __init__(self, target):
        self._target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        if self.sha256 is not None:
            self.sha256.update(data)
        self.size += len(data)
        return self._target.write(data)

    def skip(self, count):
        self.size += count
        self._target.skip(count)


class ArtifactWriter(AbortsOnError):
    """One artifact being written; nothing exists under its final name before commit()."""

    def __init__(self, final_path, compression="zstd", level=None, recipients=None, passphrase=None,
                 content_digest=False, reserve=0, seal=None):
        """reserve: keep that many bytes at the start of the payload, before what write() compresses, for the
        data given to commit() once the rest is written. The file's SHA-256 is then computed by reading it back.
        seal: an _age.Seal, instead of recipients or passphrase: sealed as another file is."""
        self.method = encryption_method(recipients, passphrase, seal)
        self.level = resolve_level(compression, level)
        self.compression = compression
        self.recipients = list(recipients or [])
        self._file = AtomicFile(final_path)
        try:
            self._sink = _HashingSink(self._file)
            self._age = None
            if self.method != "none":
                self._age = _age.AgeWriter(self._sink, recipients=recipients or None, passphrase=passphrase or None,
                                           seal=seal)
            self._reserved = self._reserve(reserve) if reserve else None
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

    def _reserve(self, size):
        """(offset, size) of the room: the file's SHA-256 can no longer be computed on the way."""
        offset = self._sink.size
        self._sink.sha256 = None
        self._file.skip(self._age.reserve(size) if self._age else size)
        return offset, size

    @property
    def content_sha256(self):
        """SHA-256 of the payload written so far (with content_digest), else None."""
        return self._content.hexdigest() if self._content is not None else None

    def commit(self, reserved=None, read_back=None):
        """Finish every layer, make the file durable and visible; return its digests and sizes.

        reserved: the bytes that fill the room kept at the start (exactly its size), compressed data that
        begins the stream.
        read_back: check(handle, key), which reads the whole file, once durable, again from the disk and raises on
        anything that does not match; key (an _age.Key of this file's own key, None unencrypted) opens it. It
        returns the SHA-256 of the bytes it read, which is then the file's: one read serves both. The file gets
        its name only if check returns.
        """
        if (reserved is None) != (self._reserved is None) or (reserved and len(reserved) != self._reserved[1]):
            raise ValueError("commit(reserved) must fill exactly the room that reserve kept")
        try:
            self._compressor.close()
            if self._age is not None:
                self._age.close()
            if reserved is not None:
                self._file.write_at(self._reserved[0], self._age.seal_reserved(reserved) if self._age else reserved)
            if read_back is not None:
                key = _age.Key(file_key=self._age.file_key) if self._age else None
                sha256, size = self._file.read_back(lambda handle: read_back(handle, key))
            elif reserved is None:
                sha256, size = self._sink.sha256.hexdigest(), self._sink.size
            else:
                sha256, size = self._file.sync_and_sha256()
        except BaseException:
            self._file.abort()
            raise
        self._file.commit()
        result = {"sha256": sha256, "size": size, "input_size": self.input_size}
        if self._content is not None:
            result["content_sha256"] = self._content.hexdigest()
        return result

    def abort(self):
        self._file.abort()


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


def open_payload(handle, compression, encrypted, key=None):
    """Wrap an open artifact file: returns (payload reader, hashing source of the raw bytes). key: an _age.Key."""
    raw = _HashingSource(handle)
    layer = raw
    if encrypted:
        if key is None:
            raise UsageError("this artifact is encrypted: give identity (an AGE-SECRET-KEY-1... string) "
                             "or passphrase to read it")
        layer = _age.AgeReader(raw, key)
    return open_decompressor(compression, layer), raw


def header_result(backup_id, path, handle, encrypted, earlier=None):
    """What a task that opens an artifact gives back when the key waits on the controller: the artifact's age header
    (its recipient stanzas and MAC: public, a few hundred bytes), from which the key's holder unwraps the file key
    of this one artifact; null for an artifact that is not encrypted. earlier, for a backup (not a lone file):
    [(artifact, metadata)] of the backups before it in its incremental chain, which the task opens too: their
    headers are chain_headers."""
    header = _age.read_header_bytes(handle).decode("ascii") if encrypted else None
    result = {"changed": False, "id": backup_id, "path": path, "header": header,
              "msg": ("the age header of %s" if encrypted else "%s is not encrypted") % (backup_id or path)
              + (" and of the %d backup(s) before it in its chain" % len(earlier) if earlier else "")}
    if earlier is not None:
        result["chain_headers"] = []
        for artifact, metadata in earlier:
            if artifact_layers(artifact, metadata)[1]:
                with open(artifact, "rb") as earlier_handle:
                    result["chain_headers"].append(_age.read_header_bytes(earlier_handle).decode("ascii"))
    return result


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
