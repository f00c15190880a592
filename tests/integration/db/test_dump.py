# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dumps through the whole pipeline, against real servers, restored with the engines' own tools."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import threading
import time

import pytest

from dbservers import login
from testlib import (IDENTITY, RECIPIENT, BackgroundThread, age_decrypt_cli, dump, lock_held_elsewhere, require_binary,
                     sqlite_rows, sqlite_sample)
# Fixtures of the dumper tests, shared rather than redefined.
from test_dumpers import (my_database, my_fresh, pg_database, pg_fresh)  # pylint: disable=unused-import
from test_dumpers import (LOAD_SCHEMA, LOAD_TOTAL, MY_SAMPLE, MY_SAMPLE_COUNTS, PG_SAMPLE, PG_SAMPLE_COUNTS,
                          TransferWriter, _broken_sqlite, children_named, cmdlines_containing, my_fingerprint,
                          pg_as_owner, pg_fingerprint, sqlite_bank_under_load, unique,
                          wait_for_progress)

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog, _dump, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    BackupError, IntegrityError, LockedError, MissingDependencyError, SourceError, UsageError)

KILL_AFTER_BYTES = 4 << 20
LARGE_ROWS = 200000  # about 100 MB of dump: a tool can be stopped long before it is done


# --- helpers -------------------------------------------------------------------------------------


def payload(result, tmp_path):
    """The artifact opened by hand: the age CLI, then the zstd CLI."""
    assert result["path"].endswith(".zst.age")
    compressed = age_decrypt_cli(result["path"], IDENTITY, tmp_path)
    return subprocess.run(["zstd", "-d", "-c"], input=compressed, capture_output=True, check=True).stdout


def leftovers(backup_dir):
    """Everything under backup_dir except the lock and the (empty) job directory."""
    found = []
    for directory, dirs, files in os.walk(str(backup_dir)):
        found += [os.path.relpath(os.path.join(directory, name), str(backup_dir)) for name in dirs + files]
    return sorted(path for path in found if path not in (_catalog.LOCK_NAME, "db"))


def assert_metadata_file_matches(result):
    metadata = _catalog.read_metadata(_catalog.strip_artifact_suffix(result["path"]) + ".json")
    assert metadata == result["metadata"]
    return metadata


def pg_restore(server, database, source, *options):
    subprocess.run([server.client("pg_restore"), "--no-owner", "--exit-on-error", "-h", server.socket_dir,
                    "-p", str(server.port), "-U", server.superuser, "-d", database] + list(options) + [str(source)],
                   check=True)


def write_file(path, data):
    path.write_bytes(data)
    return path


class AfterOutput(BackgroundThread):
    """Once the named child tool has written `size` bytes of output, does something to it (once)."""

    def __init__(self, tool, action, size=KILL_AFTER_BYTES):
        super().__init__()
        self.tool = tool
        self.action = action
        self.size = size
        self.done = threading.Event()

    def _written(self, pid):
        with open("/proc/%d/io" % pid, encoding="ascii") as handle:
            return int(next(line for line in handle if line.startswith("wchar:")).split()[1])

    def run(self):
        while not self.stop.is_set():
            pids = children_named(self.tool)
            try:
                if pids and self._written(pids[0]) >= self.size:
                    self.action(pids[0])
                    self.done.set()
                    return
            except OSError:
                continue  # the tool exited between the two looks
            time.sleep(0.001)


@pytest.fixture(scope="module")
def pg_large(postgres_server):
    name = postgres_server.create_database(unique("large"))
    pg_as_owner(postgres_server, name, "CREATE TABLE big (id int PRIMARY KEY, payload text);"
                "INSERT INTO big SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, %d) AS g" % LARGE_ROWS)
    yield name
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def my_large(mariadb_server):
    name = mariadb_server.create_database(unique("large"))
    mariadb_server.sql("CREATE TABLE big (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB;"
                       "INSERT INTO big SELECT seq, REPEAT(MD5(seq), 16) FROM seq_1_to_%d" % LARGE_ROWS, name)
    yield name
    mariadb_server.drop_database(name)


