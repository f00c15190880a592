# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database restores against real PostgreSQL and MariaDB servers and real SQLite files.

A restore over newer data gives back exactly the dumped rows; a restore that fails midway is rolled
back from the safety dump taken just before, and says so.
"""

from __future__ import annotations

import itertools
import os
import sqlite3

import pytest

from dbservers import login
from testlib import KEY, RECIPIENT, dump, restore, sqlite_rows
from ansible_collections.lifeboat.backup.plugins.module_utils import _archive, _catalog, _pipeline
from ansible_collections.lifeboat.backup.plugins.module_utils import _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    BackupError, IntegrityError, NotFoundError, UsageError)

_NAMES = itertools.count()


def unique(prefix):
    return "%s_%d_%d" % (prefix, os.getpid(), next(_NAMES))


def craft_failing_copy(made, extra_sql):
    """A second backup of the same database whose payload ends with SQL that fails: a restore that breaks midway."""
    with open(made["path"], "rb") as handle:
        payload, _raw = _pipeline.open_payload(handle, "zstd", True, KEY)
        data = b"".join(iter(lambda: payload.read(1 << 20), b""))
    backup_id = made["id"] + "-2"
    name = backup_id + made["metadata"]["artifact"][len(made["id"]):]
    path = os.path.join(os.path.dirname(made["path"]), name)
    with _pipeline.ArtifactWriter(path, "zstd", recipients=[RECIPIENT], content_digest=True) as writer:
        writer.write(data + extra_sql)
        written = writer.commit()
    metadata = dict(made["metadata"], id=backup_id, artifact=name, sha256=written["sha256"], size=written["size"],
                    content_sha256=written["content_sha256"])
    _catalog.write_sidecars(path, metadata)
    return backup_id


def safety_metadata(backup_dir, backup_id):
    return _catalog.locate(str(backup_dir), backup_id)[1]


# --- PostgreSQL ---------------------------------------------------------------------------------

def pg_rows(server, database, table="t"):
    return server.psql("SELECT id, v FROM %s ORDER BY id" % table, database=database)


def pg_database(server, sql):
    database = server.create_database(unique("restore"))
    server.psql(sql + "; ALTER TABLE t OWNER TO %s" % server.user, database=database)
    return database


PG_TABLE = "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'drei')"


@pytest.mark.parametrize("pg_format", ["custom", "plain"])
def test_postgres_restore_over_newer_data_gives_the_dumped_rows(postgres_server, tmp_path, pg_format):
    database = pg_database(postgres_server, PG_TABLE)
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server), pg_format=pg_format)
    dumped = pg_rows(postgres_server, database)
    postgres_server.psql("INSERT INTO t VALUES (4, 'new'); UPDATE t SET v = 'changed' WHERE id = 1",
                         database=database)
    result = restore(tmp_path / "b", made["id"], connection=login(postgres_server))
    assert result["changed"] and not result["rolled_back"] and not result["created"]
    assert pg_rows(postgres_server, database) == dumped
    safety = safety_metadata(tmp_path / "b", result["safety_backup_id"])
    assert safety["tags"] == ["safety"] and safety["kind"] == "database" and safety["total_rows"] == 4


def test_postgres_failing_restore_is_rolled_back_from_the_safety_dump(postgres_server, tmp_path):
    """Since the dump, another table references t: dropping t's key fails, and the newer data must survive."""
    database = pg_database(postgres_server, PG_TABLE)
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server))
    postgres_server.psql("CREATE TABLE u (id int PRIMARY KEY, t_id int REFERENCES t (id));"
                         "ALTER TABLE u OWNER TO %s; INSERT INTO t VALUES (4, 'new'); INSERT INTO u VALUES (1, 4)"
                         % postgres_server.user, database=database)
    newer = (pg_rows(postgres_server, database), postgres_server.psql("SELECT * FROM u", database=database))
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", made["id"], connection=login(postgres_server))
    assert failure.value.stage == "pg_restore"
    assert failure.value.result["rolled_back"] is True and failure.value.result["safety_backup_id"]
    assert "put back" in str(failure.value) and postgres_server.password not in str(failure.value)
    assert (pg_rows(postgres_server, database), postgres_server.psql("SELECT * FROM u", database=database)) == newer


