# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dump backends: PostgreSQL (pg_dump), MariaDB/MySQL (mariadb-dump), SQLite (online backup).

A backend checks that it can reach the database, describes it (server version, tables with row
counts, schema version of the migration tool in use) and opens a DumpSource: either a byte
stream (the dump tool's stdout, or a snapshot file) or a directory tree to be tarred. Leaving
``open()`` waits for the dump tool and raises BackupError, naming the stage, when it failed.

Secrets never reach argv: PostgreSQL tools get PGPASSWORD in their own environment, MariaDB
tools a 0600 defaults file. Every message that carries a tool's output is scrubbed of the password.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import urllib.request

from ._errors import BackupError, MissingDependencyError, SourceError, UsageError

STDERR_TAIL_BYTES = 2048
SCRUBBED = "********"
PG_FORMATS = ("custom", "plain", "directory")
ROW_COUNT_MODES = ("exact", "estimated")
CLIENT_PACKAGES = {"postgresql": "postgresql-client", "mysql": "mariadb-client (or mysql-client)"}

# Migration tables, in the order they are looked for, with the query giving the schema version
# (the fields of a row are joined with ":", several rows with ","). {table} is replaced by the
# quoted name of the table found. The SQL is common to PostgreSQL, MariaDB/MySQL and SQLite.
MIGRATION_QUERIES = (
    ("alembic_version", "SELECT version_num FROM {table} ORDER BY version_num"),
    ("django_migrations", "SELECT app, name FROM {table} ORDER BY id DESC LIMIT 1"),
    ("flyway_schema_history", "SELECT version FROM {table} WHERE success AND version IS NOT NULL "
                              "ORDER BY installed_rank DESC LIMIT 1"),
    ("schema_migrations", "SELECT max(version) FROM {table}"),
)


class DumpSource:
    """What a dump produced: exactly one of ``stream`` (a readable binary file object, to be copied
    once to its end) or ``tree`` (a directory whose content is to be tarred, names relative to it)."""

    def __init__(self, stream=None, tree=None):
        if (stream is None) == (tree is None):
            raise ValueError("a DumpSource has exactly one of stream and tree")
        self.stream = stream
        self.tree = tree


def schema_version_of(rows):
    """The fields of each row joined with ":", the rows with ","; None when there is none."""
    versions = [":".join(str(field) for field in row) for row in rows if None not in row]
    return ",".join(versions) or None


def scrub(text, secret):
    """The text with every occurrence of the secret masked."""
    if secret:
        return text.replace(secret, SCRUBBED)
    return text


def find_client(engine, names):
    """Absolute path of the first client program found on PATH."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise MissingDependencyError("%s not found on PATH: install the Debian package %s"
                                 % (" or ".join(names), CLIENT_PACKAGES[engine]), stage="connect")


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


@contextlib.contextmanager
def private_directory(tmp_parent):
    """A 0700 directory for snapshots, dump directories and defaults files, removed on every path."""
    path = tempfile.mkdtemp(prefix="lifeboat-dump-", dir=tmp_parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def streamed(tool):
    """Yield the tool's stdout as a DumpSource; kill the tool if the consumer fails, else check its exit."""
    finished = False
    try:
        yield DumpSource(stream=tool.stdout)
        finished = True
    finally:
        if finished:
            tool.finish()
        else:
            tool.kill()


class Dumper:
    """Common shape of the backends."""

    engine = None
    suffix = None

    def __init__(self, database, row_counts="exact", tmp_parent=None):
        if row_counts not in ROW_COUNT_MODES:
            raise UsageError("row_counts must be one of %s, not %r" % (", ".join(ROW_COUNT_MODES), row_counts))
        self.database = database
        self.row_counts = row_counts
        self.tmp_parent = tmp_parent

    def check(self):
        """Client present, server reachable, database exists: {"server_version", "client"}."""
        raise NotImplementedError

    def inspect(self):
        """{"server_version", "tables": {name: rows}, "total_rows", "schema_version", "row_counts"}."""
        raise NotImplementedError

    def open(self):
        """Context manager yielding a DumpSource."""
        raise NotImplementedError

    @staticmethod
    def description(server_version, tables, schema_version, row_counts):
        return {"server_version": server_version, "tables": tables, "total_rows": sum(tables.values()),
                "schema_version": schema_version, "row_counts": row_counts}


def _pg_socket_dir(path):
    """libpq wants the socket's directory; accept the socket file itself too."""
    if os.path.basename(path).startswith(".s.PGSQL."):
        return os.path.dirname(path)
    return path


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


class PostgresDumper(Dumper):
    """pg_dump of one database, optionally with pg_dumpall --globals-only (roles, tablespaces)."""

    engine = "postgresql"

    def __init__(self, database, login_host=None, login_port=None, login_user=None, login_password=None,
                 login_unix_socket=None, pg_format="custom", jobs=1, include_globals=False, **common):
        super().__init__(database, **common)
        if pg_format not in PG_FORMATS:
            raise UsageError("pg_format must be one of %s, not %r" % (", ".join(PG_FORMATS), pg_format))
        if jobs != 1 and pg_format != "directory":
            raise UsageError("jobs > 1 needs pg_format=directory (pg_dump dumps in parallel only into a directory)")
        self.pg_format = pg_format
        self.jobs = int(jobs)
        self.include_globals = include_globals
        self.password = login_password
        self.connection = []
        host = _pg_socket_dir(login_unix_socket) if login_unix_socket else login_host
        if host:
            self.connection += ["--host=" + host]
        if login_port:
            self.connection += ["--port=%s" % login_port]
        if login_user:
            self.connection += ["--username=" + login_user]
        if pg_format == "directory" or include_globals:
            self.suffix = "tar"
        else:
            self.suffix = {"custom": "pgdump", "plain": "sql"}[pg_format]

    def _env(self):
        """The tools' environment: PGPASSWORD is set for the child only, never in this process."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env.setdefault("PGCONNECT_TIMEOUT", "15")
        return env

    def _tool(self, name, args, stage, stdout=subprocess.PIPE):
        argv = [find_client(self.engine, [name])] + self.connection + ["--no-password"] + args
        return ToolProcess(argv, stage, env=self._env(), secret=self.password, stdout=stdout)

    def query(self, sql, stage="connect"):
        """One value per line from psql, in a read-only transaction."""
        args = ["--dbname=" + self.database, "-XAtq", "-v", "ON_ERROR_STOP=1",
                "-c", "SET default_transaction_read_only = on", "-c", sql]
        return self._tool("psql", args, stage).output()

    def query_json(self, sql, stage="connect"):
        return json.loads(self.query(sql, stage).strip() or "null")

    def check(self):
        client = find_client(self.engine, ["pg_dump"])
        return {"server_version": self.query("SHOW server_version").strip(), "client": client}

    def inspect(self):
        tables = self._estimated_counts() if self.row_counts == "estimated" else self._exact_counts()
        return self.description(self.query("SHOW server_version").strip(), tables, self._schema_version(),
                                self.row_counts)

    USER_TABLES = ("FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
                   "AND n.nspname !~ '^pg_' ")
    TABLE_NAME = "CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"

    def _estimated_counts(self):
        rows = self.query_json("SELECT json_object_agg(%s, greatest(c.reltuples, 0)::bigint) %s"
                               % (self.TABLE_NAME, self.USER_TABLES), stage="inspect")
        return rows or {}

    def _exact_counts(self):
        """count(*) of every user table, all in one statement, so in one snapshot."""
        tables = self.query_json(
            "SELECT json_agg(json_build_array(%s, quote_ident(n.nspname) || '.' || quote_ident(c.relname))) %s"
            % (self.TABLE_NAME, self.USER_TABLES), stage="inspect") or []
        if not tables:
            return {}
        counts = " UNION ALL ".join("SELECT %d, count(*) FROM %s" % (index, quoted)
                                    for index, (_name, quoted) in enumerate(tables))
        values = self.query_json("SELECT json_object_agg(i, n) FROM (%s) AS t(i, n)" % counts, stage="inspect")
        return {name: values[str(index)] for index, (name, _quoted) in enumerate(tables)}

    def _schema_version(self):
        """Version recorded by the first migration table found, public schema first."""
        names = ", ".join(sql_literal(name) for name, _query in MIGRATION_QUERIES)
        found = self.query_json(
            "SELECT json_object_agg(relname, quoted) FROM (SELECT DISTINCT ON (c.relname) c.relname, "
            "quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS quoted %s AND c.relname IN (%s) "
            "ORDER BY c.relname, n.nspname <> 'public', n.nspname) AS t" % (self.USER_TABLES, names),
            stage="inspect") or {}
        for name, query in MIGRATION_QUERIES:
            if name in found:
                rows = self.query_json("SELECT json_agg(t) FROM (%s) AS t" % query.format(table=found[name]),
                                       stage="inspect")
                return schema_version_of(list(row.values()) for row in rows or [])
        return None

    def _dump_args(self, output=None):
        args = ["--format=" + self.pg_format, "--compress=0"]
        if self.pg_format == "directory":
            args += ["--jobs=%d" % self.jobs]
        if output:
            args += ["--file=" + output]
        return args + ["--dbname=" + self.database]

    def _run_to_completion(self, name, args, stage):
        self._tool(name, args, stage, stdout=subprocess.DEVNULL).finish(require_eof=False)

    @contextlib.contextmanager
    def open(self):
        find_client(self.engine, ["pg_dump"])
        if self.suffix != "tar":
            with streamed(self._tool("pg_dump", self._dump_args(), "pg_dump")) as source:
                yield source
            return
        with private_directory(self.tmp_parent) as tree:
            if self.include_globals:
                self._run_to_completion("pg_dumpall", ["--globals-only", "--database=" + self.database,
                                                       "--file=" + os.path.join(tree, "globals.sql")],
                                        "pg_dumpall")
            member = {"custom": "database.pgdump", "plain": "database.sql", "directory": "database.dir"}
            self._run_to_completion("pg_dump", self._dump_args(os.path.join(tree, member[self.pg_format])),
                                    "pg_dump")
            yield DumpSource(tree=tree)


def mysql_defaults_file(directory, password):
    """A 0600 option file holding the password, so that it never shows in argv."""
    path = os.path.join(directory, "client.cnf")
    escaped = password.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write('[client]\npassword="%s"\n' % escaped)
    return path


def _mysql_ident(name):
    return "`" + name.replace("`", "``") + "`"


def _mysql_unescape(field):
    """Undo the escaping of the client's batch mode (\\t, \\n, \\0, \\\\)."""
    replacements = {"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}
    out, chars = [], iter(field)
    for char in chars:
        out.append(replacements.get(next(chars, ""), "\\") if char == "\\" else char)
    return "".join(out)


class MysqlDumper(Dumper):
    """mariadb-dump (or mysqldump) of one database.

    The dump is made WITHOUT --databases: it then holds no CREATE DATABASE / USE statement, so a
    restore can load it into a database of another name (target_database).
    """

    engine = "mysql"
    suffix = "sql"
    DUMP_OPTIONS = ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
                    "--no-tablespaces", "--default-character-set=utf8mb4"]

    def __init__(self, database, login_host=None, login_port=None, login_user=None, login_password=None,
                 login_unix_socket=None, **common):
        super().__init__(database, **common)
        self.password = login_password
        self.connection = []
        if login_unix_socket:
            self.connection += ["--socket=" + login_unix_socket]
        if login_host:
            self.connection += ["--host=" + login_host]
        if login_port:
            self.connection += ["--port=%s" % login_port]
        if login_user:
            self.connection += ["--user=" + login_user]

    @contextlib.contextmanager
    def _tool(self, names, args, stage):
        """A client run, its password in a defaults file that lives as long as the run."""
        client = find_client(self.engine, names)
        with private_directory(self.tmp_parent) as private:
            defaults = []
            if self.password is not None:
                defaults = ["--defaults-extra-file=" + mysql_defaults_file(private, self.password)]
            yield ToolProcess([client] + defaults + self.connection + args, stage, secret=self.password)

    def query(self, sql, stage="connect"):
        """Rows of tab-separated fields."""
        with self._tool(["mariadb", "mysql"], ["--batch", "--skip-column-names", "--default-character-set=utf8mb4",
                                               "--database=" + self.database, "-e", sql], stage) as tool:
            output = tool.output()
        return [[_mysql_unescape(field) for field in line.split("\t")] for line in output.splitlines()]

    def check(self):
        client = find_client(self.engine, ["mariadb-dump", "mysqldump"])
        return {"server_version": self.query("SELECT VERSION()")[0][0], "client": client}

    def inspect(self):
        tables = self._estimated_counts() if self.row_counts == "estimated" else self._exact_counts()
        return self.description(self.query("SELECT VERSION()")[0][0], tables, self._schema_version(),
                                self.row_counts)

    TABLES = ("FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
              "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")

    def _estimated_counts(self):
        return {name: int(rows if rows != "NULL" else 0)
                for name, rows in self.query("SELECT TABLE_NAME, TABLE_ROWS " + self.TABLES, stage="inspect")}

    def _exact_counts(self):
        names = [row[0] for row in self.query("SELECT TABLE_NAME " + self.TABLES, stage="inspect")]
        if not names:
            return {}
        counts = " UNION ALL ".join("SELECT %d, COUNT(*) FROM %s" % (index, _mysql_ident(name))
                                    for index, name in enumerate(names))
        return {names[int(index)]: int(count) for index, count in self.query(counts, stage="inspect")}

    def _schema_version(self):
        present = {row[0] for row in self.query("SELECT TABLE_NAME " + self.TABLES, stage="inspect")}
        for name, query in MIGRATION_QUERIES:
            if name in present:
                rows = self.query(query.format(table=_mysql_ident(name)), stage="inspect")
                return schema_version_of([None if field == "NULL" else field for field in row] for row in rows)
        return None

    @contextlib.contextmanager
    def open(self):
        with self._tool(["mariadb-dump", "mysqldump"], self.DUMP_OPTIONS + ["--", self.database],
                        "mariadb-dump") as tool:
            with streamed(tool) as source:
                yield source


class SqliteDumper(Dumper):
    """Online backup of an SQLite file (consistent while the application writes, WAL included)."""

    engine = "sqlite"
    suffix = "sqlite"

    def __init__(self, database, **common):
        super().__init__(database, **common)
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


def make_dumper(engine, database, login_host=None, login_port=None, login_user=None, login_password=None,
                login_unix_socket=None, pg_format="custom", jobs=1, include_globals=False, row_counts="exact",
                tmp_parent=None):
    """The backend for engine "postgresql", "mysql" or "sqlite" (database is then a file path)."""
    common = {"row_counts": row_counts, "tmp_parent": tmp_parent}
    connection = {"login_host": login_host, "login_port": login_port, "login_user": login_user,
                  "login_password": login_password, "login_unix_socket": login_unix_socket}
    if engine == "postgresql":
        return PostgresDumper(database, pg_format=pg_format, jobs=jobs, include_globals=include_globals,
                              **dict(connection, **common))
    if include_globals:
        raise UsageError("include_globals applies to PostgreSQL only")
    if engine == "mysql":
        return MysqlDumper(database, **dict(connection, **common))
    if engine == "sqlite":
        return SqliteDumper(database, **common)
    raise UsageError("unknown database engine %r: use postgresql, mysql or sqlite" % engine)
