# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MariaDB/MySQL: mariadb-dump (or mysqldump) and the restore target (the mariadb client)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess

from .._tools import FeedProcess, ToolProcess, find_client, private_directory
from .base import MIGRATION_QUERIES, Dumper, Target, schema_version_of, streamed


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


CLIENT_PACKAGE = "mariadb-client (or mysql-client)"
CLIENTS = ["mariadb", "mysql"]


class MysqlConnection:
    """How the tools reach a server: the login options as argv, the password in a 0600 defaults file that exists
    as long as one run, in a private directory under tmp_parent."""

    def __init__(self, login_host=None, login_port=None, login_user=None, login_password=None,
                 login_unix_socket=None, tmp_parent=None):
        self.password = login_password
        self.tmp_parent = tmp_parent
        self.options = []
        if login_unix_socket:
            self.options += ["--socket=" + login_unix_socket]
        if login_host:
            self.options += ["--host=" + login_host]
        if login_port:
            self.options += ["--port=%s" % login_port]
        if login_user:
            self.options += ["--user=" + login_user]

    @staticmethod
    def client(names):
        return find_client(names, CLIENT_PACKAGE)

    @contextlib.contextmanager
    def argv(self, names, args):
        """The argv of the first client found, valid inside the block (its defaults file goes after)."""
        client = self.client(names)
        with private_directory(self.tmp_parent) as private:
            defaults = []
            if self.password is not None:
                defaults = ["--defaults-extra-file=" + mysql_defaults_file(private, self.password)]
            yield [client] + defaults + self.options + args

    @contextlib.contextmanager
    def tool(self, names, args, stage, stdout=subprocess.PIPE):
        with self.argv(names, args) as argv:
            yield ToolProcess(argv, stage, secret=self.password, stdout=stdout)

    def query(self, database, sql, stage="connect"):
        """Rows of tab-separated fields."""
        args = ["--batch", "--skip-column-names", "--default-character-set=utf8mb4", "--database=" + database,
                "-e", sql]
        with self.tool(CLIENTS, args, stage) as tool:
            output = tool.output()
        return [[_mysql_unescape(field) for field in line.split("\t")] for line in output.splitlines()]

    @contextlib.contextmanager
    def feed(self, names, args, stage):
        """A client that reads SQL on its stdin."""
        with self.argv(names, args) as argv:
            yield FeedProcess(argv, stage, secret=self.password)

    def supported(self, names, options):
        """Those of the options that the client's --help lists."""
        with self.tool(names, ["--help"], "connect") as tool:
            listed = set(re.findall(r"--[a-z-]+", tool.output()))
        return [option for option in options if option in listed]

    def execute(self, sql, stage):
        with self.tool(CLIENTS, ["--batch", "-e", sql], stage, stdout=subprocess.DEVNULL) as tool:
            tool.finish(require_eof=False)


class MysqlDumper(Dumper):
    """mariadb-dump (or mysqldump) of one database.

    The dump is made WITHOUT --databases: it then holds no CREATE DATABASE / USE statement, so a
    restore can load it into a database of another name (target_database).
    """

    engine = "mysql"
    suffix = "sql"
    DUMP_OPTIONS = ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
                    "--no-tablespaces", "--default-character-set=utf8mb4"]
    DUMP_CLIENTS = ["mariadb-dump", "mysqldump"]

    def query(self, sql, stage="connect"):
        return self.connection.query(self.database, sql, stage)

    def check(self):
        client = self.connection.client(self.DUMP_CLIENTS)
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
        with self.connection.tool(self.DUMP_CLIENTS, self.DUMP_OPTIONS + ["--", self.database],
                                  "mariadb-dump") as tool:
            with streamed(tool) as source:
                yield source


class MysqlTarget(Target):
    """A MariaDB/MySQL database to restore into."""

    engine = "mysql"

    def exists(self):
        literal = "'" + self.database.replace("\\", "\\\\").replace("'", "''") + "'"
        return bool(self.connection.query("information_schema",
                                          "SELECT SCHEMA_NAME FROM SCHEMATA WHERE SCHEMA_NAME = %s" % literal))

    def create(self):
        self.connection.execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4" % _mysql_ident(self.database),
                                "create database")

    def drop(self):
        self.connection.execute("DROP DATABASE IF EXISTS %s" % _mysql_ident(self.database), "drop database")

    def load(self, reader, dump_format, expected_sha256=None):
        """--binary-mode turns off the client's commands (\\!, system, source) in a script, --sandbox (MariaDB
        10.5.25, 10.6.18, 10.11.8, 11.0.6 and newer) refuses them too: a dump cannot run a shell command."""
        del dump_format, expected_sha256  # always SQL; the digest is checked by the caller
        args = ["--batch", "--default-character-set=utf8mb4", "--binary-mode", "--database=" + self.database]
        args += self.connection.supported(CLIENTS, ["--sandbox"])
        with self.connection.feed(CLIENTS, args, "mariadb") as tool:
            digest = tool.feed(reader)
            tool.finish()
        return digest
