# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: an online backup of the file (consistent while the application writes) and the restore target (a new
file checked with PRAGMA integrity_check and renamed over the live one)."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import sqlite3
import stat
import tempfile
import urllib.request

from .._errors import BackupError, IntegrityError, SourceError
from .._fileio import READ_SIZE, fsync_dir, storage_error, unheld
from .._tools import private_directory
from .base import MIGRATION_QUERIES, Dumper, DumpSource, Target, schema_version_of


class SqliteDumper(Dumper):
    """Online backup of an SQLite file (consistent while the application writes, WAL included)."""

    engine = "sqlite"
    suffix = "sqlite"

    def __init__(self, database, connection=None, **common):
        super().__init__(database, connection, **common)
        self.snapshot = None

    def _connect_source(self):
        if not os.path.isfile(self.database):
            raise SourceError("SQLite database %s does not exist" % self.database, stage="connect")
        try:
            uri = "file:%s?mode=ro" % urllib.request.pathname2url(os.path.abspath(self.database))
            return sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise SourceError("cannot open SQLite database %s: %s" % (self.database, exc), stage="connect") from exc

    def check(self):
        connection = self._connect_source()
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise SourceError("%s is not a readable SQLite database: %s" % (self.database, exc),
                              stage="connect") from exc
        finally:
            connection.close()
        return {"server_version": sqlite3.sqlite_version, "client": sqlite3.__file__}

    def inspect(self):
        """Describes the snapshot while open() runs, else the live file within one read transaction."""
        connection = sqlite3.connect(self.snapshot) if self.snapshot else self._connect_source()
        try:
            connection.execute("BEGIN")
            names = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name")]
            tables = {name: connection.execute("SELECT count(*) FROM %s" % _sqlite_ident(name)).fetchone()[0]
                      for name in names}
            schema_version = _sqlite_schema_version(connection, set(names))
        except sqlite3.Error as exc:
            raise SourceError("cannot read SQLite database %s: %s" % (self.database, exc), stage="inspect") from exc
        finally:
            connection.close()
        return self.description(sqlite3.sqlite_version, tables, schema_version, "exact")

    def _take_snapshot(self, path):
        source = self._connect_source()
        try:
            target = sqlite3.connect(path)
            try:
                source.backup(target)
                # One self-contained file: the copy must not depend on a -wal file that is not streamed.
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise SourceError("cannot snapshot %s: %s" % (self.database, exc), stage="sqlite snapshot") from exc
        finally:
            source.close()

    def _check_integrity(self, path):
        connection = sqlite3.connect(path)
        try:
            result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        except sqlite3.Error as exc:
            result = [str(exc)]
        finally:
            connection.close()
        if result != ["ok"]:
            first_lines = "\n".join(result).splitlines()[:5]
            raise SourceError("integrity check of a snapshot of %s failed: %s"
                              % (self.database, "; ".join(first_lines)), stage="sqlite integrity_check")

    @contextlib.contextmanager
    def open(self):
        with private_directory(self.tmp_parent) as private:
            path = os.path.join(private, "snapshot.sqlite")
            self._take_snapshot(path)
            self._check_integrity(path)
            self.snapshot = path
            try:
                with open(path, "rb") as stream:
                    yield DumpSource(stream=stream)
                    if stream.read(1):
                        raise BackupError("the snapshot of %s was not read to its end" % self.database,
                                          stage="sqlite snapshot")
            finally:
                self.snapshot = None


def _sqlite_ident(name):
    return '"' + name.replace('"', '""') + '"'


def _sqlite_schema_version(connection, tables):
    for name, query in MIGRATION_QUERIES:
        if name in tables:
            return schema_version_of(connection.execute(query.format(table=_sqlite_ident(name))))
    return None


class SqliteTarget(Target):
    """An SQLite file, replaced by a rename once the new file passed PRAGMA integrity_check."""

    engine = "sqlite"
    changes_live_before_success = False  # the live file is only ever replaced by the final rename

    def __init__(self, database, connection):
        super().__init__(os.path.abspath(database), connection)

    def exists(self):
        return os.path.isfile(self.database)

    def create(self):
        """Nothing to do: the file appears with the rename."""

    def drop(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.database)

    def _keep_owner_and_mode(self, fd):
        """The new file replaces the live one: the application must still be able to open it."""
        if not os.path.exists(self.database):
            return
        live = os.stat(self.database)
        os.fchmod(fd, live.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.fchown(fd, live.st_uid, live.st_gid)

    def _temp_prefix(self):
        directory, name = os.path.split(self.database)
        return os.path.join(directory, "." + name + ".lifeboat-restore-")

    def _clean_leftovers(self):
        """Remove the copies (and moved-aside -wal, -shm, -journal) of killed restores; a running one holds flock."""
        prefix = self._temp_prefix()
        for path in sorted(glob.glob(glob.escape(prefix) + "*")):
            base = re.sub(r"-(wal|shm|journal)$", "", path)
            if base != path:
                if not os.path.lexists(base):  # moved aside just before the final rename
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                continue
            with unheld(path) as fd:  # a restore in progress holds its copy
                if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
                    os.unlink(path)

    def load(self, reader, dump_format, expected_sha256=None):
        del dump_format, expected_sha256  # the digest is checked by the caller
        prefix = self._temp_prefix()
        try:
            self._clean_leftovers()
            fd, temp = tempfile.mkstemp(prefix=os.path.basename(prefix), dir=os.path.dirname(prefix))
        except OSError as exc:
            raise storage_error(exc, self.database) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held until the copy is renamed or removed
                self._keep_owner_and_mode(fd)
                digest = hashlib.sha256()
                for chunk in iter(lambda: reader.read(READ_SIZE), b""):
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
                self._check_integrity(temp)
                self._replace(temp)
        except OSError as exc:
            raise storage_error(exc, self.database) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return digest.hexdigest()

    def _check_integrity(self, path):
        try:
            connection = sqlite3.connect(path)
            try:
                result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            finally:
                connection.close()
        except sqlite3.Error as exc:
            result = [str(exc)]
        if result != ["ok"]:
            raise IntegrityError("the restored SQLite file fails PRAGMA integrity_check (%s); %s is untouched"
                                 % ("; ".join(result[:3]), self.database), stage="sqlite integrity_check")

    def _replace(self, temp):
        """Checkpoint the live WAL, move -wal/-shm aside, rename: the old WAL is never replayed onto the new file."""
        if os.path.exists(self.database):
            connection = sqlite3.connect(self.database)
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # not a WAL database, or not one at all: it is replaced either way
            finally:
                connection.close()
        aside = []
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(self.database + suffix):
                moved = temp + suffix
                os.rename(self.database + suffix, moved)
                aside.append(moved)
        os.rename(temp, self.database)
        fsync_dir(os.path.dirname(self.database))
        for moved in aside:
            os.unlink(moved)
