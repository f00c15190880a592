# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog's writer lock: one writer at a time per backup directory."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time

from .._errors import LockedError
from .layout import LOCK_NAME, ensure_dir, iso_utc, utc_now


class CatalogLock:
    """Exclusive lock on <backup_dir>/.lock; the holder's pid and host are written in for the error message."""

    def __init__(self, backup_dir, timeout=0.0):
        self.path = os.path.join(backup_dir, LOCK_NAME)
        self.timeout = timeout
        self._fd = None

    def __enter__(self):
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
        os.pwrite(fd, ("pid %d on %s since %s" % (os.getpid(), socket.gethostname(), iso_utc(utc_now())))
                  .encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None
        return False
