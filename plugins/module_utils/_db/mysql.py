# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB/MySQL: mariadb-dump (or mysqldump) and the restore target (the mariadb client)."""

from __future__ import annotations

import contextlib
import os
import subprocess

from .._tools import FeedProcess, ToolProcess, find_client, private_directory
from .base import MIGRATION_QUERIES, Dumper, schema_version_of, streamed


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


class MysqlTarget:
    """A MariaDB/MySQL database to restore into."""

    engine = "mysql"
    changes_live_before_success = True

    def __init__(self, database, connection):
        self.database = database
        self._dumper = MysqlDumper("information_schema", **connection)

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
