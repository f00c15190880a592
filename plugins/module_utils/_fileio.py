# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File I/O: files that appear whole or not at all (temporary file beside the target, fsync, rename, fsync of the
directory), reads that never follow a symlink swapped in, file hashing, and write errors an operator can act on."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import io
import os
import tempfile

from ._errors import StorageError

TEMP_MARKER = ".tmp-"
READ_SIZE = 1 << 20


def hash_file(path):
    """SHA-256 of a file's content, read without following a symlink swapped in meanwhile."""
    digest = hashlib.sha256()
    with open_nofollow(path) as handle:
        # Most files are small: one read of the whole file; large ones in 1 MiB pieces of one buffer.
        data = handle.read(READ_SIZE)
        digest.update(data)
        if len(data) == READ_SIZE:
            buffer = bytearray(READ_SIZE)
            view = memoryview(buffer)
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                digest.update(view[:count])
    return digest.hexdigest()


def open_nofollow(path):
    """Open a regular file for reading; a symlink swapped in after the walk fails instead of being followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb", buffering=0)


@contextlib.contextmanager
def unheld(path, flags=0, shared=False):
    """The open descriptor of path (never through a symlink) while no other process holds flock on it, else None:
    how a run's leftovers are told from the files of a run in progress, which holds them locked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags)
    except OSError:
        yield None
        return
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def temp_prefix(final_path):
    """Prefix of the temporary files made for final_path; the catalog recognises them as leftovers."""
    return ".%s%s" % (os.path.basename(final_path), TEMP_MARKER)


def drop_cache(fd):
    """Evict the file's pages from the page cache, so that the next read of it comes from the disk. Only clean pages
    go: fsync first. On tmpfs the cache is the storage, and nothing is dropped."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(exc, path):
    """Translate an OSError during a write into a message an operator can act on."""
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the filesystem holding %s" % os.path.dirname(path)
    elif exc.errno == errno.EDQUOT:
        reason = "disk quota exceeded on the filesystem holding %s" % os.path.dirname(path)
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "cannot write to %s (%s)" % (os.path.dirname(path), exc.strerror)
    else:
        reason = "%s while writing %s" % (exc.strerror or exc, path)
    return StorageError("%s; the partial file was removed and existing files are untouched" % reason, stage="write")


class AbortsOnError:
    """A with-block that ends in an exception calls abort(): nothing half-written is left behind."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


class AtomicFile(AbortsOnError):
    """A binary file written under a temporary name and renamed into place by commit().

    Until commit() nothing exists under the final name; abort() (or leaving a
    with-block on an exception) removes the temporary file.
    """

    def __init__(self, final_path, mode=0o600, buffering=1 << 20):
        self.final_path = final_path
        self.directory = os.path.dirname(final_path) or "."
        try:
            fd, self.temp_path = tempfile.mkstemp(prefix=temp_prefix(final_path), dir=self.directory)
        except OSError as exc:
            raise storage_error(exc, final_path) from exc
        os.fchmod(fd, mode)
        self._file = os.fdopen(fd, "wb", buffering=buffering)
        self._done = False

    @contextlib.contextmanager
    def _cleaning_up(self):
        """An OSError removes the temporary file and becomes a StorageError an operator can act on."""
        try:
            yield
        except OSError as exc:
            self.abort()
            raise storage_error(exc, self.final_path) from exc

    def write(self, data):
        try:  # the hot path: a plain try, not the context manager's call per write
            return self._file.write(data)
        except OSError as exc:
            self.abort()
            raise storage_error(exc, self.final_path) from exc

    def skip(self, count):
        """Leave count bytes unwritten here (a hole until write_at() fills them); writing goes on after them."""
        with self._cleaning_up():
            self._file.seek(count, os.SEEK_CUR)

    def write_at(self, offset, data):
        """Write data at offset, whatever was written after it."""
        with self._cleaning_up():
            self._file.flush()
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.pwrite(self._file.fileno(), view[written:], offset + written)

    def sync_and_sha256(self):
        """Make everything written durable; return its (SHA-256, size), read back while fsync runs (both
        wait on the kernel, not on each other, so the hash costs no time of its own)."""
        with self._cleaning_up():
            self._file.flush()
            fd = self._file.fileno()
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                synced = pool.submit(os.fsync, fd)
                digest = hash_file(self.temp_path)
                synced.result()
            return digest, os.fstat(fd).st_size

    def read_back(self, check):
        """Make everything written durable, then read the file again from the disk through check(handle), which
        reads it whole; returns (what check returns, the file's size). An exception check raises passes through."""
        with self._cleaning_up():
            self._file.flush()
            fd = self._file.fileno()
            os.fsync(fd)
            # Read straight after writing, the file would come from the page cache, which holds what was handed to
            # the kernel: a write the drive, its controller or the filesystem lost or garbled would go unseen.
            drop_cache(fd)
            with open_nofollow(self.temp_path) as raw, io.BufferedReader(raw, READ_SIZE) as handle:
                return check(handle), os.fstat(fd).st_size

    def commit(self):
        with self._cleaning_up():
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(self.temp_path, self.final_path)
            fsync_dir(self.directory)
        self._done = True

    def abort(self):
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        except OSError:
            pass  # the close of a file on a full disk may fail again; the unlink below is what matters
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass


def write_atomic(path, data, mode=0o600):
    """Write bytes to path atomically."""
    with AtomicFile(path, mode=mode, buffering=0) as handle:
        handle.write(data)
        handle.commit()