# --- round trips: dump, open by hand with age and zstd, restore with the engine's own tool --------

def test_postgres_custom_round_trip(postgres_server, pg_database, pg_fresh, tmp_path):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    result = dump(pg_database, tmp_path / "backups", "postgresql", tags=["nightly"], deploy_id="v7",
                  **login(postgres_server))

    assert result["changed"]
    assert result["path"].endswith(".pgdump.zst.age") and result["id"].startswith("db-")
    assert result["tables"] == PG_SAMPLE_COUNTS and result["total_rows"] == 545
    assert result["server_version"] == postgres_server.psql("SHOW server_version").strip()
    metadata = assert_metadata_file_matches(result)
    assert metadata["kind"] == "database" and metadata["engine"] == "postgresql"
    assert metadata["database"] == pg_database and metadata["sources"] == [pg_database]
    assert metadata["dump_format"] == "custom" and metadata["row_counts"] == "exact"
    assert metadata["server"] == {"host": postgres_server.host, "port": postgres_server.port}
    assert metadata["encryption"] == {"method": "x25519", "recipients": [RECIPIENT]}
    assert metadata["tags"] == ["nightly"] and metadata["deploy_id"] == "v7"
    assert dict(metadata["verification"], at=None) == {"state": "verified", "level": "full", "method": "read-back",
                                                       "at": None}

    data = payload(result, tmp_path)
    assert data[:5] == b"PGDMP"
    assert "content_sha256" not in metadata  # it would confirm a guess of the encrypted content
    assert metadata["input_size"] == len(data)
    pg_restore(postgres_server, pg_fresh, write_file(tmp_path / "restore.pgdump", data))
    assert pg_fingerprint(postgres_server, pg_fresh) == pg_fingerprint(postgres_server, pg_database)
    assert leftovers(tmp_path / "backups") == sorted(
        "db/" + result["id"] + suffix for suffix in (".json", ".pgdump.zst.age", ".sha256"))


def test_postgres_plain_round_trip(postgres_server, pg_database, pg_fresh, tmp_path):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    result = dump(pg_database, tmp_path / "backups", "postgresql", pg_format="plain", **login(postgres_server))
    assert result["path"].endswith(".sql.zst.age")
    assert result["metadata"]["dump_format"] == "plain"
    sql = payload(result, tmp_path)
    subprocess.run(postgres_server.psql_argv(pg_fresh), input=sql, check=True, stdout=subprocess.DEVNULL)
    assert pg_fingerprint(postgres_server, pg_fresh) == pg_fingerprint(postgres_server, pg_database)