def test_postgres_restore_into_another_database_creates_it(postgres_server, tmp_path):
    database = pg_database(postgres_server, PG_TABLE)
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server))
    other = unique("copy")
    check = restore(tmp_path / "b", made["id"], connection=login(postgres_server), check_mode=True, target_database=other)
    assert check["changed"] and check["created"]
    assert not postgres_server.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % other).strip()
    result = restore(tmp_path / "b", made["id"], connection=login(postgres_server), target_database=other)
    assert result["created"] and result["safety_backup_id"] is None
    assert pg_rows(postgres_server, other) == pg_rows(postgres_server, database)


def test_postgres_plain_restore_that_fails_midway_is_rolled_back(postgres_server, tmp_path):
    database = pg_database(postgres_server, PG_TABLE)
    made = dump(database, tmp_path / "b", "postgresql", **login(postgres_server), pg_format="plain")
    failing = craft_failing_copy(made, b"\nINSERT INTO t VALUES (1, 'duplicate key');\n")
    postgres_server.psql("INSERT INTO t VALUES (4, 'new')", database=database)
    newer = pg_rows(postgres_server, database)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", failing, connection=login(postgres_server))
    assert failure.value.result["rolled_back"] is True
    assert pg_rows(postgres_server, database) == newer


def test_postgres_tar_dump_with_globals_restores_the_database(postgres_server, tmp_path):
    database = pg_database(postgres_server, PG_TABLE)
    superuser = dict(login_unix_socket=postgres_server.socket_dir, login_port=postgres_server.port,
                     login_user=postgres_server.superuser)
    made = dump(database, tmp_path / "b", "postgresql", **superuser, include_globals=True)
    assert made["path"].endswith(".tar.zst.age")
    dumped = pg_rows(postgres_server, database)
    postgres_server.psql("DELETE FROM t", database=database)
    restore(tmp_path / "b", made["id"], connection=login(postgres_server))
    assert pg_rows(postgres_server, database) == dumped


# --- MariaDB ------------------------------------------------------------------------------------

MY_TABLE = ("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;"
            "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'drei')")


def my_rows(server, database):
    return server.sql("SELECT id, v FROM t ORDER BY id", database=database)


def my_database(server):
    database = server.create_database(unique("restore"))
    server.sql(MY_TABLE, database=database)
    return database


def test_mariadb_restore_over_newer_data_gives_the_dumped_rows(mariadb_server, tmp_path):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    dumped = my_rows(mariadb_server, database)
    mariadb_server.sql("INSERT INTO t VALUES (4, 'new'); UPDATE t SET v = 'changed' WHERE id = 1", database=database)
    result = restore(tmp_path / "b", made["id"], connection=login(mariadb_server))
    assert result["changed"] and result["safety_backup_id"]
    assert my_rows(mariadb_server, database) == dumped


def test_mariadb_failing_restore_is_rolled_back_from_the_safety_dump(mariadb_server, tmp_path):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    failing = craft_failing_copy(made, b"\nINSERT INTO t VALUES (1, 'duplicate key');\n")
    mariadb_server.sql("INSERT INTO t VALUES (4, 'new')", database=database)
    newer = my_rows(mariadb_server, database)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", failing, connection=login(mariadb_server))
    assert "Duplicate entry" in str(failure.value) and failure.value.result["rolled_back"] is True
    assert mariadb_server.password not in str(failure.value)
    assert my_rows(mariadb_server, database) == newer


def test_mariadb_restore_into_another_database_creates_it(mariadb_server, tmp_path):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    other = unique("copy")
    result = restore(tmp_path / "b", made["id"], connection=login(mariadb_server), target_database=other)
    assert result["created"] and my_rows(mariadb_server, other) == my_rows(mariadb_server, database)


# --- SQLite -------------------------------------------------------------------------------------


@pytest.fixture(name="sqlite_db")
def sqlite_db_fixture(tmp_path):
    path = str(tmp_path / "app.sqlite")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(MY_TABLE.replace(" ENGINE=InnoDB", ""))
    connection.commit()
    connection.close()
    return path


