# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database engines, one file each, holding its dumper and its restore target.

base.py       what every engine shares: the dumper's shape, DumpSource, the migration tools' schema versions
postgres.py   PostgreSQL: pg_dump / pg_dumpall, restore with pg_restore or psql
mysql.py      MariaDB/MySQL: mariadb-dump, restore with the mariadb client
sqlite.py     SQLite: online backup, restore by integrity-checked file and rename

Secrets never reach argv: PostgreSQL tools get PGPASSWORD in their own environment, MariaDB
tools a 0600 defaults file. Every message that carries a tool's output is scrubbed of the password.
"""

from __future__ import annotations

from .._errors import UsageError
from .base import ROW_COUNT_MODES, DumpSource
from .mysql import MysqlDumper, MysqlTarget
from .postgres import PG_FORMATS, PostgresDumper, PostgresTarget
from .sqlite import SqliteDumper, SqliteTarget

__all__ = ["PG_FORMATS", "ROW_COUNT_MODES", "TARGETS", "DumpSource", "make_dumper"]

TARGETS = {"postgresql": PostgresTarget, "mysql": MysqlTarget, "sqlite": SqliteTarget}


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