def test_postgres_directory_format_with_globals_round_trip(postgres_server, pg_database, pg_fresh, tmp_path):
    require_binary("tar")
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    role = unique("lifeboat_role")
    postgres_server.psql("CREATE ROLE %s LOGIN CONNECTION LIMIT 5" % role)
    result = dump(pg_database, tmp_path / "backups", "postgresql", pg_format="directory", jobs=2,
                  include_globals=True, login_unix_socket=postgres_server.socket_dir,
                  login_port=postgres_server.port, login_user=postgres_server.superuser)
    assert result["path"].endswith(".tar.zst.age")
    assert result["metadata"]["include_globals"] and result["metadata"]["dump_format"] == "directory"
    assert result["tables"] == PG_SAMPLE_COUNTS
    assert leftovers(tmp_path / "backups") == sorted(
        "db/" + result["id"] + suffix for suffix in (".json", ".sha256", ".tar.zst.age"))  # no .dump-tmp left

    tar_stream = payload(result, tmp_path)
    assert "content_sha256" not in result["metadata"]
    members = subprocess.run(["tar", "-t"], input=tar_stream, capture_output=True, check=True).stdout.decode()
    assert members.splitlines() == sorted(members.splitlines()) and "database.dir/toc.dat" in members.splitlines()
    assert members.splitlines()[0] == "database.dir/" and members.splitlines()[-1] == "globals.sql"
    (tmp_path / "out").mkdir()
    subprocess.run(["tar", "-x", "-C", str(tmp_path / "out")], input=tar_stream, check=True)
    pg_restore(postgres_server, pg_fresh, tmp_path / "out" / "database.dir", "--jobs=2")
    assert pg_fingerprint(postgres_server, pg_fresh) == pg_fingerprint(postgres_server, pg_database)

    postgres_server.psql("DROP ROLE %s" % role)
    # Roles that still exist make harmless "already exists" errors: no ON_ERROR_STOP.
    subprocess.run([postgres_server.client("psql"), "-Xq", "-h", postgres_server.socket_dir, "-p",
                    str(postgres_server.port), "-U", "postgres", "-d", "postgres",
                    "-f", str(tmp_path / "out" / "globals.sql")], check=True, capture_output=True)
    assert postgres_server.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = '%s'" % role).strip() == "5"
    postgres_server.psql("DROP ROLE %s" % role)


def test_mariadb_round_trip(mariadb_server, my_database, my_fresh, tmp_path):
    mariadb_server.sql(MY_SAMPLE, my_database)
    result = dump(my_database, tmp_path / "backups", "mysql", **login(mariadb_server))
    assert result["path"].endswith(".sql.zst.age")
    assert result["tables"] == MY_SAMPLE_COUNTS and result["total_rows"] == 503
    assert "MariaDB" in result["server_version"]
    metadata = assert_metadata_file_matches(result)
    assert metadata["engine"] == "mysql" and metadata["dump_format"] == "plain"

    sql = payload(result, tmp_path)
    assert "content_sha256" not in metadata
    mariadb_server.load(write_file(tmp_path / "restore.sql", sql), my_fresh)
    assert my_fingerprint(mariadb_server, my_fresh) == my_fingerprint(mariadb_server, my_database)
    assert "people_upper" in mariadb_server.sql("SHOW TRIGGERS", my_fresh)


def test_sqlite_round_trip(tmp_path):
    original = tmp_path / "app.db"
    sqlite_sample(original)
    result = dump(original, tmp_path / "backups")
    assert result["path"].endswith(".sqlite.zst.age")
    assert result["tables"] == {"people": 500, 'odd "name': 3} and result["total_rows"] == 503
    assert result["server_version"] == sqlite3.sqlite_version
    metadata = assert_metadata_file_matches(result)
    assert metadata["database"] == str(original) and metadata["dump_format"] == "file"
    assert metadata["server"] == {}

    restored = write_file(tmp_path / "restored.db", payload(result, tmp_path))
    assert sqlite_rows(restored) == sqlite_rows(original)


def test_relative_sqlite_path_is_recorded_absolute(tmp_path, monkeypatch):
    sqlite_sample(tmp_path / "app.db")
    monkeypatch.chdir(tmp_path)
    result = dump("app.db", tmp_path / "backups")
    assert result["metadata"]["database"] == str(tmp_path / "app.db")


@pytest.mark.parametrize("options, suffix", [
    ({"compression": "gzip"}, ".sqlite.gz.age"),
    ({"compression": "none", "recipients": []}, ".sqlite"),
    ({"compression": "zstd", "compression_level": 19, "recipients": []}, ".sqlite.zst"),
])
def test_artifact_names_follow_the_layers(tmp_path, options, suffix):
    sqlite_sample(tmp_path / "app.db")
    result = dump(tmp_path / "app.db", tmp_path / "backups", **options)
    assert os.path.basename(result["path"]) == result["id"] + suffix
    if suffix == ".sqlite":  # neither compressed nor encrypted: the artifact is the database itself
        assert sqlite_rows(result["path"]) == sqlite_rows(tmp_path / "app.db")
        assert result["metadata"]["content_sha256"] == result["sha256"]
    # Only an unencrypted dump, readable anyway, records the digest of its content.
    assert ("content_sha256" in result["metadata"]) == (not suffix.endswith(".age"))


