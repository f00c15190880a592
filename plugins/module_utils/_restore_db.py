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

restore_backup() is the entry point for any backup: files backups go to _restore.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import tempfile
import time

from . import _catalog, _restore
from ._atomic import fsync_dir, storage_error
from ._dump import DumpRequest, run_dump
from ._dumpers import (StderrTail, mysql_defaults_file, sql_literal, describe_exit, find_client, make_dumper,
                       private_directory, scrub, ToolProcess)
from ._errors import BackupError, IntegrityError, MissingDependencyError, UsageError
from ._manifest import hash_file
from ._pipeline import artifact_layers, open_payload
from ._tarstream import TarReader
from ._verify import compare_checksum, expected_sha256

READ_SIZE = 1 << 20
PG_MAINTENANCE_DB = "postgres"


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


class PostgresTarget:
    """A PostgreSQL database to restore into."""

    engine = "postgresql"
    changes_live_before_success = True

    def __init__(self, database, connection):
        self.database = database
        self.connection = connection
        self._dumper = make_dumper("postgresql", PG_MAINTENANCE_DB, **connection)

    def _env(self):
        env = dict(os.environ)
        if self._dumper.password is not None:
            env["PGPASSWORD"] = self._dumper.password
        env.setdefault("PGCONNECT_TIMEOUT", "15")
        return env

    def _argv(self, name, args):
        return [find_client(self.engine, [name])] + self._dumper.connection + ["--no-password"] + args

    def _execute(self, sql, stage):
        argv = self._argv("psql", ["-XAtq", "-v", "ON_ERROR_STOP=1", "--dbname=" + PG_MAINTENANCE_DB, "-c", sql])
        ToolProcess(argv, stage, env=self._env(), secret=self._dumper.password,
                    stdout=subprocess.DEVNULL).finish(require_eof=False)

    def exists(self):
        return bool(self._dumper.query_json("SELECT count(*) FROM pg_database WHERE datname = %s"
                                            % sql_literal(self.database)))

    def create(self):
        self._execute('CREATE DATABASE "%s"' % self.database.replace('"', '""'), "create database")

    def drop(self):
        self._execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.database.replace('"', '""'),
                      "drop database")

    def load(self, reader, dump_format):
        """Stream a custom or plain dump in; return the SHA-256 of what was fed."""
        if dump_format == "plain":
            self.drop()  # a plain dump has no DROP statements: it needs an empty database
            self.create()
            args = ["-Xq", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname=" + self.database]
            tool = FeedProcess(self._argv("psql", args), "psql", env=self._env(), secret=self._dumper.password)
        else:
            args = ["--clean", "--if-exists", "--single-transaction", "--no-owner", "--exit-on-error",
                    "--dbname=" + self.database]
            tool = FeedProcess(self._argv("pg_restore", args), "pg_restore", env=self._env(),
                               secret=self._dumper.password)
        digest = tool.feed(reader)
        tool.finish()
        return digest

    def load_file(self, path, dump_format):
        """A dump member extracted from a tar (directory format, or dumps with globals)."""
        if dump_format == "directory":
            args = ["--clean", "--if-exists", "--single-transaction", "--no-owner", "--exit-on-error",
                    "--dbname=" + self.database, path]
            ToolProcess(self._argv("pg_restore", args), "pg_restore", env=self._env(), secret=self._dumper.password,
                        stdout=subprocess.DEVNULL).finish(require_eof=False)
            return
        with open(path, "rb") as handle:
            self.load(handle, dump_format)


def _mysql_ident(name):
    return "`" + name.replace("`", "``") + "`"


class MysqlTarget:
    """A MariaDB/MySQL database to restore into."""

    engine = "mysql"
    changes_live_before_success = True

    def __init__(self, database, connection):
        self.database = database
        self._dumper = make_dumper("mysql", "information_schema", **connection)

    @contextlib.contextmanager
    def _client(self, args):
        """The client argv, its password in a defaults file that exists as long as the run."""
        client = find_client(self.engine, ["mariadb", "mysql"])
        with private_directory(None) as private:
            defaults = []
            if self._dumper.password is not None:
                defaults = ["--defaults-extra-file=" + mysql_defaults_file(private, self._dumper.password)]
            yield [client] + defaults + self._dumper.connection + args

    def exists(self):
        literal = "'" + self.database.replace("\\", "\\\\").replace("'", "''") + "'"
        return bool(self._dumper.query("SELECT SCHEMA_NAME FROM SCHEMATA WHERE SCHEMA_NAME = %s" % literal))

    def _execute(self, sql, stage):
        with self._client(["--batch", "-e", sql]) as argv:
            ToolProcess(argv, stage, secret=self._dumper.password,
                        stdout=subprocess.DEVNULL).finish(require_eof=False)

    def create(self):
        self._execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4" % _mysql_ident(self.database),
                      "create database")

    def drop(self):
        self._execute("DROP DATABASE IF EXISTS %s" % _mysql_ident(self.database), "drop database")

    def load(self, reader, dump_format):
        del dump_format  # always SQL
        args = ["--batch", "--default-character-set=utf8mb4", "--binary-mode", "--database=" + self.database]
        with self._client(args) as argv:
            tool = FeedProcess(argv, "mariadb", secret=self._dumper.password)
            digest = tool.feed(reader)
            tool.finish()
        return digest


class SqliteTarget:
    """An SQLite file, replaced by a rename once the new file passed PRAGMA integrity_check."""

    engine = "sqlite"
    changes_live_before_success = False  # the live file is only ever replaced by the final rename

    def __init__(self, database, connection):
        del connection
        self.database = os.path.abspath(database)

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

    def load(self, reader, dump_format):
        del dump_format
        directory, name = os.path.split(self.database)
        fd, temp = tempfile.mkstemp(prefix="." + name + ".lifeboat-restore-", dir=directory)
        try:
            self._keep_owner_and_mode(fd)
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as handle:
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


TARGETS = {"postgresql": PostgresTarget, "mysql": MysqlTarget, "sqlite": SqliteTarget}


def _dump_member(tar, directory):
    """Extract the dump tar (names checked) into directory; return the path of the database dump in it."""
    found = None
    for member in tar:
        _restore.check_archive_path(member.name.rstrip("/"))
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
        recipients, passphrase = _restore.safety_encryption(self.metadata, self.request)
        connection = self.request.connection if self.engine != "sqlite" else {}
        request = DumpRequest(self.engine, self.target.database, self.metadata["job"],
                              backup_dir=_restore.catalog_dir(self.artifact, self.metadata, self.request),
                              recipients=recipients, passphrase=passphrase, tags=[_restore.SAFETY_TAG],
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
        parent = _restore.catalog_dir(self.artifact, self.metadata, self.request)
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


def restore_backup(request, check_mode=False):
    """Restore the backup the request names, files or database; returns the result dict."""
    artifact, metadata = _restore.select_backup(request)
    if (metadata or {}).get("kind", "files") == "database":
        return DatabaseRestore(request, artifact, metadata).run(check_mode)
    return _restore.run_restore_files(request, artifact, metadata, check_mode)
