# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every database engine shares: the dumper's shape, what a dump produces, the schema version of the
migration tool in use."""

from __future__ import annotations

import contextlib

from .._errors import UsageError

ROW_COUNT_MODES = ("exact", "estimated")

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
    """Common shape of the backends; connection is the engine's, shared with its restore target."""

    engine = None
    suffix = None

    def __init__(self, database, connection=None, row_counts="exact", tmp_parent=None, include_globals=False):
        if include_globals:
            raise UsageError("include_globals applies to PostgreSQL only")
        if row_counts not in ROW_COUNT_MODES:
            raise UsageError("row_counts must be one of %s, not %r" % (", ".join(ROW_COUNT_MODES), row_counts))
        self.database = database
        self.connection = connection
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


class Target:
    """Common shape of the restore targets: a database (or SQLite file) a restore loads a dump into."""

    engine = None
    changes_live_before_success = True  # whether a failed load can leave the live database changed

    def __init__(self, database, connection):
        self.database = database
        self.connection = connection

    def check_load(self, dump_format):
        """Refuse, before anything changes, a dump that this host's client cannot load safely."""

    def exists(self):
        raise NotImplementedError

    def create(self):
        raise NotImplementedError

    def drop(self):
        raise NotImplementedError

    def load(self, reader, dump_format, expected_sha256=None):
        """Load the dump; returns its SHA-256. expected_sha256, when the target can, is checked before the load
        becomes visible (the caller checks it afterwards either way)."""
        raise NotImplementedError