# --- consistency under load, through the whole pipeline -----------------------------------------

def test_postgres_consistent_under_load(postgres_server, pg_database, pg_fresh, tmp_path):
    pg_as_owner(postgres_server, pg_database, LOAD_SCHEMA
                + "INSERT INTO acc_a SELECT g, 1000 FROM generate_series(0, 9) AS g;"
                + "INSERT INTO zz_acc_b SELECT g, 1000 FROM generate_series(0, 6) AS g;"
                + "CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 60000) g;")

    def progress():
        return int(postgres_server.psql("SELECT n FROM progress", pg_database))

    with TransferWriter(postgres_server.psql_argv(pg_database)):
        before = wait_for_progress(progress, 0)
        result = dump(pg_database, tmp_path / "backups", "postgresql", **login(postgres_server))
        after = wait_for_progress(progress, before)
    pg_restore(postgres_server, pg_fresh, write_file(tmp_path / "restore.pgdump", payload(result, tmp_path)))
    total, stored = postgres_server.psql("SELECT (SELECT sum(balance) FROM acc_a) + (SELECT sum(balance) FROM "
                                         "zz_acc_b), (SELECT n FROM progress)", pg_fresh).strip().split("|")
    assert int(total) == LOAD_TOTAL
    assert before <= int(stored) <= after  # taken while the transfers ran


def test_mariadb_consistent_under_load(mariadb_server, my_database, my_fresh, tmp_path):
    mariadb_server.sql(LOAD_SCHEMA + "INSERT INTO acc_a SELECT seq, 1000 FROM seq_0_to_9;"
                       + "INSERT INTO zz_acc_b SELECT seq, 1000 FROM seq_0_to_6;"
                       + "CREATE TABLE filler ENGINE=InnoDB AS SELECT seq, REPEAT(MD5(seq), 8) AS pad "
                         "FROM seq_1_to_60000;", my_database)

    def progress():
        return int(mariadb_server.sql("SELECT n FROM progress", my_database))

    with TransferWriter(mariadb_server.client_argv(my_database), begin="START TRANSACTION"):
        before = wait_for_progress(progress, 0)
        result = dump(my_database, tmp_path / "backups", "mysql", **login(mariadb_server))
        after = wait_for_progress(progress, before)
    mariadb_server.load(write_file(tmp_path / "restore.sql", payload(result, tmp_path)), my_fresh)
    total, stored = mariadb_server.sql("SELECT (SELECT SUM(balance) FROM acc_a) + (SELECT SUM(balance) FROM "
                                       "zz_acc_b), (SELECT n FROM progress)", my_fresh).split()
    assert int(total) == LOAD_TOTAL
    assert before <= int(stored) <= after


def test_sqlite_consistent_under_load_in_wal_mode(tmp_path):
    path = tmp_path / "bank.db"
    with sqlite_bank_under_load(str(path)) as progress:
        before = wait_for_progress(progress, 0)
        results = [dump(path, tmp_path / "backups") for _attempt in range(3)]
        wait_for_progress(progress, before)
    for number, result in enumerate(results):
        copy = sqlite3.connect(write_file(tmp_path / ("copy%d.db" % number), payload(result, tmp_path)))
        total = copy.execute("SELECT (SELECT sum(balance) FROM acc_a) + (SELECT sum(balance) FROM zz_acc_b)")
        assert total.fetchone()[0] == LOAD_TOTAL
        # The recorded description is the snapshot's: it counts exactly the rows stored.
        assert result["tables"]["progress"] == 1 and result["tables"]["filler"] == 20000
        copy.close()


