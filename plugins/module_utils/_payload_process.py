# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An artifact's payload decrypted and decompressed in a child process, read back through a pipe.

Threads of one process take turns on the GIL, so age and zstd in a thread do not overlap with the
restore's own Python work; a forked child has a GIL of its own and runs on the other CPU. The child
reads the whole artifact (every layer checks its own end), writes the payload into a pipe, then
reports on a second pipe either the SHA-256 of the raw artifact or the error that stopped it, which
the parent raises again, with its type and message, where the payload ends.

The child never outlives the parent: when the parent dies or stops reading, the child's next write
into the pipe fails (EPIPE) and it exits.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal

from ._errors import BackupError
from ._pipeline import open_payload

BLOCK_SIZE = 1 << 20  # what one read or write on the pipe moves at most
PIPE_SIZE = 1 << 20  # the default /proc/sys/fs/pipe-max-size: a larger pipe needs privileges
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # the fcntl module names it from Python 3.10 on


def write_all(fd, data):
    """os.write until all of data is written (a pipe or a signal may take less at once)."""
    written = os.write(fd, data)
    if written != len(data):
        view = memoryview(data)
        while written < len(view):
            written += os.write(fd, view[written:])


def _pump(handle, layers, data_fd):
    """The child's work: the payload into data_fd; returns the raw artifact's SHA-256."""
    payload, raw = open_payload(handle, *layers)
    read = payload.read
    block = read(BLOCK_SIZE)
    while block:
        write_all(data_fd, block)
        block = read(BLOCK_SIZE)
    return raw.sha256.hexdigest()


def _report(exc):
    """The child's error as the parent will raise it: itself when it survives pickling."""
    try:
        return pickle.dumps(exc)
    except Exception:  # pylint: disable=broad-except
        return pickle.dumps(BackupError("reading the artifact failed: %s: %s" % (type(exc).__name__, exc),
                                        stage="read"))


def _child(handle, layers, data_fd, status_fd):
    """Runs in the forked child; never returns (os._exit: the parent's cleanup is the parent's)."""
    code = 1
    try:
        try:
            status = pickle.dumps(_pump(handle, layers, data_fd))
        except BrokenPipeError:
            return  # the parent stopped reading: it needs nothing more
        except BaseException as exc:  # pylint: disable=broad-except
            status = _report(exc)
        os.close(data_fd)  # the parent sees the payload's end before it reads the status
        write_all(status_fd, status)
        code = 0
    finally:
        os._exit(code)  # pylint: disable=protected-access


class PayloadProcess:
    """The payload of an open artifact file, produced by a child process; read() hands out zero-copy slices.

    read() raises the child's error at the point where the payload stops; after the end (b''), raw_sha256
    holds the SHA-256 of the whole artifact. close() ends the child if it still runs.
    """

    def __init__(self, handle, compression, encrypted, identities=None, passphrase=None):
        self.raw_sha256 = None
        self._view = memoryview(b"")
        self._pos = 0
        data_fd, data_w = os.pipe()
        try:
            fcntl.fcntl(data_w, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only means more round trips
        status_fd, status_w = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:
            os.close(data_fd)
            os.close(status_fd)
            _child(handle, (compression, encrypted, identities, passphrase), data_w, status_w)
        os.close(data_w)
        os.close(status_w)
        self._data_fd, self._status_fd = data_fd, status_fd

    def read(self, size=-1):
        """Up to size bytes of the payload (a memoryview, valid for good); b'' at its end."""
        if self._pos >= len(self._view):
            if self._data_fd is None:
                return b""
            block = os.read(self._data_fd, BLOCK_SIZE)
            if not block:
                self._finish()
                return b""
            self._view, self._pos = memoryview(block), 0
        start = self._pos
        self._pos = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        return self._view[start:self._pos]

    def drain(self):
        """Read to the end of the payload: the layers check their ends, the raw digest covers the whole file."""
        while self.read(BLOCK_SIZE):
            pass

    def _finish(self):
        """At the payload's end: the child's report, raised when it is an error."""
        os.close(self._data_fd)
        self._data_fd = None
        chunks = []
        chunk = os.read(self._status_fd, BLOCK_SIZE)
        while chunk:
            chunks.append(chunk)
            chunk = os.read(self._status_fd, BLOCK_SIZE)
        _pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not chunks:
            raise BackupError("the process decrypting and decompressing the artifact ended without a result "
                              "(exit code %d)" % os.waitstatus_to_exitcode(status), stage="read")
        report = pickle.loads(b"".join(chunks))
        if isinstance(report, BaseException):
            raise report
        self.raw_sha256 = report

    def close(self):
        for fd in (self._data_fd, self._status_fd):
            if fd is not None:
                os.close(fd)
        self._data_fd = self._status_fd = None
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)  # stopped early: what it would still produce is not wanted
            os.waitpid(self._pid, 0)
            self._pid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
