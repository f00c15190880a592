# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database restores that a hostile or replaced backup cannot turn against the host.

A dump that holds client meta-commands (psql's and mariadb's \\! and system run a shell command as the
restoring user) is refused, the command never runs and the database stays as it was; an unencrypted backup
where a key says an encrypted one is expected is refused unless asked for.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _dump, _pipeline, _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, IntegrityError

from dbservers import login
from test_restore_db import PG_TABLE, craft_failing_copy, my_database, my_rows, pg_database, pg_rows, sqlite_db_fixture
from testlib import KEY, dump, restore

__all__ = ["sqlite_db_fixture"]  # the sqlite_db fixture, used here too


def hostile_copy(made, command, tmp_path):
    """(id, marker): a copy of the backup whose dump ends with a client command that would create the marker."""
    marker = tmp_path / "pwned"
    return craft_failing_copy(made, ("\n" + command.format(marker=marker) + "\n").encode()), marker


@pytest.mark.parametrize("command", ["\\! touch {marker}", "SELECT 1 \\! touch {marker}"])
def test_postgres_plain_dump_cannot_run_a_shell_command(postgres_server, tmp_path, command):
    database = pg_database(postgres_server, PG_TABLE)
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server), pg_format="plain")
    hostile, marker = hostile_copy(made, command, tmp_path)
    postgres_server.psql("INSERT INTO t VALUES (4, 'new')", database=database)
    before = pg_rows(postgres_server, database)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", hostile, connection=login(postgres_server))
    assert "backslash commands are restricted" in str(failure.value)
    assert failure.value.result["rolled_back"] is True
    assert not marker.exists()
    assert pg_rows(postgres_server, database) == before


def test_postgres_plain_dump_made_by_pg_dump_still_restores(postgres_server, tmp_path):
    """pg_dump's own \\restrict and \\unrestrict lines, and COPY data ending in \\., pass the restriction."""
    database = pg_database(postgres_server, PG_TABLE + "; INSERT INTO t VALUES (5, E'back\\\\slash\\n\\\\.')")
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server), pg_format="plain")
    with open(made["path"], "rb") as handle:
        payload, _raw = _pipeline.open_payload(handle, "zstd", True, KEY)
        text = b"".join(iter(lambda: payload.read(1 << 20), b""))
    assert b"\n\\restrict " in text and b"\n\\unrestrict " in text and b"COPY " in text
    dumped = pg_rows(postgres_server, database)
    postgres_server.psql("DELETE FROM t", database=database)
    restore(tmp_path / "b", made["id"], connection=login(postgres_server))
    assert pg_rows(postgres_server, database) == dumped


@pytest.mark.parametrize("command", ["\\! touch {marker}", "system touch {marker}"])
def test_mariadb_dump_cannot_run_a_shell_command(mariadb_server, tmp_path, command):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    hostile, marker = hostile_copy(made, command, tmp_path)
    mariadb_server.sql("INSERT INTO t VALUES (4, 'new')", database=database)
    before = my_rows(mariadb_server, database)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", hostile, connection=login(mariadb_server))
    assert "mariadb exited" in str(failure.value) and failure.value.result["rolled_back"] is True
    assert not marker.exists()
    assert my_rows(mariadb_server, database) == before


def _unencrypted_copy(made):
    """The backup replaced by a plain artifact with metadata saying encryption: none, as a catalog writer could."""
    with open(made["path"], "rb") as handle:
        payload, _raw = _pipeline.open_payload(handle, "zstd", True, KEY)
        data = b"".join(iter(lambda: payload.read(1 << 20), b""))
    os.unlink(made["path"])
    name = made["metadata"]["artifact"][:-len(".age")]
    path = os.path.join(os.path.dirname(made["path"]), name)
    with _pipeline.ArtifactWriter(path, "zstd", content_digest=True) as writer:
        writer.write(data.replace(b"'drei'", b"'evil'"))
        written = writer.commit()
    metadata = dict(made["metadata"], artifact=name, sha256=written["sha256"], size=written["size"],
                    content_sha256=written["content_sha256"], encryption={"method": "none", "recipients": []})
    _catalog.write_sidecars(path, metadata)


def test_an_unencrypted_backup_is_refused_when_a_key_is_given(mariadb_server, tmp_path):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    _unencrypted_copy(made)
    before = my_rows(mariadb_server, database)
    with pytest.raises(IntegrityError) as refused:
        restore(tmp_path / "b", made["id"], connection=login(mariadb_server))
    assert "is not encrypted, yet a key was given" in str(refused.value)
    assert "allow_unencrypted: true" in str(refused.value)
    assert my_rows(mariadb_server, database) == before
    assert [meta["id"] for meta in _catalog.list_metadata(str(tmp_path / "b"))] == [made["id"]]  # no safety dump
    restore(tmp_path / "b", made["id"], connection=login(mariadb_server), allow_unencrypted=True)
    assert "evil" in my_rows(mariadb_server, database)


def test_an_unencrypted_backup_restores_without_a_key(sqlite_db, tmp_path):
    made = _dump.run_dump(_dump.DumpRequest("sqlite", sqlite_db, "db", backup_dir=str(tmp_path / "b")))
    result = _restore.restore_backup(_restore.RestoreRequest(backup_dir=str(tmp_path / "b"), backup_id=made["id"]))
    assert result["changed"] and not result["rolled_back"]