# --- failures leave nothing behind ---------------------------------------------------------------

SERVER_GONE = "terminating connection due to administrator command|server closed the connection unexpectedly"


def assert_failed(caught, stage, *fragments):
    message = str(caught.value)
    assert caught.value.stage == stage, message
    assert message.startswith(stage + ": ")
    for fragment in fragments:
        assert fragment in message, message


def test_postgres_dump_killed_midway(postgres_server, pg_large, tmp_path):
    with AfterOutput("pg_dump", lambda pid: os.kill(pid, 9)) as killer:
        with pytest.raises(BackupError) as caught:
            dump(pg_large, tmp_path / "backups", "postgresql", **login(postgres_server))
    assert killer.done.is_set()
    assert_failed(caught, "pg_dump", "pg_dump killed by signal 9 (SIGKILL)")
    assert leftovers(tmp_path / "backups") == []
    assert children_named("pg_dump") == []


def test_mariadb_dump_killed_midway(mariadb_server, my_large, tmp_path):
    with AfterOutput("mariadb-dump", lambda pid: os.kill(pid, 9)) as killer:
        with pytest.raises(BackupError) as caught:
            dump(my_large, tmp_path / "backups", "mysql", **login(mariadb_server))
    assert killer.done.is_set()
    assert_failed(caught, "mariadb-dump", "killed by signal 9 (SIGKILL)")
    assert leftovers(tmp_path / "backups") == []  # the defaults file's directory included


def test_postgres_server_goes_away_midway(postgres_server, pg_large, tmp_path):
    def terminate(_pid):
        postgres_server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = '%s' AND application_name = 'pg_dump'" % pg_large)

    with AfterOutput("pg_dump", terminate) as terminator:
        with pytest.raises(BackupError) as caught:
            dump(pg_large, tmp_path / "backups", "postgresql", **login(postgres_server))
    assert terminator.done.is_set()
    assert_failed(caught, "pg_dump", "exited with status 1")
    # libpq reports the server's FATAL message, or only the closed socket when that arrives first.
    assert re.search(SERVER_GONE, str(caught.value)), str(caught.value)
    assert leftovers(tmp_path / "backups") == []


def test_mariadb_connection_lost_midway(mariadb_server, my_large, tmp_path):
    def kill_connection(_pid):
        for connection in mariadb_server.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' "
                                             "AND USER = '%s'" % (my_large, mariadb_server.user)).split():
            mariadb_server.sql("KILL %s" % connection)

    with AfterOutput("mariadb-dump", kill_connection) as killer:
        with pytest.raises(BackupError) as caught:
            dump(my_large, tmp_path / "backups", "mysql", **login(mariadb_server))
    assert killer.done.is_set()
    assert_failed(caught, "mariadb-dump", "Lost connection")
    assert leftovers(tmp_path / "backups") == []


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_wrong_password(request, engine, tmp_path):
    server = request.getfixturevalue({"postgresql": "postgres_server", "mysql": "mariadb_server"}[engine])
    database = request.getfixturevalue({"postgresql": "pg_database", "mysql": "my_database"}[engine])
    with pytest.raises(BackupError) as caught:
        dump(database, tmp_path / "backups", engine, **login(server, password="Wr0ng-password-x"))
    expected = {"postgresql": 'password authentication failed for user "lifeboat"',
                "mysql": "Access denied for user 'lifeboat'"}[engine]
    assert_failed(caught, "connect", expected)
    assert "Wr0ng-password-x" not in str(caught.value)
    assert leftovers(tmp_path / "backups") == []


@pytest.mark.parametrize("engine, expected", [("postgresql", 'database "no_such_db" does not exist'),
                                              ("mysql", "Unknown database 'no_such_db'")])
