# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database restores that are killed or fail unexpectedly midway, against real servers and real processes.

SIGTERM, SIGINT and any exception end with the database put back from the safety backup; SIGKILL leaves a
record in the catalog that health reports with the one command that puts the database back, and the next
restore of that database goes back to the same safety backup. Scratch files live in <backup_dir>/.tmp, never in
the system's temporary directory, and what a killed run left there or beside an SQLite file goes at the next start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _health, _restore, _tools
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError
from ansible_collections.lifeboat.backup.plugins.module_utils._restore import database as restore_database

from dbservers import login
from test_restore_db import my_database, my_rows, sqlite_db_fixture, unique
from testlib import IDENTITY, KEY, dump, restore

__all__ = ["sqlite_db_fixture"]  # the sqlite_db fixture, used here too

BIG_ROWS = 1500000
RESTORE_SCRIPT = """
import json, sys
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore
backup_dir, backup_id, identity, connection = sys.argv[1:5]
request = _restore.RestoreRequest(backup_dir=backup_dir, backup_id=backup_id, key=_age.Key(identities=[identity]),
                                  connection=json.loads(connection))
try:
    _restore.restore_backup(request)
except Exception as exc:
    print(json.dumps({"msg": str(exc), "result": getattr(exc, "result", {})}))
    sys.exit(1)
print(json.dumps({"msg": "restored"}))
"""


def start_restore(backup_dir, backup_id, connection):
    """The restore in a process of its own, as the timers and ansible run it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, "-c", RESTORE_SCRIPT, str(backup_dir), backup_id, IDENTITY,
                             json.dumps(connection)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for(predicate, process, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the restore ended before %s: %s" % (what, process.communicate())
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.05)


def health(backup_dir):
    """The health problems but the backups never verified (a test verifies none)."""
    return [problem for problem in _health.catalog_info(str(backup_dir))["health"]["problems"]
            if problem["code"] != "unverified"]


def pg_big_database(server):
    database = server.create_database(unique("big"))
    server.psql("CREATE TABLE big (id int PRIMARY KEY, v text); ALTER TABLE big OWNER TO %s;"
                "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, %d) g" % (server.user, BIG_ROWS),
                database=database)
    return database


def pg_state(server, database):
    return server.psql("SELECT count(*), max(v), md5(string_agg(v, ',' ORDER BY id)) FROM big", database=database)


def pg_loading(server, database):
    """Whether psql is loading rows into the database (the safety dump's COPY goes TO stdout)."""
    return lambda: server.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
                               "AND query LIKE 'COPY %% FROM stdin%%'" % database).strip() != "0"


def restore_caught_loading(server, tmp_path):
    """(database, backup, its state before, the restore process) once a plain restore of a big dump is loading."""
    database = pg_big_database(server)
    made = dump(database, tmp_path / "b", "postgresql", **login(server), pg_format="plain")
    server.psql("UPDATE big SET v = 'newer' WHERE id = 1", database=database)
    before = pg_state(server, database)
    process = start_restore(tmp_path / "b", made["id"], login(server))
    wait_for(pg_loading(server, database), process, "the load")
    return database, made, before, process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_postgres_restore_stopped_by_a_signal_mid_load_is_put_back(postgres_server, tmp_path, signum):
    database, made, before, process = restore_caught_loading(postgres_server, tmp_path)
    process.send_signal(signum)
    stdout, _stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    report = json.loads(stdout)
    assert "interrupted by %s" % signal.Signals(signum).name in report["msg"]
    assert "the database was put back as it was from the safety backup" in report["msg"]
    assert report["result"]["rolled_back"] is True
    assert pg_state(postgres_server, database) == before
    assert health(tmp_path / "b") == []


def test_postgres_restore_killed_mid_load_is_reported_and_put_back_by_the_next_restore(postgres_server, tmp_path):
    database, made, before, process = restore_caught_loading(postgres_server, tmp_path)
    process.kill()
    process.wait()
    problems = health(tmp_path / "b")
    assert [problem["code"] for problem in problems] == ["interrupted_restore"]
    safety = [meta["id"] for meta in _catalog.list_metadata(str(tmp_path / "b")) if "safety" in meta["tags"]]
    assert len(safety) == 1
    assert "the restore of %s into postgresql database %s" % (made["id"], database) in problems[0]["message"]
    assert "was killed midway" in problems[0]["message"]
    assert "put it back as it was with: lifeboat restore %s --file-key FILE" % safety[0] in problems[0]["message"]
    wait_for(lambda: not pg_loading(postgres_server, database)(), subprocess.Popen(["sleep", "60"]), "psql to end")
    # the plain restore had recreated the database; its load, never committed, left no table
    assert postgres_server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'big'", database=database) == "0\n"
    result = restore(tmp_path / "b", safety[0], connection=login(postgres_server))
    assert result["safety_backup_id"] == safety[0]  # no dump is taken of what the killed restore left
    assert "was killed midway" in result["warnings"][0]
    assert pg_state(postgres_server, database) == before
    assert health(tmp_path / "b") == []


