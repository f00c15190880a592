# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A copy fetched from a vault into scratch space, readable while it arrives.

A restore from a vault reads the copy as `rclone cat | age -d | zstd -d | tar -x` would: a thread downloads the
artifact into a file, and the restore's reader (ArrivingFile, which the restore's decoder process also reads) waits
at the file's end for more until the download says it ended. What arrives is hashed on the way and checked against
the copy's sidecar, and the restore checks the same digest of what it read: a copy that was damaged or cut short
is never restored. The sidecars are written first, so that the restore finds the backup as it finds a local one.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

from .. import _catalog
from .._errors import BackupError, IntegrityError, VaultError
from .._fileio import READ_SIZE, storage_error, write_atomic
from .copies import check_digest

POLL_SECONDS = 0.005  # how long a reader at the end of what arrived waits before it looks again
STATUS_NAME = "arrival"  # arrival-<id> beside the job directory in the scratch space: "ok", or why it failed


class Arrival:
    """The download of one copy (copies.Copy) into directory/<job>/, as a catalog lays a backup out."""

    def __init__(self, vault, copy, directory):
        self.vault = vault
        self.copy = copy
        job = _catalog.job_of(copy.backup_id)
        target = _catalog.ensure_dir(os.path.join(directory, job))
        name = _catalog.check_artifact_name(job, copy.backup_id, copy.metadata.get("artifact"))
        self.path = os.path.join(target, name)
        self.size = copy.artifact.size
        self.status_path = os.path.join(directory, "%s-%s" % (STATUS_NAME, copy.backup_id))
        _catalog.write_sidecars(self.path, dict(copy.metadata, sha256=copy.sha256))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, self.path) from exc
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._download, args=(fd,), name="vault download", daemon=True)
        self._thread.start()

    def _download(self, fd):
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb", buffering=0) as target, self.vault.store.open(self.copy.artifact) as stream:
                while not self._stop.is_set():
                    chunk = stream.read(READ_SIZE)
                    if not chunk:
                        break
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[target.write(view):]
            if not self._stop.is_set():
                check_digest(self.copy, digest.hexdigest())
        except BackupError as exc:
            self.error = exc
        except OSError as exc:
            self.error = storage_error(exc, self.path)
        write_atomic(self.status_path, b"ok" if self.error is None else self.error.msg.encode("utf-8", "replace"))

    def open(self):
        """A reader of the artifact as it arrives (a new one per call: the restore reads it twice)."""
        return ArrivingFile(self.path, self.size, self.status_path)

    def wait(self):
        """The artifact's path once all of it arrived and matched its sidecar; the download's error otherwise."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.path

    def stop(self):
        """End the download (a restore that failed or needs no more of it) and wait for its thread."""
        self._stop.set()
        self._thread.join()


class ArrivingFile:
    """A binary reader of a file being downloaded: at the end of what arrived it waits, until size bytes were read
    or the download's status says it ended. A plain descriptor: the restore's decoder process reads it after fork."""

    def __init__(self, path, size, status_path):
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._size = size
        self._status_path = status_path
        self._offset = 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = max(self._size - self._offset, 0)
        buffer = bytearray(size)
        count = self.readinto(buffer)
        del buffer[count:]
        return bytes(buffer)

    def readinto(self, buffer):
        while True:
            count = os.readv(self._fd, [buffer])
            if count or self._offset >= self._size or not len(buffer):
                self._offset += count
                return count
            status = self._status()
            if status is None:
                time.sleep(POLL_SECONDS)
                continue
            if status != "ok":
                raise VaultError("the copy stopped arriving after %d of %d bytes: %s"
                                 % (self._offset, self._size, status), stage="vault")
            count = os.readv(self._fd, [buffer])  # the download wrote everything before its status
            if not count:
                raise IntegrityError("the copy ended after %d of %d bytes" % (self._offset, self._size),
                                     stage="vault")
            self._offset += count
            return count

    def _status(self):
        try:
            with open(self._status_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