@pytest.mark.parametrize("check_mode", [False, True])
def test_unknown_database(request, engine, expected, check_mode, tmp_path):
    server = request.getfixturevalue({"postgresql": "postgres_server", "mysql": "mariadb_server"}[engine])
    with pytest.raises(BackupError) as caught:
        dump("no_such_db", tmp_path / "backups", engine, check_mode=check_mode, **login(server))
    assert_failed(caught, "connect", expected)
    assert leftovers(tmp_path / "backups") == []
    if check_mode:
        assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("check_mode", [False, True])
def test_sqlite_missing_file(tmp_path, check_mode):
    with pytest.raises(SourceError) as caught:
        dump(tmp_path / "gone.db", tmp_path / "backups", check_mode=check_mode)
    assert_failed(caught, "connect", "SQLite database %s does not exist" % (tmp_path / "gone.db"))
    assert leftovers(tmp_path / "backups") == []


def test_sqlite_corrupt_database(tmp_path):
    _broken_sqlite(tmp_path / "broken.db")
    with pytest.raises(SourceError) as caught:
        dump(tmp_path / "broken.db", tmp_path / "backups")
    assert_failed(caught, "sqlite integrity_check", "integrity check of a snapshot of")
    assert leftovers(tmp_path / "backups") == []  # the snapshot was removed too


@pytest.mark.parametrize("engine, package", [("postgresql", "postgresql-client"), ("mysql", "mariadb-client")])
def test_missing_client_binary(engine, package, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MissingDependencyError) as caught:
        dump("app", tmp_path / "backups", engine, login_host="127.0.0.1", login_password="x")
    assert_failed(caught, "connect", "not found on PATH", package)
    assert leftovers(tmp_path / "backups") == []


def test_locked_backup_dir_dumps_nothing(tmp_path):
    sqlite_sample(tmp_path / "app.db")
    with lock_held_elsewhere(tmp_path / "backups"):
        with pytest.raises(LockedError):
            dump(tmp_path / "app.db", tmp_path / "backups")
    assert leftovers(tmp_path / "backups") == []


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    stale = tmp_path / "backups" / _dump.SCRATCH_NAME / "lifeboat-dump-old"
    stale.mkdir(parents=True)
    (stale / "snapshot.sqlite").write_bytes(b"plaintext of an earlier run")
    sqlite_sample(tmp_path / "app.db")
    result = dump(tmp_path / "app.db", tmp_path / "backups")
    assert leftovers(tmp_path / "backups") == sorted(
        "db/" + result["id"] + suffix for suffix in (".json", ".sha256", ".sqlite.zst.age"))


@pytest.mark.parametrize("engine, options, fragment", [
    ("oracle", {}, "unknown database engine"),
    ("mysql", {"pg_format": "plain"}, "format and jobs apply to PostgreSQL only"),
    ("sqlite", {"jobs": 2}, "format and jobs apply to PostgreSQL only"),
    ("postgresql", {"jobs": 4}, "needs pg_format=directory"),
    ("mysql", {"include_globals": True}, "PostgreSQL only"),
    ("postgresql", {"row_counts": "guess"}, "row_counts must be one of"),
    ("postgresql", {"compression_level": 30}, "out of range"),
    ("postgresql", {"passphrase": "pw"}, "either recipients or passphrase"),
])
def test_contradicting_options_fail_before_anything_is_touched(tmp_path, engine, options, fragment):
    with pytest.raises(UsageError) as caught:
        dump("db", tmp_path / "backups", engine, **options)
    assert fragment in str(caught.value)
    assert not (tmp_path / "backups").exists()


# --- check mode ----------------------------------------------------------------------------------

def test_check_mode_predicts_and_writes_nothing(postgres_server, pg_database, tmp_path):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    result = dump(pg_database, tmp_path / "backups", "postgresql", check_mode=True, **login(postgres_server))
    assert result["changed"]
    assert result["tables"] == PG_SAMPLE_COUNTS and result["total_rows"] == 545
    assert result["server_version"] == postgres_server.psql("SHOW server_version").strip()
    assert "would dump postgresql database %s (4 tables, 545 rows) into %s" % (
        pg_database, tmp_path / "backups" / "db" / "<id>.pgdump.zst.age") == result["msg"]
    assert "id" not in result and "path" not in result
    assert not (tmp_path / "backups").exists()


