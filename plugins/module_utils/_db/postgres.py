# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: pg_dump (custom, plain or directory format, optionally with pg_dumpall --globals-only) and the
restore target (pg_restore or psql, in one transaction)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess

from .._errors import IntegrityError, MissingDependencyError, UsageError
from .._fileio import READ_SIZE
from .._tools import FeedProcess, ToolProcess, find_client, private_directory
from .base import MIGRATION_QUERIES, Dumper, DumpSource, Target, schema_version_of, streamed

PG_FORMATS = ("custom", "plain", "directory")
PG_MAINTENANCE_DB = "postgres"
# The first release of each major version whose psql knows \\restrict (CVE-2025-8714); every release from 18 on does.
PSQL_RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
PSQL_RESTRICT_ALWAYS = 18


def _pg_socket_dir(path):
    """libpq wants the socket's directory; accept the socket file itself too."""
    if os.path.basename(path).startswith(".s.PGSQL."):
        return os.path.dirname(path)
    return path


def psql_restricts(version_text):
    """Whether the `psql --version` output names a release that knows \\restrict."""
    found = re.search(r"(\d+)(?:\.(\d+))?", version_text)
    if not found:
        return False
    major, minor = int(found.group(1)), int(found.group(2) or 0)
    return major >= PSQL_RESTRICT_ALWAYS or minor >= PSQL_RESTRICT_SINCE.get(major, float("inf"))


class RestrictedScript:
    """A plain dump as psql is to run it: unable to run a meta-command, committed only once complete.

    It starts with `\\restrict KEY` (KEY random, unknown to the dump), after which psql refuses every
    backslash command the dump holds: `\\!` would run a shell command as the restoring user. The
    `\\restrict`/`\\unrestrict` pair that pg_dump writes around its own output is left out (psql refuses a
    second `\\restrict`); any other is refused by psql. The SQL runs between BEGIN and a COMMIT sent only
    after the whole dump, with the recorded digest: a restore killed midway leaves psql at the end of its input
    inside an open transaction, which the server rolls back. read() hands out the script; sha256 is the dump's.
    """

    HEAD = re.compile(rb"(?:(?:--[^\n]*)?\r?\n)*")  # pg_dump's header: comment and blank lines
    OWN_RESTRICT = re.compile(rb"\\restrict ([A-Za-z0-9]+)\r?\n")

    def __init__(self, reader, expected_sha256=None):
        self.sha256 = hashlib.sha256()
        self._reader = reader
        self._expected = expected_sha256
        self._chunks = self._script()

    def read(self, size=-1):
        del size  # the chunks come as the dump is read
        return next(self._chunks, b"")

    def _read(self):
        chunk = self._reader.read(READ_SIZE)
        self.sha256.update(chunk)
        return bytes(chunk)

    def _script(self):
        yield b"\\restrict %s\nBEGIN;\n" % secrets.token_hex(32).encode()
        data, chunk = b"", b"x"
        while chunk and b"\n" not in data[self.HEAD.match(data).end():]:  # until the first statement's line is in
            chunk = self._read()
            data += chunk
        start = self.HEAD.match(data).end()
        own = self.OWN_RESTRICT.match(data, start)
        marker = None
        if own:  # keep the newline that ended it: the dump's \\unrestrict line follows a newline too
            marker = b"\n\\unrestrict " + own.group(1) + b"\n"
            data = data[:start] + data[own.end() - 1:]
        while data:
            if marker is not None:
                found = data.find(marker)
                if found >= 0:
                    data, marker = data[:found + 1] + data[found + len(marker):], None
            keep = len(marker) - 1 if marker is not None else 0  # a marker may span two chunks
            if len(data) > keep:
                yield data[:len(data) - keep]
                data = data[len(data) - keep:]
            chunk = self._read()
            if not chunk:
                break
            data += chunk
        if data:
            yield data
        if self._expected is not None and self.sha256.hexdigest() != self._expected:
            raise IntegrityError("the decrypted dump does not match its recorded SHA-256; nothing was committed",
                                 stage="payload")
        yield b"COMMIT;\n"


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


CLIENT_PACKAGE = "postgresql-client"


