# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog's journal of database restores: what a killed restore left the database in, and how to put it back.

    <backup_dir>/.restores/database-<engine>-<key>.json    one database's restore: flocked by the restore while it runs

(A file restore's journal lies beside, as files-*.json: _restore/journal.py.)

A restore that changes a live database writes its record (the backup it loads, its safety backup) before the first
change and removes it once the database is restored or put back. SIGKILL cannot be caught: a record that no
running process holds is what such a restore left, found by the next restore of that database and by health.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket

from .._errors import LockedError
from .._fileio import unheld
from .layout import RESTORES_DIR, ensure_dir, iso_utc, utc_now

PREFIX = "database-"


def _path(backup_dir, engine, database):
    key = hashlib.sha256(json.dumps([engine, database]).encode()).hexdigest()[:16]
    return os.path.join(backup_dir, RESTORES_DIR, "%s%s-%s.json" % (PREFIX, engine, key))


def _read(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    data = b"".join(iter(lambda: os.read(fd, 65536), b""))
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:
        return None  # killed before its record was written: nothing had changed yet
    return record if isinstance(record, dict) else None


def put_back_command(safety_backup_id):
    return ("lifeboat restore %s --file-key FILE (or the lifeboat.backup.restore module with id: %s)"
            % (safety_backup_id, safety_backup_id))


def describe_restore(record):
    """What state a restore's record says the database is in, and the one command that puts it back."""
    where = "%s database %s" % (record.get("engine"), record.get("database"))
    what = "the restore of %s into %s (pid %s on %s, %s) %s" % (
        record.get("backup_id"), where, record.get("pid"), record.get("host"), record.get("started_at"),
        record.get("state") or "was killed midway")
    if record.get("safety_backup_id"):
        return "%s: the database may be partly restored; put it back as it was with: %s" % (
            what, put_back_command(record["safety_backup_id"]))
    if not record.get("existed"):
        return "%s: the database did not exist before and may be partly restored; drop it, or restore it again" % what
    return "%s: the database may be partly restored and no safety backup was taken; restore the backup you want " \
           "into it" % what


class RestoreJournal:
    """One database's record, held (flock) from before its safety backup until the restore ends.

    previous: the record of a restore of the same database that was killed, else None."""

    def __init__(self, backup_dir, engine, database):
        self.path = _path(backup_dir, engine, database)
        self.record = {"engine": engine, "database": database, "pid": os.getpid(), "host": socket.gethostname(),
                       "started_at": iso_utc(utc_now())}
        ensure_dir(os.path.dirname(self.path))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = _read(self._fd) or {}
            os.close(self._fd)
            raise LockedError("%s database %s is being restored by another process (pid %s on %s, since %s)" % (
                engine, database, running.get("pid", "?"), running.get("host", "?"), running.get("started_at", "?")),
                stage="lock") from None
        self.previous = _read(self._fd)

    def write(self, **fields):
        """Record (before the change it describes): the file is rewritten in place and synced."""
        self.record.update(fields)
        data = json.dumps(self.record, sort_keys=True).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def remove(self):
        """The database is as the result says: nothing left to put back."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)  # releases the flock: a record left now is an interrupted restore's
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def interrupted_restores(backup_dir):
    """The records that no running restore holds, each with its "problem" (describe_restore()); reads, never writes."""
    directory = os.path.join(backup_dir, RESTORES_DIR)
    found = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if not name.startswith(PREFIX):
            continue
        path = os.path.join(directory, name)
        with unheld(path, shared=True) as fd:
            record = _read(fd) if fd is not None else None  # None too: held by the restore running now
        if record is not None:  # empty: killed before its first change, nothing to put back
            found.append(dict(record, path=path, problem=describe_restore(record)))
    return found
