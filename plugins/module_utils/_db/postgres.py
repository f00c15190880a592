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


class PostgresTarget:
    """A PostgreSQL database to restore into."""

    engine = "postgresql"
    changes_live_before_success = True

    def __init__(self, database, connection):
        self.database = database
        self.connection = connection
        self._dumper = PostgresDumper(PG_MAINTENANCE_DB, **connection)

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