# --- secrets -------------------------------------------------------------------------------------

class CmdlineSampler(BackgroundThread):
    """Reads every process's command line over and over while a dump runs."""

    def __init__(self, secret, tool):
        super().__init__()
        self.secret = secret
        self.tool = tool
        self.hits = set()
        self.tool_seen = False

    def run(self):
        while not self.stop.is_set():
            self.hits.update(cmdlines_containing(self.secret))
            self.tool_seen = self.tool_seen or bool(children_named(self.tool))


@pytest.mark.parametrize("engine, tool", [("postgresql", "pg_dump"), ("mysql", "mariadb-dump")])
def test_password_is_nowhere(request, engine, tool, tmp_path):
    server = request.getfixturevalue({"postgresql": "postgres_server", "mysql": "mariadb_server"}[engine])
    database = request.getfixturevalue({"postgresql": "pg_large", "mysql": "my_large"}[engine])
    assert "PGPASSWORD" not in os.environ
    with CmdlineSampler(server.password, tool) as sampler:
        result = dump(database, tmp_path / "backups", engine, **login(server))
    assert sampler.tool_seen, "the sampler never saw the dump tool run"
    assert sampler.hits == set()
    assert "PGPASSWORD" not in os.environ
    assert server.password not in json.dumps(result)
    for name in os.listdir(tmp_path / "backups" / "db"):
        if not name.endswith(".age"):
            assert server.password.encode() not in (tmp_path / "backups" / "db" / name).read_bytes()


def test_echoed_password_is_scrubbed_from_the_message(postgres_server, tmp_path):
    """The server echoes the database name; here it is the password itself."""
    with pytest.raises(BackupError) as caught:
        dump(postgres_server.password, tmp_path / "backups", "postgresql", **login(postgres_server))
    assert 'database "********" does not exist' in str(caught.value)
    assert postgres_server.password not in str(caught.value)


# --- verification --------------------------------------------------------------------------------

@pytest.mark.parametrize("pg_format", ["custom", "directory"])
def test_full_verification_of_a_dump(postgres_server, pg_database, tmp_path, pg_format):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    backup_dir = str(tmp_path / "backups")
    result = dump(pg_database, backup_dir, "postgresql", pg_format=pg_format, **login(postgres_server))
    key = _age.Key(identities=IDENTITY)

    verified = _verify.verify(backup_dir, result["id"], level="full", key=key)
    assert verified["verified"] and verified["members"] == 1
    assert verified["bytes"] == result["metadata"]["input_size"]
    assert _catalog.find_backup(backup_dir, result["id"])["verification"]["state"] == "verified"

    # The full level compares the decrypted payload with content_sha256: a different record is caught.
    metadata_path = _catalog.strip_artifact_suffix(result["path"]) + ".json"
    metadata = _catalog.read_metadata(metadata_path)
    metadata["content_sha256"] = "0" * 64
    _catalog.write_metadata(metadata_path, metadata)
    with pytest.raises(IntegrityError) as caught:
        _verify.verify(backup_dir, result["id"], level="full", key=key)
    assert "does not match the recorded content SHA-256" in str(caught.value)


def test_globals_need_a_superuser(postgres_server, pg_database, tmp_path):
    """pg_dumpall reads pg_authid: as the documented privileges say, an ordinary role fails, plainly."""
    with pytest.raises(BackupError) as caught:
        dump(pg_database, tmp_path / "backups", "postgresql", include_globals=True, **login(postgres_server))
    assert_failed(caught, "pg_dumpall", "exited with status 1", "permission denied for table pg_authid")
    assert leftovers(tmp_path / "backups") == []  # the private dump directory included
