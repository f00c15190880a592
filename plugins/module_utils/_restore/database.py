# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring database dumps, with a safety dump of the current database that is put back on failure.

PostgreSQL custom dumps go to ``pg_restore --clean --if-exists --single-transaction --no-owner`` on
stdin: one transaction, so a failure leaves the database as it was. Plain dumps hold no DROP
statements: the database is recreated empty and the SQL loaded by ``psql --single-transaction``.
MariaDB/MySQL dumps (DROP TABLE IF EXISTS before each table) are loaded by the client, which stops
at the first error. An SQLite file is written beside the live one, checked with
``PRAGMA integrity_check`` and renamed over it. Secrets reach the tools through PGPASSWORD or a
0600 defaults file, never argv.

"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

from .. import _catalog
from .._db import make_target
from .._dump import DumpRequest, run_dump
from .._errors import BackupError, IntegrityError, UsageError
from .._fileio import READ_SIZE, hash_file
from .._members import check_archive_path
from .._pipeline import artifact_layers, open_payload
from .._tarstream import TarReader
from .._tools import clean_private_directories, private_directory
from .._verify import compare_checksum, expected_sha256
from .request import SAFETY_TAG, catalog_dir, safety_encryption


def _dump_member(tar, directory):
    """Extract the dump tar (names checked) into directory; return the path of the database dump in it."""
    found = None
    for member in tar:
        check_archive_path(member.name.rstrip("/"))
        path = os.path.join(directory, member.name.rstrip("/"))
        if member.kind == "dir":
            os.makedirs(path, 0o700, exist_ok=True)
        elif member.kind == "file":
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            with open(path, "xb") as handle:
                for chunk in iter(lambda: tar.read(READ_SIZE), b""):
                    handle.write(chunk)
        else:
            raise IntegrityError("the dump archive holds %s, which is neither a file nor a directory" % member.name,
                                 stage="untar")
        top = member.name.split("/", 1)[0]
        if top.startswith("database."):
            found = os.path.join(directory, top)
    if found is None:
        raise IntegrityError("the dump archive holds no database.* member", stage="untar")
    return found


