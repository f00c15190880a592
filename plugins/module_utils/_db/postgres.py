# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: pg_dump (custom, plain or directory format, optionally with pg_dumpall --globals-only) and the
restore target (pg_restore or psql, in one transaction)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

from .._errors import UsageError
from .._tools import FeedProcess, ToolProcess, find_client, private_directory
from .base import MIGRATION_QUERIES, Dumper, DumpSource, schema_version_of, streamed

PG_FORMATS = ("custom", "plain", "directory")
PG_MAINTENANCE_DB = "postgres"


def _pg_socket_dir(path):
    """libpq wants the socket's directory; accept the socket file itself too."""
    if os.path.basename(path).startswith(".s.PGSQL."):
        return os.path.dirname(path)
    return path


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


class PostgresTarget:
    """A PostgreSQL database to restore into."""

    engine = "postgresql"
    changes_live_before_success = True

    def __init__(self, database, connection):
        self.database = database
        self.connection = connection

    def exists(self):
        return bool(self.connection.query_json(PG_MAINTENANCE_DB, "SELECT count(*) FROM pg_database WHERE datname = %s"
                                               % sql_literal(self.database)))

    def create(self):
        self.connection.execute(PG_MAINTENANCE_DB, 'CREATE DATABASE "%s"' % self.database.replace('"', '""'),
                                "create database")

    def drop(self):
        self.connection.execute(PG_MAINTENANCE_DB, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                                % self.database.replace('"', '""'), "drop database")

    def load(self, reader, dump_format):
        """Stream a custom or plain dump in; return the SHA-256 of what was fed."""
        if dump_format == "plain":
            self.drop()  # a plain dump has no DROP statements: it needs an empty database
            self.create()
            args = ["-Xq", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname=" + self.database]
            tool = self.connection.feed("psql", args, "psql")
        else:
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