class PostgresConnection:
    """How the tools reach a server: the login options as argv, the password in each child's environment only."""

    def __init__(self, login_host=None, login_port=None, login_user=None, login_password=None,
                 login_unix_socket=None, tmp_parent=None):
        del tmp_parent  # the PostgreSQL tools need no scratch files
        self.password = login_password
        self.options = []
        host = _pg_socket_dir(login_unix_socket) if login_unix_socket else login_host
        if host:
            self.options += ["--host=" + host]
        if login_port:
            self.options += ["--port=%s" % login_port]
        if login_user:
            self.options += ["--username=" + login_user]

    @staticmethod
    def client(name):
        return find_client([name], CLIENT_PACKAGE)

    def env(self):
        """The tools' environment: PGPASSWORD is set for the child only, never in this process."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env.setdefault("PGCONNECT_TIMEOUT", "15")
        return env

    def argv(self, name, args):
        return [self.client(name)] + self.options + ["--no-password"] + args

    def tool(self, name, args, stage, stdout=subprocess.PIPE):
        return ToolProcess(self.argv(name, args), stage, env=self.env(), secret=self.password, stdout=stdout)

    def feed(self, name, args, stage):
        """A tool that reads a dump on its stdin."""
        return FeedProcess(self.argv(name, args), stage, env=self.env(), secret=self.password)

    def run(self, name, args, stage):
        """A tool run to its end, its output not wanted."""
        self.tool(name, args, stage, stdout=subprocess.DEVNULL).finish(require_eof=False)

    def query(self, database, sql, stage="connect"):
        """One value per line from psql, in a read-only transaction."""
        args = ["--dbname=" + database, "-XAtq", "-v", "ON_ERROR_STOP=1",
                "-c", "SET default_transaction_read_only = on", "-c", sql]
        return self.tool("psql", args, stage).output()

    def query_json(self, database, sql, stage="connect"):
        return json.loads(self.query(database, sql, stage).strip() or "null")

    def execute(self, database, sql, stage):
        self.run("psql", ["-XAtq", "-v", "ON_ERROR_STOP=1", "--dbname=" + database, "-c", sql], stage)


class PostgresDumper(Dumper):
    """pg_dump of one database, optionally with pg_dumpall --globals-only (roles, tablespaces)."""

    engine = "postgresql"

    def __init__(self, database, connection, pg_format="custom", jobs=1, include_globals=False, **common):
        super().__init__(database, connection, **common)
        if pg_format not in PG_FORMATS:
            raise UsageError("pg_format must be one of %s, not %r" % (", ".join(PG_FORMATS), pg_format))
        if jobs != 1 and pg_format != "directory":
            raise UsageError("jobs > 1 needs pg_format=directory (pg_dump dumps in parallel only into a directory)")
        self.pg_format = pg_format
        self.jobs = int(jobs)
        self.include_globals = include_globals
        if pg_format == "directory" or include_globals:
            self.suffix = "tar"
        else:
            self.suffix = {"custom": "pgdump", "plain": "sql"}[pg_format]

    def query(self, sql, stage="connect"):
        return self.connection.query(self.database, sql, stage)

    def query_json(self, sql, stage="connect"):
        return self.connection.query_json(self.database, sql, stage)

    def check(self):
        client = self.connection.client("pg_dump")
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

    @contextlib.contextmanager
    def open(self):
        self.connection.client("pg_dump")
        if self.suffix != "tar":
            with streamed(self.connection.tool("pg_dump", self._dump_args(), "pg_dump")) as source:
                yield source
            return
        with private_directory(self.tmp_parent) as tree:
            if self.include_globals:
                self.connection.run("pg_dumpall", ["--globals-only", "--database=" + self.database,
                                                   "--file=" + os.path.join(tree, "globals.sql")], "pg_dumpall")
            member = {"custom": "database.pgdump", "plain": "database.sql", "directory": "database.dir"}
            self.connection.run("pg_dump", self._dump_args(os.path.join(tree, member[self.pg_format])), "pg_dump")
            yield DumpSource(tree=tree)


class PostgresTarget(Target):
    """A PostgreSQL database to restore into."""

    engine = "postgresql"

    def exists(self):
        return bool(self.connection.query_json(PG_MAINTENANCE_DB, "SELECT count(*) FROM pg_database WHERE datname = %s"
                                               % sql_literal(self.database)))

    def create(self):
        self.connection.execute(PG_MAINTENANCE_DB, 'CREATE DATABASE "%s"' % self.database.replace('"', '""'),
                                "create database")

    def drop(self):
        self.connection.execute(PG_MAINTENANCE_DB, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                                % self.database.replace('"', '""'), "drop database")

    def check_load(self, dump_format):
        """Refuse, before anything changes, a dump that this host's client cannot load safely."""
        if dump_format != "plain":
            return
        version = self.connection.tool("psql", ["--version"], "psql").output().strip()
        if not psql_restricts(version):
            raise MissingDependencyError(
                "restoring a plain-format dump needs psql 13.22, 14.19, 15.14, 16.10, 17.6 or newer, whose "
                "\\restrict stops the dump from running psql meta-commands such as \\! (shell commands); this host "
                "has %s: upgrade the %s package, or restore a custom-format dump" % (version, CLIENT_PACKAGE),
                stage="psql")

    def load(self, reader, dump_format, expected_sha256=None):
        """Stream a custom or plain dump in; return the SHA-256 of the dump."""
        if dump_format == "plain":
            self.drop()  # a plain dump has no DROP statements: it needs an empty database
            self.create()
            script = RestrictedScript(reader, expected_sha256)
            tool = self.connection.feed("psql", ["-Xq", "-v", "ON_ERROR_STOP=1", "--dbname=" + self.database],
                                        "psql")
            tool.feed(script)
            tool.finish()
            return script.sha256.hexdigest()
        args = ["--clean", "--if-exists", "--single-transaction", "--no-owner", "--exit-on-error",
                "--dbname=" + self.database]
        tool = self.connection.feed("pg_restore", args, "pg_restore")
        digest = tool.feed(reader)
        tool.finish()
        return digest

    def load_file(self, path, dump_format):
        """A dump member extracted from a tar (directory format, or dumps with globals)."""
        if dump_format == "directory":
            self.connection.run("pg_restore", ["--clean", "--if-exists", "--single-transaction", "--no-owner",
                                               "--exit-on-error", "--dbname=" + self.database, path], "pg_restore")
            return
        with open(path, "rb") as handle:
            self.load(handle, dump_format)