class DatabaseRestore:
    """One restore of a database backup, with its safety dump and the rollback to it."""

    def __init__(self, request, artifact, metadata):
        if metadata is None or metadata.get("kind") != "database":
            raise UsageError("%s has no database metadata beside it: restore it by its id in the catalog, or "
                             "with its .json sidecar present" % artifact)
        self.request = request
        self.artifact = artifact
        self.metadata = metadata
        self.engine = metadata["engine"]
        self.dump_format = metadata.get("dump_format") or "custom"
        self.tar_payload = metadata["artifact"][len(metadata["id"]):].startswith(".tar")
        self.catalog = catalog_dir(artifact, metadata, request)
        self.scratch = _catalog.private_dir(self.catalog)  # the extracted dump, MariaDB's defaults file
        database = request.target_database or metadata["database"]
        self.target = make_target(self.engine, database, request.connection, self.scratch)

    def run(self, check_mode=False):
        started = time.monotonic()
        self.target.check_load(self.dump_format)
        exists = self.target.exists()
        result = {"id": self.metadata["id"], "path": self.artifact, "kind": "database", "engine": self.engine,
                  "database": self.target.database, "created": not exists, "safety_backup_id": None,
                  "rolled_back": False, "warnings": []}
        if check_mode:
            return dict(result, changed=True, duration=0.0,
                        msg="would restore %s into %s database %s%s" % (self.metadata["id"], self.engine,
                                                                        self.target.database,
                                                                        "" if exists else " (created)"))
        clean_private_directories(self.scratch)  # what a killed restore left, in plaintext
        compare_checksum(self.artifact, expected_sha256(self.artifact, self.metadata), hash_file(self.artifact))
        with contextlib.ExitStack() as stack:
            journal = None
            if self.target.changes_live_before_success:
                journal = stack.enter_context(_catalog.RestoreJournal(self.catalog, self.engine, self.target.database))
            safety_id, existed = self._before(journal, exists, result)
            result["safety_backup_id"] = safety_id
            signals = stack.enter_context(_SignalsRaise())
            try:
                if journal is not None:
                    journal.write(backup_id=self.metadata["id"], safety_backup_id=safety_id, existed=existed)
                if not exists:
                    self.target.create()
                self.load(self.artifact, self.metadata)
            except BaseException as exc:
                signals.disarm()  # a second signal must not cut the roll-back short
                error = exc if isinstance(exc, BackupError) else BackupError(
                    "restoring %s failed unexpectedly (%s: %s)" % (self.metadata["id"], type(exc).__name__, exc),
                    stage="restore")
                self._roll_back(error, safety_id, existed, journal)
                if error is exc:
                    raise
                raise error from exc
            if journal is not None:
                journal.remove()
        return dict(result, changed=True, duration=round(time.monotonic() - started, 3),
                    msg="restored %s into %s database %s" % (self.metadata["id"], self.engine, self.target.database))

    def _before(self, journal, exists, result):
        """(safety backup id, whether the database existed) to put the database back to if this restore fails.

        After a killed restore of the same database, the database may be partly restored: its safety backup,
        taken before that restore, is the one to go back to, not a dump of what it left."""
        previous = journal.previous if journal is not None else None
        if previous is not None:
            result["warnings"].append("%s; this restore takes its place, and goes back to that if it fails"
                                      % _catalog.describe_restore(previous))
            return previous.get("safety_backup_id"), previous.get("existed", exists)
        safety = self._safety_dump() if exists and self.request.safety_backup else None
        return (safety["id"] if safety else None), exists

    def _safety_dump(self):
        connection = self.request.connection if self.engine != "sqlite" else {}
        request = DumpRequest(self.engine, self.target.database, self.metadata["job"],
                              backup_dir=self.catalog,
                              tags=[SAFETY_TAG], **safety_encryption(self.artifact, self.metadata, self.request),
                              description="taken before restoring %s" % self.metadata["id"],
                              lock_timeout=self.request.lock_timeout, **connection)
        return run_dump(request)

    def load(self, artifact, metadata):
        """Decrypt, decompress and feed the dump; its digest must be the recorded one."""
        compression, encrypted = artifact_layers(artifact, metadata)
        with open(artifact, "rb") as handle:
            payload, _raw = open_payload(handle, compression, encrypted, self.request.key)
            if self.tar_payload:
                self._load_tar(payload)
                return
            digest = self.target.load(payload, self.dump_format, metadata.get("content_sha256"))
        if metadata.get("content_sha256") not in (None, digest):
            raise IntegrityError("the decrypted dump does not match its recorded SHA-256", stage="payload")

    def _load_tar(self, payload):
        with private_directory(self.scratch) as directory:
            self.target.load_file(_dump_member(TarReader(payload), directory), self.dump_format)

    def _roll_back(self, exc, safety_id, existed, journal):
        """Put the database back as it was: the safety dump, or no database if there was none."""
        exc.result.update(rolled_back=False, safety_backup_id=safety_id)
        if not self.target.changes_live_before_success:
            return
        try:
            if safety_id is not None:
                artifact, metadata = _catalog.locate(self.catalog, safety_id)
                DatabaseRestore(self.request, artifact, metadata).load(artifact, metadata)
            elif not existed:
                self.target.drop()
            else:
                journal.write(state="failed (%s), and no safety backup was taken" % exc.msg)
                exc.msg += "; no safety backup was taken: the database may be partly restored"
                return
        except Exception as again:  # pylint: disable=broad-except
            journal.write(state="failed (%s), and putting the database back failed too (%s)" % (exc.msg, again))
            exc.msg += "; putting the database back failed too (%s): %s" % (
                again, "put it back with: " + _catalog.put_back_command(safety_id) if safety_id
                else "drop the database, which did not exist before")
            return
        journal.remove()
        exc.result["rolled_back"] = True
        exc.msg += "; the database was put back as it was%s" % (
            " from the safety backup %s" % safety_id if safety_id else " (the new database was dropped)")


class _SignalsRaise:
    """SIGTERM, SIGINT and SIGHUP raise a BackupError where the restore is, so that it is rolled back like any
    failure; disarmed, they are ignored until the roll-back ends. (SIGKILL cannot be caught: the journal says
    what such a restore left.) Python runs signal handlers in the main thread only: elsewhere this does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self):
        self.armed = True
        self._previous = {}

    def _handler(self, signum, _frame):
        if self.armed:
            self.armed = False
            raise BackupError("interrupted by %s" % signal.Signals(signum).name, stage="restore")

    def disarm(self):
        self.armed = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handler) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False
