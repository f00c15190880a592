# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database engines, one file each, holding its connection, its dumper and its restore target.

base.py       what every engine shares: the dumper's shape, DumpSource, the migration tools' schema versions
postgres.py   PostgreSQL: pg_dump / pg_dumpall, restore with pg_restore or psql
mysql.py      MariaDB/MySQL: mariadb-dump, restore with the mariadb client
sqlite.py     SQLite: online backup, restore by integrity-checked file and rename

An engine's connection (the login options, the password, its tools' argv and queries) is shared by its dumper
and its target; the engine file names the client package a missing tool's message asks for. Secrets never
reach argv: PostgreSQL tools get PGPASSWORD in their own environment, MariaDB tools a 0600 defaults file. Every
message that carries a tool's output is scrubbed of the password.
"""

from __future__ import annotations

from .._errors import UsageError
from .base import ROW_COUNT_MODES, DumpSource
from .mysql import MysqlConnection, MysqlDumper, MysqlTarget
from .postgres import PG_FORMATS, PostgresConnection, PostgresDumper, PostgresTarget
from .sqlite import SqliteDumper, SqliteTarget

__all__ = ["ENGINES", "PG_FORMATS", "ROW_COUNT_MODES", "DumpSource", "make_dumper", "make_target"]

# name -> (connection class or None, dumper class, target class)
ENGINES = {
    "postgresql": (PostgresConnection, PostgresDumper, PostgresTarget),
    "mysql": (MysqlConnection, MysqlDumper, MysqlTarget),
    "sqlite": (None, SqliteDumper, SqliteTarget),
}


def _engine(engine):
    try:
        return ENGINES[engine]
    except KeyError:
        raise UsageError("unknown database engine %r: use %s" % (engine, ", ".join(ENGINES))) from None


def _connect(connection_class, login, tmp_parent):
    """The engine's connection from the login_* options (SQLite has none)."""
    return connection_class(tmp_parent=tmp_parent, **login) if connection_class else None


def make_dumper(engine, database, login_host=None, login_port=None, login_user=None, login_password=None,
                login_unix_socket=None, row_counts="exact", tmp_parent=None, **engine_options):
    """The backend for engine "postgresql", "mysql" or "sqlite" (database is then a file path).

    engine_options are the engine's own (PostgreSQL: pg_format, jobs, include_globals)."""
    connection_class, dumper_class, _target = _engine(engine)
    login = {"login_host": login_host, "login_port": login_port, "login_user": login_user,
             "login_password": login_password, "login_unix_socket": login_unix_socket}
    return dumper_class(database, _connect(connection_class, login, tmp_parent), row_counts=row_counts,
                        tmp_parent=tmp_parent, **engine_options)


def make_target(engine, database, login, tmp_parent=None):
    """The database a restore loads into; login holds the login_* options, tmp_parent the restore's private space."""
    connection_class, _dumper, target_class = _engine(engine)
    return target_class(database, _connect(connection_class, login, tmp_parent))
