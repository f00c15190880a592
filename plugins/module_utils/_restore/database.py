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

import os
import time

from .. import _catalog
from .._db import TARGETS
from .._dump import DumpRequest, run_dump
from .._errors import BackupError, IntegrityError, UsageError
from .._fileio import READ_SIZE, hash_file
from .._members import check_archive_path
from .._pipeline import artifact_layers, open_payload
from .._tarstream import TarReader
from .._tools import private_directory
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
        database = request.target_database or metadata["database"]
        self.target = TARGETS[self.engine](database, request.connection)

    def run(self, check_mode=False):
        started = time.monotonic()
        exists = self.target.exists()
        result = {"id": self.metadata["id"], "path": self.artifact, "kind": "database", "engine": self.engine,
                  "database": self.target.database, "created": not exists, "safety_backup_id": None,
                  "rolled_back": False, "warnings": []}
        if check_mode:
            return dict(result, changed=True, duration=0.0,
                        msg="would restore %s into %s database %s%s" % (self.metadata["id"], self.engine,
                                                                        self.target.database,
                                                                        "" if exists else " (created)"))
        compare_checksum(self.artifact, expected_sha256(self.artifact, self.metadata), hash_file(self.artifact))
        safety = self._safety_dump() if exists and self.request.safety_backup else None
        if safety is not None:
            result["safety_backup_id"] = safety["id"]
        try:
            if not exists:
                self.target.create()
            self.load(self.artifact, self.metadata)
        except BackupError as exc:
            self._roll_back(exc, safety, exists, result)
            raise
        return dict(result, changed=True, duration=round(time.monotonic() - started, 3),
                    msg="restored %s into %s database %s" % (self.metadata["id"], self.engine, self.target.database))

    def _safety_dump(self):
        recipients, passphrase = safety_encryption(self.metadata, self.request)
        connection = self.request.connection if self.engine != "sqlite" else {}
        request = DumpRequest(self.engine, self.target.database, self.metadata["job"],
                              backup_dir=catalog_dir(self.artifact, self.metadata, self.request),
                              recipients=recipients, passphrase=passphrase, tags=[SAFETY_TAG],
                              description="taken before restoring %s" % self.metadata["id"],
                              lock_timeout=self.request.lock_timeout, **connection)
        return run_dump(request)

    def load(self, artifact, metadata):
        """Decrypt, decompress and feed the dump; its digest must be the recorded one."""
        compression, encrypted = artifact_layers(artifact, metadata)
        with open(artifact, "rb") as handle:
            payload, _raw = open_payload(handle, compression, encrypted, self.request.identities,
                                         self.request.passphrase)
            if self.tar_payload:
                self._load_tar(payload)
                return
            digest = self.target.load(payload, self.dump_format)
        if metadata.get("content_sha256") not in (None, digest):
            raise IntegrityError("the decrypted dump does not match its recorded SHA-256", stage="payload")

    def _load_tar(self, payload):
        parent = catalog_dir(self.artifact, self.metadata, self.request)
        with private_directory(parent) as directory:
            self.target.load_file(_dump_member(TarReader(payload), directory), self.dump_format)

    def _roll_back(self, exc, safety, existed, result):
        """Put the database back as it was: the safety dump, or no database if there was none."""
        exc.result.update(rolled_back=False, safety_backup_id=result["safety_backup_id"])
        if not self.target.changes_live_before_success:
            return
        try:
            if safety is not None:
                metadata = dict(safety["metadata"], _metadata_path=_restore_metadata_path(safety["path"]))
                rollback = DatabaseRestore(self.request, safety["path"], metadata)
                rollback.load(safety["path"], metadata)
            elif not existed:
                self.target.drop()
            else:
                return
        except BackupError as again:
            exc.msg += "; putting the database back failed too (%s)%s" % (
                again, ", the safety backup is %s" % safety["id"] if safety else "")
            return
        exc.result["rolled_back"] = True
        exc.msg += "; the database was put back as it was%s" % (
            " from the safety backup %s" % safety["id"] if safety else " (the new database was dropped)")


def _restore_metadata_path(artifact):
    return _catalog.strip_artifact_suffix(artifact) + _catalog.METADATA_SUFFIX
