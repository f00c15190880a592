# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""External tools run by the engine: list-form argv, stderr drained and kept short, secrets scrubbed from messages,
a tool found on PATH or named with the package that brings it, and private scratch directories."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading

from ._errors import BackupError, MissingDependencyError
from ._fileio import READ_SIZE, unheld

STDERR_TAIL_BYTES = 2048
SCRUBBED = "********"


def scrub(text, secret):
    """The text with every occurrence of the secret masked."""
    if secret:
        return text.replace(secret, SCRUBBED)
    return text


def find_client(names, package):
    """Absolute path of the first client program found on PATH; the message names the package that brings it."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise MissingDependencyError("%s not found on PATH: install the Debian package %s"
                                 % (" or ".join(names), package), stage="connect")


def describe_exit(returncode):
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return "killed by signal %d (%s)" % (-returncode, name)
    return "exited with status %d" % returncode


class StderrTail:
    """Drains a pipe in a thread (a chatty tool must never block on a full pipe) and keeps its end."""

    def __init__(self, pipe):
        self._pipe = pipe
        self._chunks = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        for chunk in iter(lambda: self._pipe.read1(65536), b""):
            self._chunks.append(chunk)
            self._size += len(chunk)
            while self._size - len(self._chunks[0]) >= STDERR_TAIL_BYTES:
                self._size -= len(self._chunks.popleft())

    def text(self):
        """The last STDERR_TAIL_BYTES of what the tool wrote, once it closed its stderr."""
        self._thread.join()
        self._pipe.close()
        return b"".join(self._chunks)[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace").strip()


class ToolProcess:
    """A dump or query tool run with list-form argv, its stderr drained concurrently."""

    def __init__(self, argv, stage, env=None, secret=None, stdout=subprocess.PIPE):
        self.stage = stage
        self.secret = secret
        try:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, env=env, close_fds=True)
        except OSError as exc:
            raise MissingDependencyError("cannot run %s: %s" % (argv[0], exc), stage=stage) from exc
        self.stdout = self.process.stdout
        self._stderr = StderrTail(self.process.stderr)

    def _failure(self, what):
        stderr = self._stderr.text()
        message = "%s %s" % (os.path.basename(self.process.args[0]), what)
        if stderr:
            message += ": " + stderr
        return BackupError(scrub(message, self.secret), stage=self.stage)

    def kill(self):
        """Stop the tool at once (the consumer gave up) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self._close_stdout()
        self.process.wait()
        self._stderr.text()

    def _close_stdout(self):
        if self.stdout is not None:
            self.stdout.close()

    def finish(self, require_eof=True):
        """Wait for the tool; raise BackupError unless it exited 0 and its output was read to the end."""
        if require_eof and self.stdout is not None and self.stdout.read(1):
            self.kill()
            raise BackupError(scrub("the output of %s was not read to its end" % self.process.args[0],
                                    self.secret), stage=self.stage)
        self._close_stdout()
        returncode = self.process.wait()
        if returncode != 0:
            raise self._failure(describe_exit(returncode))
        self._stderr.text()

    def output(self):
        """All of stdout (small query results), after a successful exit."""
        data = self.stdout.read()
        self.finish()
        return data.decode("utf-8")


PRIVATE_PREFIX = "lifeboat-dump-"


@contextlib.contextmanager
def private_directory(tmp_parent):
    """A 0700 directory for snapshots, dump directories and defaults files, removed on every path.

    It is held with flock while in use: clean_private_directories() removes only what a killed run left."""
    while True:
        path = tempfile.mkdtemp(prefix=PRIVATE_PREFIX, dir=tmp_parent)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)  # a cleaner removed it between mkdtemp and flock
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def clean_private_directories(parent):
    """Remove the private directories in parent that no running process holds: a killed run's leftovers."""
    for name in os.listdir(parent):
        if name.startswith(PRIVATE_PREFIX):
            path = os.path.join(parent, name)
            with unheld(path, os.O_DIRECTORY) as fd:
                if fd is not None:
                    shutil.rmtree(path, ignore_errors=True)


class FeedProcess:
    """A restore tool reading the dump on stdin; list-form argv, stderr drained, secret scrubbed."""

    def __init__(self, argv, stage, env=None, secret=None):
        self.stage = stage
        self.secret = secret
        try:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                close_fds=True)
        except OSError as exc:
            raise MissingDependencyError("cannot run %s: %s" % (argv[0], exc), stage=stage) from exc
        self._stderr = StderrTail(self.process.stderr)

    def feed(self, reader):
        """Copy the reader to the tool's stdin; a tool that stops reading early is reported by finish()."""
        digest = hashlib.sha256()
        try:
            for chunk in iter(lambda: reader.read(READ_SIZE), b""):
                digest.update(chunk)
                self.process.stdin.write(chunk)
            self.process.stdin.close()
        except BrokenPipeError:
            self.finish()
            raise BackupError("%s stopped reading its input" % os.path.basename(self.process.args[0]),
                              stage=self.stage) from None
        except BaseException:
            self.kill()
            raise
        return digest.hexdigest()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.wait()
        self._stderr.text()

    def finish(self):
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        returncode = self.process.wait()
        stderr = self._stderr.text()
        if returncode != 0:
            message = "%s %s" % (os.path.basename(self.process.args[0]), describe_exit(returncode))
            if stderr:
                message += ": " + stderr
            raise BackupError(scrub(message, self.secret), stage=self.stage)
