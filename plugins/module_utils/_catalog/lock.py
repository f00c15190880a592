# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog's writer lock: one writer at a time per backup directory."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
import time

from .._errors import LockedError
from .._fileio import unheld
from .layout import LOCK_NAME, ensure_dir, iso_utc, utc_now

_HELD = threading.local()  # lock paths this thread holds -> depth: a restore holds the lock its safety backup takes


def owner():
    """What the holder writes into the lock file, before " since <time>"."""
    return "pid %d on %s" % (os.getpid(), socket.gethostname())


class CatalogLock:
    """Exclusive lock on <backup_dir>/.lock; the holder's pid and host are written in for the error message.

    Reentrant within a thread: a restore holds the lock for its whole run, and the safety backup it takes
    inside enters it again instead of waiting for itself.
    """

    def __init__(self, backup_dir, timeout=0.0):
        self.path = os.path.join(os.path.realpath(backup_dir), LOCK_NAME)
        self.timeout = timeout
        self._fd = None

    def __enter__(self):
        held = _HELD.__dict__.setdefault("depth", {})
        if held.get(self.path):
            held[self.path] += 1
            return self
        ensure_dir(os.path.dirname(self.path))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                    os.close(fd)
                    raise LockedError("the backup directory %s is locked by another run (%s); wait for it to "
                                      "finish or raise lock_timeout" % (os.path.dirname(self.path), holder),
                                      stage="lock")
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("%s since %s" % (owner(), iso_utc(utc_now()))).encode(), 0)
        self._fd = fd
        held[self.path] = 1
        return self

    def __exit__(self, *exc):
        held = _HELD.depth
        held[self.path] -= 1
        if held[self.path] == 0:
            del held[self.path]
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        return False


def lock_holder(backup_dir):
    """What the lock's holder wrote ("pid N on HOST since T"), or None when nobody holds it; changes nothing."""
    path = os.path.join(backup_dir, LOCK_NAME)
    with unheld(path, shared=True) as fd:
        if fd is not None or not os.path.exists(path):
            return None
    with open(path, "rb") as handle:
        return handle.read(200).decode("utf-8", "replace").strip() or "another process"