def test_sqlite_restore_replaces_the_file_and_drops_the_old_wal(sqlite_db, tmp_path):
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    dumped = sqlite_rows(sqlite_db)
    writer = sqlite3.connect(sqlite_db)
    writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the newer rows in the WAL
    writer.execute("INSERT INTO t VALUES (4, 'new')")
    writer.commit()
    assert os.path.getsize(sqlite_db + "-wal") > 0
    writer.close()
    result = restore(tmp_path / "b", made["id"])
    assert result["changed"] and result["safety_backup_id"]
    assert sqlite_rows(sqlite_db) == dumped
    assert not os.path.exists(sqlite_db + "-wal") or os.path.getsize(sqlite_db + "-wal") == 0
    assert sorted(os.listdir(tmp_path)) == ["app.sqlite", "b"]
    safety = safety_metadata(tmp_path / "b", result["safety_backup_id"])
    assert safety["tables"] == {"t": 4}


def test_sqlite_restore_of_a_broken_file_leaves_the_live_one(sqlite_db, tmp_path):
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    with open(made["path"], "rb") as handle:
        payload, _raw = _pipeline.open_payload(handle, "zstd", True, KEY)
        data = b"".join(iter(lambda: payload.read(1 << 20), b""))
    broken = data[:4096] + b"\xff" * 4096 + data[8192:]
    backup_id = made["id"] + "-2"
    path = made["path"].replace(made["id"], backup_id)
    with _pipeline.ArtifactWriter(path, "zstd", recipients=[RECIPIENT], content_digest=True) as writer:
        writer.write(broken)
        written = writer.commit()
    _catalog.write_sidecars(path, dict(made["metadata"], id=backup_id, artifact=os.path.basename(path),
                                       sha256=written["sha256"], size=written["size"],
                                       content_sha256=written["content_sha256"]))
    with open(sqlite_db, "rb") as handle:
        before = handle.read()
    with pytest.raises(IntegrityError, match="integrity_check"):
        restore(tmp_path / "b", backup_id)
    with open(sqlite_db, "rb") as handle:
        assert handle.read() == before
    assert sorted(name for name in os.listdir(tmp_path) if "lifeboat" in name) == []


def test_sqlite_restore_to_a_new_file(sqlite_db, tmp_path):
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    other = str(tmp_path / "copy.sqlite")
    result = restore(tmp_path / "b", made["id"], target_database=other)
    assert result["created"] and sqlite_rows(other) == sqlite_rows(sqlite_db)


def test_sqlite_restore_keeps_the_live_files_owner_and_mode(sqlite_db, tmp_path):
    """The application runs as its own user: the restored file must stay readable to it."""
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    os.chmod(sqlite_db, 0o640)
    if os.geteuid() == 0:
        os.chown(sqlite_db, 1234, 5678)
    restore(tmp_path / "b", made["id"])
    st = os.stat(sqlite_db)
    assert st.st_mode & 0o7777 == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_a_job_with_files_and_a_dump_needs_to_be_told_which(sqlite_db, tmp_path):
    """job + latest or deploy_id never guesses between a job's series: an operator says files or which database."""
    made = dump(sqlite_db, tmp_path / "b", "sqlite", deploy_id="v1")
    files = _archive.run_archive(_archive.ArchiveRequest([sqlite_db], "db", backup_dir=str(tmp_path / "b"),
                                                         recipients=[RECIPIENT], deploy_id="v1"))

    def select(**options):
        request = _restore.RestoreRequest(backup_dir=str(tmp_path / "b"), job="db", key=KEY, **options)
        return _restore.select_backup(request)[1]["id"]

    for options in ({"latest": True}, {"deploy_id": "v1"}):
        with pytest.raises(UsageError) as error:
            select(**options)
        message = str(error.value)
        assert "database sqlite %s (%s)" % (sqlite_db, made["id"]) in message
        assert "files (%s)" % files["id"] in message and "kind: files, or database: NAME" in message
    assert select(latest=True, kind="files") == files["id"]
    assert select(deploy_id="v1", kind="database") == made["id"]
    assert select(latest=True, database=sqlite_db) == made["id"]
    with pytest.raises(NotFoundError, match="job db has no backup of database other.db with deploy id v1 in "):
        select(deploy_id="v1", database="other.db")
    with pytest.raises(UsageError, match="kind is files or database"):
        select(latest=True, kind="files", database=sqlite_db)