def test_mariadb_restore_that_fails_unexpectedly_is_put_back(mariadb_server, tmp_path, monkeypatch):
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    mariadb_server.sql("INSERT INTO t VALUES (4, 'new'); DELETE FROM t WHERE id = 2", database=database)
    before = my_rows(mariadb_server, database)
    real_open_payload = restore_database.open_payload

    class Failing:
        """The dump's first part, then an error that is not the engine's own."""

        def __init__(self, payload):
            self.payload = payload
            self.calls = 0

        def read(self, size=-1):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("something nobody expected")
            return self.payload.read(size)

    opened = []

    def failing_open_payload(*args, **kwargs):
        """The restore's payload fails; the roll-back's, opened next, is left alone."""
        payload, raw = real_open_payload(*args, **kwargs)
        opened.append(payload)
        return (Failing(payload) if len(opened) == 1 else payload), raw

    monkeypatch.setattr(restore_database, "open_payload", failing_open_payload)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "b", made["id"], connection=login(mariadb_server))
    assert "failed unexpectedly (RuntimeError: something nobody expected)" in str(failure.value)
    assert failure.value.result["rolled_back"] is True
    assert my_rows(mariadb_server, database) == before
    assert health(tmp_path / "b") == []


def test_mariadb_restore_never_writes_into_the_system_temporary_directory(mariadb_server, tmp_path, monkeypatch):
    """The defaults file holding the password goes to <backup_dir>/.tmp: with no usable /tmp, the restore works."""
    database = my_database(mariadb_server)
    made = dump(database, tmp_path / "b", "mysql", **login(mariadb_server))
    dumped = my_rows(mariadb_server, database)
    mariadb_server.sql("DELETE FROM t", database=database)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    restore(tmp_path / "b", made["id"], connection=login(mariadb_server))
    assert my_rows(mariadb_server, database) == dumped
    assert os.listdir(tmp_path / "b" / ".tmp") == []
    assert os.stat(tmp_path / "b" / ".tmp").st_mode & 0o777 == 0o700


HOLD_SCRIPT = """
import sys, time
from ansible_collections.lifeboat.backup.plugins.module_utils import _tools
with _tools.private_directory(sys.argv[1]) as path:
    open(path + "/database.sql", "w").write("plaintext")
    print(path, flush=True)
    time.sleep(600)
"""


def hold_private_directory(parent):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, parent], stdout=subprocess.PIPE, env=env)
    return process, process.stdout.readline().decode().strip()


def test_scratch_space_of_a_killed_restore_is_no_job_and_goes_at_the_next_start(sqlite_db, tmp_path):
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    scratch = _catalog.private_dir(str(tmp_path / "b"))
    killed, left = hold_private_directory(scratch)
    killed.kill()
    killed.wait()
    running, held = hold_private_directory(scratch)
    try:
        assert health(tmp_path / "b") == []  # .tmp is no job
        restore(tmp_path / "b", made["id"])
        assert not os.path.exists(left) and os.path.exists(os.path.join(held, "database.sql"))
    finally:
        running.kill()
        running.wait()
    _tools.clean_private_directories(scratch)
    assert os.listdir(scratch) == []


def test_sqlite_copy_left_by_a_killed_restore_goes_at_the_next_restore(sqlite_db, tmp_path):
    made = dump(sqlite_db, tmp_path / "b", "sqlite")
    left = tmp_path / ".app.sqlite.lifeboat-restore-k1ll3d"
    left.write_bytes(b"plaintext of a killed restore")
    (tmp_path / ".app.sqlite.lifeboat-restore-k1ll3d-wal").write_bytes(b"")
    (tmp_path / ".app.sqlite.lifeboat-restore-gone-wal").write_bytes(b"moved aside before the final rename")
    other = tmp_path / ".other.sqlite.lifeboat-restore-xyz"
    other.write_bytes(b"another database's")
    result = _restore.restore_backup(_restore.RestoreRequest(backup_dir=str(tmp_path / "b"), backup_id=made["id"],
                                                             key=KEY))
    assert result["changed"]
    assert sorted(os.listdir(tmp_path)) == sorted([".other.sqlite.lifeboat-restore-xyz", "app.sqlite", "b"])
