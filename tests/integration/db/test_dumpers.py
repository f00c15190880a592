# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dump backends against real PostgreSQL and MariaDB servers and real SQLite files."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

import dbservers
from testlib import BackgroundThread, sqlite_rows, sqlite_sample
from ansible_collections.lifeboat.backup.plugins.module_utils import _db, _tools
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    BackupError, MissingDependencyError, SourceError, UsageError)

CHUNK = 65536
_NAMES = itertools.count()

PG_SAMPLE = '''
CREATE TABLE people (id int PRIMARY KEY, name text, photo bytea, born date);
INSERT INTO people SELECT g,
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'Zoë ' || g || ' 名前 🚀' END,
    CASE WHEN g % 5 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') || '\\x00ff'::bytea END,
    date '2000-01-01' + g
  FROM generate_series(1, 500) AS g;
CREATE TABLE "Odd ""Name""" (id serial PRIMARY KEY, v text);
INSERT INTO "Odd ""Name""" (v) VALUES ('a'), (NULL), ('it''s');
CREATE TABLE empty (id int);
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id int PRIMARY KEY, amount numeric(10, 2));
INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 42) AS g;
'''
PG_SAMPLE_COUNTS = {"people": 500, 'Odd "Name"': 3, "empty": 0, "sales.orders": 42}

MY_SAMPLE = """
CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(100), photo BLOB, born DATE) ENGINE=InnoDB;
INSERT INTO people SELECT seq,
    IF(seq % 7 = 0, NULL, CONCAT('Zoë ', seq, ' 名前 🚀')),
    IF(seq % 5 = 0, NULL, CONCAT(UNHEX(MD5(seq)), 0x00ff)),
    DATE '2000-01-01' + INTERVAL seq DAY
  FROM seq_1_to_500;
CREATE TABLE `odd ``name` (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
INSERT INTO `odd ``name` (v) VALUES ('a'), (NULL), ('it''s');
CREATE TABLE empty (id INT) ENGINE=InnoDB;
CREATE PROCEDURE people_count() SELECT COUNT(*) FROM people;
CREATE TRIGGER people_upper BEFORE INSERT ON people FOR EACH ROW SET NEW.name = UPPER(NEW.name);
"""
MY_SAMPLE_COUNTS = {"people": 500, "odd `name": 3, "empty": 0}

# One kind of migration table each: DDL and rows (portable SQL), and the expected schema version.
MIGRATIONS = {
    "alembic": ("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);"
                "INSERT INTO alembic_version VALUES ('ae1027a6acf');", "ae1027a6acf"),
    "django": ("CREATE TABLE django_migrations (id INT PRIMARY KEY, app VARCHAR(255), name VARCHAR(255));"
               "INSERT INTO django_migrations VALUES (1, 'shop', '0007_price'), (2, 'auth', '0001_initial'),"
               " (3, 'shop', '0008_discount');", "shop:0008_discount"),
    "flyway": ("CREATE TABLE flyway_schema_history (installed_rank INT PRIMARY KEY, version VARCHAR(50),"
               " success BOOLEAN NOT NULL);"
               "INSERT INTO flyway_schema_history VALUES (1, '1', TRUE), (2, '2.1', TRUE), (3, NULL, TRUE),"
               " (4, '3', FALSE);", "2.1"),
    "rails": ("CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY);"
              "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240315120000');", "20240315120000"),
}

BIG_ROWS = 40000  # about 20 MB of dump: more than every pipe and socket buffer on the way


def unique(prefix):
    return "%s_%d_%d" % (prefix, os.getpid(), next(_NAMES))


def children_named(name):
    """PIDs of this process's children whose command name is name."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                line = handle.read()
        except OSError:
            continue
        comm = line[line.index("(") + 1:line.rindex(")")]
        ppid = int(line[line.rindex(")") + 2:].split()[1])
        if ppid == os.getpid() and comm == name:
            pids.append(int(entry))
    return pids


def cmdlines_containing(secret):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    if secret.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def dump_to(dumper, target, pause=0.0):
    """Copy what open() yields to target (a file, or a directory for a tree); return what inspect() said."""
    with dumper.open() as source:
        description = dumper.inspect()
        if source.tree is not None:
            shutil.copytree(source.tree, target)
        else:
            with open(target, "wb") as out:
                for chunk in iter(lambda: source.stream.read(CHUNK), b""):
                    out.write(chunk)
                    time.sleep(pause)
    return description


def private_dir_is_gone(parent):
    return os.listdir(parent) == []


# --- PostgreSQL helpers --------------------------------------------------------------------------

def pg_dumper(server, database, **options):
    """The password user over TCP: the path a real secret takes."""
    return _db.make_dumper("postgresql", database, login_host=server.host, login_port=server.port,
                           login_user=server.user, login_password=server.password, **options)


def pg_superuser_dumper(server, database, **options):
    return _db.make_dumper("postgresql", database, login_unix_socket=server.socket_dir,
                           login_port=server.port, login_user=server.superuser, **options)


def pg_as_owner(server, database, sql):
    return server.psql("SET ROLE %s; %s" % (server.user, sql), database)


def pg_fingerprint(server, database):
    """{table: md5 of its ordered rows} for every user table."""
    tables = server.psql("SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables "
                         "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', "
                         "'information_schema') ORDER BY 1", database).splitlines()
    return {table: hashlib.md5(server.psql("SELECT * FROM %s ORDER BY 1" % table, database).encode()).hexdigest()
            for table in tables}


@pytest.fixture
def pg_database(postgres_server):
    name = postgres_server.create_database(unique("src"))
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def pg_fresh(postgres_server):
    name = postgres_server.create_database(unique("restored"), owner=postgres_server.superuser)
    yield name
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def pg_big(postgres_server):
    name = postgres_server.create_database(unique("big"))
    pg_as_owner(postgres_server, name, "CREATE TABLE big (id int PRIMARY KEY, payload text);"
                "INSERT INTO big SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, %d) AS g" % BIG_ROWS)
    yield name
    postgres_server.drop_database(name)


# --- MariaDB helpers -----------------------------------------------------------------------------

def my_dumper(server, database, **options):
    return _db.make_dumper("mysql", database, login_host=server.host, login_port=server.port,
                           login_user=server.user, login_password=server.password, **options)


def my_fingerprint(server, database):
    """{table: md5 of its ordered rows, as the client prints them (blobs raw)}."""
    tables = server.sql("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "ORDER BY 1", database).splitlines()
    return {table: hashlib.md5(subprocess.run(
        server.client_argv(database) + ["-e", "SELECT * FROM `%s` ORDER BY 1" % table.replace("`", "``")],
        capture_output=True, check=True).stdout).hexdigest() for table in tables}


@pytest.fixture
def my_database(mariadb_server):
    name = mariadb_server.create_database(unique("src"))
    yield name
    mariadb_server.drop_database(name)


@pytest.fixture
def my_fresh(mariadb_server):
    name = mariadb_server.create_database(unique("restored"))
    yield name
    mariadb_server.drop_database(name)


@pytest.fixture(scope="module")
def my_big(mariadb_server):
    name = mariadb_server.create_database(unique("big"))
    mariadb_server.sql("CREATE TABLE big (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB;"
                       "INSERT INTO big SELECT seq, REPEAT(MD5(seq), 16) FROM seq_1_to_%d" % BIG_ROWS, name)
    yield name
    mariadb_server.drop_database(name)


# --- SQLite helpers ------------------------------------------------------------------------------


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("pg_format", ["custom", "plain"])
def test_postgres_round_trip(postgres_server, pg_database, pg_fresh, tmp_path, pg_format):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    dumper = pg_dumper(postgres_server, pg_database, pg_format=pg_format, tmp_parent=str(tmp_path))
    assert dumper.suffix == {"custom": "pgdump", "plain": "sql"}[pg_format]
    checked = dumper.check()
    assert checked["server_version"] == postgres_server.psql("SHOW server_version").strip()
    assert os.path.basename(checked["client"]) == "pg_dump"

    artifact = tmp_path / "dump"
    description = dump_to(dumper, artifact)

    assert description["tables"] == PG_SAMPLE_COUNTS
    assert description["total_rows"] == 545
    assert description["row_counts"] == "exact"
    assert description["schema_version"] is None
    assert description["server_version"] == checked["server_version"]
    assert os.listdir(tmp_path) == ["dump"]  # the private directory is gone
    if pg_format == "custom":
        assert artifact.read_bytes()[:5] == b"PGDMP"
        subprocess.run([postgres_server.client("pg_restore"), "--no-owner", "--exit-on-error", "-h",
                        postgres_server.socket_dir, "-p", str(postgres_server.port), "-U", "postgres",
                        "-d", pg_fresh, str(artifact)], check=True)
    else:
        subprocess.run(postgres_server.psql_argv(pg_fresh) + ["-f", str(artifact)], check=True,
                       stdout=subprocess.DEVNULL)
    assert pg_fingerprint(postgres_server, pg_fresh) == pg_fingerprint(postgres_server, pg_database)
    assert pg_superuser_dumper(postgres_server, pg_fresh).inspect()["tables"] == PG_SAMPLE_COUNTS


def test_postgres_directory_format_with_globals(postgres_server, pg_database, pg_fresh, tmp_path):
    pg_as_owner(postgres_server, pg_database, PG_SAMPLE)
    role = unique("lifeboat_extra")
    postgres_server.psql("CREATE ROLE %s LOGIN CONNECTION LIMIT 7" % role)
    dumper = pg_superuser_dumper(postgres_server, pg_database, pg_format="directory", jobs=2,
                                 include_globals=True, tmp_parent=str(tmp_path / "private"))
    os.mkdir(tmp_path / "private")
    assert dumper.suffix == "tar"
    tree = tmp_path / "tree"
    dump_to(dumper, tree)
    assert private_dir_is_gone(tmp_path / "private")
    assert sorted(os.listdir(tree)) == ["database.dir", "globals.sql"]
    assert "toc.dat" in os.listdir(tree / "database.dir")

    subprocess.run([postgres_server.client("pg_restore"), "--no-owner", "--exit-on-error", "--jobs=2",
                    "-h", postgres_server.socket_dir, "-p", str(postgres_server.port), "-U", "postgres",
                    "-d", pg_fresh, str(tree / "database.dir")], check=True)
    assert pg_fingerprint(postgres_server, pg_fresh) == pg_fingerprint(postgres_server, pg_database)

    postgres_server.psql("DROP ROLE %s" % role)
    # Roles that still exist (postgres, lifeboat) make harmless "already exists" errors: no ON_ERROR_STOP.
    subprocess.run([postgres_server.client("psql"), "-Xq", "-h", postgres_server.socket_dir, "-p",
                    str(postgres_server.port), "-U", "postgres", "-d", "postgres", "-f", str(tree / "globals.sql")],
                   check=True, capture_output=True)
    assert postgres_server.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = '%s'" % role).strip() == "7"
    postgres_server.psql("DROP ROLE %s" % role)


def test_postgres_globals_with_custom_format_is_a_tree(postgres_server, pg_database, tmp_path):
    dumper = pg_superuser_dumper(postgres_server, pg_database, include_globals=True)
    assert dumper.suffix == "tar"
    dump_to(dumper, tmp_path / "tree")
    assert sorted(os.listdir(tmp_path / "tree")) == ["database.pgdump", "globals.sql"]
    assert (tmp_path / "tree" / "database.pgdump").read_bytes()[:5] == b"PGDMP"


def test_mariadb_round_trip_into_another_name(mariadb_server, my_database, my_fresh, tmp_path):
    mariadb_server.sql(MY_SAMPLE, my_database)
    dumper = my_dumper(mariadb_server, my_database, tmp_parent=str(tmp_path))
    assert dumper.suffix == "sql"
    checked = dumper.check()
    assert "MariaDB" in checked["server_version"]
    assert os.path.basename(checked["client"]) in ("mariadb-dump", "mysqldump")

    artifact = tmp_path / "dump.sql"
    description = dump_to(dumper, artifact)
    assert os.listdir(tmp_path) == ["dump.sql"]
    assert description["tables"] == MY_SAMPLE_COUNTS
    assert description["total_rows"] == 503
    text = artifact.read_bytes()
    assert b"CREATE DATABASE" not in text and b"USE `" not in text

    mariadb_server.load(artifact, my_fresh)
    assert my_fingerprint(mariadb_server, my_fresh) == my_fingerprint(mariadb_server, my_database)
    assert mariadb_server.sql("SHOW PROCEDURE STATUS WHERE Db = '%s'" % my_fresh).count("people_count") == 1
    assert "people_upper" in mariadb_server.sql("SHOW TRIGGERS", my_fresh)


def test_sqlite_round_trip(tmp_path):
    original = tmp_path / "app.db"
    sqlite_sample(original)
    os.mkdir(tmp_path / "private")
    dumper = _db.make_dumper("sqlite", str(original), tmp_parent=str(tmp_path / "private"))
    assert dumper.suffix == "sqlite"
    assert dumper.check()["server_version"] == sqlite3.sqlite_version
    description = dump_to(dumper, tmp_path / "copy.sqlite")
    assert description["tables"] == {"people": 500, 'odd "name': 3}
    assert private_dir_is_gone(tmp_path / "private")
    restored = tmp_path / "restored.db"
    shutil.copyfile(tmp_path / "copy.sqlite", restored)
    assert sqlite_rows(restored) == sqlite_rows(original)


# --- consistency under load ----------------------------------------------------------------------

class TransferWriter(BackgroundThread):
    """Moves money between two tables in transactions through a client's stdin until stopped."""

    MAX_TRANSFERS = 200000
    JOIN_TIMEOUT = 60

    def __init__(self, argv, begin="BEGIN"):
        super().__init__()
        self.argv = argv
        self.begin = begin

    def run(self):
        with subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) as client:
            for number in range(self.MAX_TRANSFERS):
                if self.stop.is_set():
                    break
                amount = 1 + number % 9
                client.stdin.write(("%s; UPDATE acc_a SET balance = balance - %d WHERE id = %d; "
                                    "UPDATE zz_acc_b SET balance = balance + %d WHERE id = %d; "
                                    "UPDATE progress SET n = n + 1; COMMIT;\n"
                                    % (self.begin, amount, number % 10, amount, number % 7)).encode())
            client.stdin.close()


LOAD_SCHEMA = ("CREATE TABLE acc_a (id INT PRIMARY KEY, balance INT);"
               "CREATE TABLE zz_acc_b (id INT PRIMARY KEY, balance INT);"
               "CREATE TABLE progress (n INT);"
               "INSERT INTO progress VALUES (0);")
LOAD_TOTAL = 17 * 1000


def wait_for_progress(read_progress, above):
    deadline = time.monotonic() + 20
    while read_progress() <= above:
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.02)
    return read_progress()


def test_postgres_consistent_under_load(postgres_server, pg_database, pg_fresh, tmp_path):
    pg_as_owner(postgres_server, pg_database, LOAD_SCHEMA
                + "INSERT INTO acc_a SELECT g, 1000 FROM generate_series(0, 9) AS g;"
                + "INSERT INTO zz_acc_b SELECT g, 1000 FROM generate_series(0, 6) AS g;"
                + "CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 8000) g;")

    def progress():
        return int(postgres_server.psql("SELECT n FROM progress", pg_database))

    with TransferWriter(postgres_server.psql_argv(pg_database)):
        before = wait_for_progress(progress, 0)
        dump_to(pg_dumper(postgres_server, pg_database), tmp_path / "dump", pause=0.05)
        wait_for_progress(progress, before)
    subprocess.run([postgres_server.client("pg_restore"), "--no-owner", "-h", postgres_server.socket_dir,
                    "-p", str(postgres_server.port), "-U", "postgres", "-d", pg_fresh, str(tmp_path / "dump")],
                   check=True)
    restored = postgres_server.psql("SELECT (SELECT sum(balance) FROM acc_a) + (SELECT sum(balance) FROM zz_acc_b),"
                                    " (SELECT n FROM progress)", pg_fresh).strip().split("|")
    assert int(restored[0]) == LOAD_TOTAL
    assert int(restored[1]) >= before


def test_mariadb_consistent_under_load(mariadb_server, my_database, my_fresh, tmp_path):
    mariadb_server.sql(LOAD_SCHEMA + "INSERT INTO acc_a SELECT seq, 1000 FROM seq_0_to_9;"
                       + "INSERT INTO zz_acc_b SELECT seq, 1000 FROM seq_0_to_6;"
                       + "CREATE TABLE filler ENGINE=InnoDB AS SELECT seq, REPEAT(MD5(seq), 8) AS pad "
                         "FROM seq_1_to_8000;", my_database)

    def progress():
        return int(mariadb_server.sql("SELECT n FROM progress", my_database))

    with TransferWriter(mariadb_server.client_argv(my_database), begin="START TRANSACTION"):
        before = wait_for_progress(progress, 0)
        dump_to(my_dumper(mariadb_server, my_database), tmp_path / "dump.sql", pause=0.05)
        wait_for_progress(progress, before)
    mariadb_server.load(tmp_path / "dump.sql", my_fresh)
    restored = mariadb_server.sql("SELECT (SELECT SUM(balance) FROM acc_a) + (SELECT SUM(balance) FROM zz_acc_b)",
                                  my_fresh)
    assert int(restored) == LOAD_TOTAL


@contextlib.contextmanager
def sqlite_bank_under_load(path):
    """A WAL-mode SQLite bank whose writer moves money in transactions until the block ends.

    Yields progress(), the number of transfers committed so far; the total of the balances is LOAD_TOTAL.
    """
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(LOAD_SCHEMA)
        connection.executemany("INSERT INTO acc_a VALUES (?, 1000)", [(i,) for i in range(10)])
        connection.executemany("INSERT INTO zz_acc_b VALUES (?, 1000)", [(i,) for i in range(7)])
        connection.execute("CREATE TABLE filler (pad)")
        connection.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(512),)] * 20000)
    connection.close()
    stop = threading.Event()

    def writer():
        with sqlite3.connect(path, timeout=30, isolation_level=None) as own:
            for number in itertools.count():
                if stop.is_set() or number > 200000:
                    break
                own.execute("BEGIN IMMEDIATE")
                own.execute("UPDATE acc_a SET balance = balance - 3 WHERE id = ?", (number % 10,))
                own.execute("UPDATE zz_acc_b SET balance = balance + 3 WHERE id = ?", (number % 7,))
                own.execute("UPDATE progress SET n = n + 1")
                own.execute("COMMIT")
        own.close()

    def progress():
        reader = sqlite3.connect(path)
        try:
            return reader.execute("SELECT n FROM progress").fetchone()[0]
        finally:
            reader.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join(60)


def test_sqlite_consistent_under_load_in_wal_mode(tmp_path):
    path = str(tmp_path / "bank.db")
    with sqlite_bank_under_load(path) as progress:
        wait_for_progress(progress, 0)
        for attempt in range(3):
            snapshot = tmp_path / ("snapshot%d.db" % attempt)
            dump_to(_db.make_dumper("sqlite", path), snapshot)
            copy = sqlite3.connect(str(snapshot))
            total = copy.execute("SELECT (SELECT sum(balance) FROM acc_a) + (SELECT sum(balance) FROM zz_acc_b)")
            assert total.fetchone()[0] == LOAD_TOTAL
            assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            copy.close()
    assert progress() > 0


# --- failures ------------------------------------------------------------------------------------

def test_postgres_wrong_password(postgres_server, pg_database):
    dumper = _db.make_dumper("postgresql", pg_database, login_host=postgres_server.host,
                             login_port=postgres_server.port, login_user=postgres_server.user,
                             login_password="not-the-password")
    with pytest.raises(BackupError) as caught:
        dumper.check()
    assert caught.value.stage == "connect"
    assert 'password authentication failed for user "lifeboat"' in str(caught.value)
    with pytest.raises(BackupError) as caught:
        with dumper.open() as source:
            source.stream.read()
    assert caught.value.stage == "pg_dump"
    assert "exited with status 1" in str(caught.value)
    assert "password authentication failed" in str(caught.value)


def test_postgres_unknown_database(postgres_server):
    with pytest.raises(BackupError) as caught:
        pg_dumper(postgres_server, "no_such_db").check()
    assert caught.value.stage == "connect"
    assert 'database "no_such_db" does not exist' in str(caught.value)


def test_mariadb_wrong_password(mariadb_server, my_database):
    dumper = _db.make_dumper("mysql", my_database, login_host=mariadb_server.host,
                             login_port=mariadb_server.port, login_user=mariadb_server.user,
                             login_password="not-the-password")
    with pytest.raises(BackupError) as caught:
        dumper.check()
    assert caught.value.stage == "connect"
    assert "Access denied for user 'lifeboat'" in str(caught.value)


def test_mariadb_unknown_database(mariadb_server):
    with pytest.raises(BackupError) as caught:
        my_dumper(mariadb_server, "no_such_db").check()
    assert caught.value.stage == "connect"
    assert "Unknown database 'no_such_db'" in str(caught.value)


@pytest.mark.parametrize("engine, package", [("postgresql", "postgresql-client"), ("mysql", "mariadb-client")])
def test_missing_client_binary(engine, package, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    dumper = _db.make_dumper(engine, "anything", login_host="127.0.0.1", login_password="x")
    with pytest.raises(MissingDependencyError) as caught:
        dumper.check()
    assert package in str(caught.value)
    with pytest.raises(MissingDependencyError):
        with dumper.open():
            pass


def _kill_midway(dumper, tool):
    with dumper.open() as source:
        assert source.stream.read(CHUNK)
        (pid,) = children_named(tool)
        os.kill(pid, signal.SIGKILL)
        while source.stream.read(CHUNK):
            pass


def test_postgres_dump_killed_midway(postgres_server, pg_big, tmp_path):
    with pytest.raises(BackupError) as caught:
        _kill_midway(pg_dumper(postgres_server, pg_big, tmp_parent=str(tmp_path)), "pg_dump")
    assert caught.value.stage == "pg_dump"
    assert "killed by signal 9" in str(caught.value)
    assert children_named("pg_dump") == []


def test_mariadb_dump_killed_midway(mariadb_server, my_big, tmp_path):
    with pytest.raises(BackupError) as caught:
        _kill_midway(my_dumper(mariadb_server, my_big, tmp_parent=str(tmp_path)), "mariadb-dump")
    assert caught.value.stage == "mariadb-dump"
    assert "killed by signal 9" in str(caught.value)
    assert private_dir_is_gone(tmp_path)


def _lose_connection_midway(dumper, disconnect):
    with dumper.open() as source:
        assert source.stream.read(CHUNK)
        disconnect()
        while source.stream.read(CHUNK):
            pass


def test_postgres_backend_terminated_midway(postgres_server, pg_big):
    def terminate():
        assert postgres_server.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = '%s' AND application_name = 'pg_dump'" % pg_big).strip() == "1"

    with pytest.raises(BackupError) as caught:
        _lose_connection_midway(pg_dumper(postgres_server, pg_big), terminate)
    assert caught.value.stage == "pg_dump"
    assert "exited with status 1" in str(caught.value)
    # libpq reports the server's FATAL message, or only the closed socket when that arrives first.
    assert re.search("terminating connection due to administrator command|server closed the connection "
                     "unexpectedly", str(caught.value)), str(caught.value)


def test_mariadb_connection_killed_midway(mariadb_server, my_big):
    def kill_connection():
        ids = mariadb_server.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' AND USER = '%s'"
                                 % (my_big, mariadb_server.user)).split()
        assert len(ids) == 1
        mariadb_server.sql("KILL %s" % ids[0])

    with pytest.raises(BackupError) as caught:
        _lose_connection_midway(my_dumper(mariadb_server, my_big), kill_connection)
    assert caught.value.stage == "mariadb-dump"
    assert "Lost connection" in str(caught.value)


def test_consumer_failure_kills_the_dump_and_propagates(postgres_server, pg_big, tmp_path):
    with pytest.raises(ZeroDivisionError):
        with pg_dumper(postgres_server, pg_big, tmp_parent=str(tmp_path)).open() as source:
            source.stream.read(CHUNK)
            assert len(children_named("pg_dump")) == 1
            raise ZeroDivisionError("the consumer broke")
    assert children_named("pg_dump") == []


def test_unread_dump_fails(mariadb_server, my_big):
    with pytest.raises(BackupError) as caught:
        with my_dumper(mariadb_server, my_big).open() as source:
            source.stream.read(CHUNK)
    assert caught.value.stage == "mariadb-dump"
    assert "was not read to its end" in str(caught.value)
    assert children_named("mariadb-dump") == []


def _broken_sqlite(path):
    """A database whose last table page has garbage over its cells: it opens, but its b-tree is wrong."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO people VALUES (?, ?)", [(i, "name %d" % i) for i in range(1, 2001)])
    page_size, page_count = (connection.execute("PRAGMA %s" % pragma).fetchone()[0]
                             for pragma in ("page_size", "page_count"))
    connection.close()
    with open(path, "r+b") as handle:
        handle.seek(page_count * page_size - 200)
        handle.write(b"name 9999" * 20)


def test_sqlite_integrity_failure(tmp_path):
    path = tmp_path / "broken.db"
    _broken_sqlite(path)
    os.mkdir(tmp_path / "private")
    dumper = _db.make_dumper("sqlite", str(path), tmp_parent=str(tmp_path / "private"))
    with pytest.raises(SourceError) as caught:
        with dumper.open():
            pytest.fail("a corrupt database must not be dumped")
    assert caught.value.stage == "sqlite integrity_check"
    assert "integrity check of a snapshot of %s failed" % path in str(caught.value)
    assert "*** in database main ***; On tree page" in str(caught.value)
    assert str(caught.value).count(";") <= 4  # the first lines only
    assert private_dir_is_gone(tmp_path / "private")


def test_sqlite_missing_file(tmp_path):
    dumper = _db.make_dumper("sqlite", str(tmp_path / "gone.db"))
    for action in (dumper.check, dumper.inspect):
        with pytest.raises(SourceError) as caught:
            action()
        assert "%s does not exist" % (tmp_path / "gone.db") in str(caught.value)
    with pytest.raises(SourceError):
        with dumper.open():
            pass
    assert not (tmp_path / "gone.db").exists()


def test_sqlite_not_a_database(tmp_path):
    (tmp_path / "notes.txt").write_text("hello " * 1000)
    with pytest.raises(SourceError) as caught:
        _db.make_dumper("sqlite", str(tmp_path / "notes.txt")).check()
    assert "not a database" in str(caught.value)


def test_tool_stderr_is_drained_tailed_and_scrubbed():
    """A tool that writes megabytes to stderr before its output cannot block; its message is the end."""
    script = ("import sys; sys.stderr.write('hunter2 ' * 300000 + 'last words hunter2');"
              "sys.stdout.write('x' * 100000); sys.exit(3)")
    tool = _tools.ToolProcess([sys.executable, "-c", script], "pg_dump", secret="hunter2")
    assert len(tool.stdout.read()) == 100000
    with pytest.raises(BackupError) as caught:
        tool.finish()
    message = str(caught.value)
    assert message.startswith("pg_dump: ")
    assert "exited with status 3" in message
    assert message.endswith("last words ********")
    assert "hunter2" not in message
    assert len(message) < 2048 * 1.2


# --- secrets -------------------------------------------------------------------------------------

def test_postgres_password_in_no_cmdline(postgres_server, pg_big, tmp_path):
    assert "PGPASSWORD" not in os.environ
    with pg_dumper(postgres_server, pg_big).open() as source:
        source.stream.read(CHUNK)
        assert children_named("pg_dump")
        assert cmdlines_containing(postgres_server.password) == []
        assert "PGPASSWORD" not in os.environ
        with open(tmp_path / "rest", "wb") as out:
            shutil.copyfileobj(source.stream, out)


def test_mariadb_password_in_no_cmdline_and_defaults_file_private(mariadb_server, my_big, tmp_path):
    with my_dumper(mariadb_server, my_big, tmp_parent=str(tmp_path)).open() as source:
        source.stream.read(CHUNK)
        assert children_named("mariadb-dump")
        assert cmdlines_containing(mariadb_server.password) == []
        (private,) = os.listdir(tmp_path)
        assert stat.S_IMODE(os.stat(tmp_path / private).st_mode) == 0o700
        (defaults,) = os.listdir(tmp_path / private)
        assert stat.S_IMODE(os.stat(tmp_path / private / defaults).st_mode) == 0o600
        shutil.copyfileobj(source.stream, open(os.devnull, "wb"))  # pylint: disable=consider-using-with
    assert private_dir_is_gone(tmp_path)


def test_postgres_echoed_password_is_scrubbed(postgres_server):
    """The server echoes the database name; here it is the password itself."""
    with pytest.raises(BackupError) as caught:
        pg_dumper(postgres_server, postgres_server.password).check()
    assert 'database "********" does not exist' in str(caught.value)
    assert postgres_server.password not in str(caught.value)


def test_mariadb_echoed_password_is_scrubbed(mariadb_server, my_database):
    dumper = _db.make_dumper("mysql", my_database, login_host=mariadb_server.host,
                             login_port=mariadb_server.port, login_user=mariadb_server.password[:16],
                             login_password=mariadb_server.password[:16])
    with pytest.raises(BackupError) as caught:
        dumper.check()
    assert "Access denied for user '********'" in str(caught.value)
    assert mariadb_server.password[:16] not in str(caught.value)


# --- schema versions and row counts --------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(MIGRATIONS))
def test_postgres_schema_version(postgres_server, pg_database, kind):
    ddl, expected = MIGRATIONS[kind]
    pg_as_owner(postgres_server, pg_database, ddl)
    assert pg_dumper(postgres_server, pg_database).inspect()["schema_version"] == expected


def test_postgres_schema_version_outside_public(postgres_server, pg_database):
    ddl, expected = MIGRATIONS["alembic"]
    pg_as_owner(postgres_server, pg_database, "CREATE SCHEMA app; SET search_path = app; " + ddl)
    description = pg_dumper(postgres_server, pg_database).inspect()
    assert description["schema_version"] == expected
    assert description["tables"] == {"app.alembic_version": 1}


@pytest.mark.parametrize("kind", sorted(MIGRATIONS))
def test_mariadb_schema_version(mariadb_server, my_database, kind):
    ddl, expected = MIGRATIONS[kind]
    mariadb_server.sql(ddl, my_database)
    assert my_dumper(mariadb_server, my_database).inspect()["schema_version"] == expected


@pytest.mark.parametrize("kind", sorted(MIGRATIONS))
def test_sqlite_schema_version(tmp_path, kind):
    ddl, expected = MIGRATIONS[kind]
    with sqlite3.connect(tmp_path / "app.db") as connection:
        connection.executescript(ddl)
    connection.close()
    dumper = _db.make_dumper("sqlite", str(tmp_path / "app.db"))
    assert dumper.inspect()["schema_version"] == expected
    with dumper.open() as source:
        assert dumper.inspect()["schema_version"] == expected
        source.stream.read()


def test_postgres_estimated_and_exact_counts(postgres_server, pg_database):
    pg_as_owner(postgres_server, pg_database, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)")
    estimated = pg_dumper(postgres_server, pg_database, row_counts="estimated")
    assert estimated.inspect()["tables"] == {"t": 0}  # never analyzed: reltuples is -1
    assert estimated.inspect()["row_counts"] == "estimated"
    postgres_server.psql("ANALYZE t", pg_database)
    assert estimated.inspect()["tables"] == {"t": 1000}
    pg_as_owner(postgres_server, pg_database, "INSERT INTO t SELECT generate_series(1, 10)")
    assert estimated.inspect()["tables"] == {"t": 1000}
    exact = pg_dumper(postgres_server, pg_database).inspect()
    assert exact["tables"] == {"t": 1010}
    assert exact["row_counts"] == "exact"


def test_mariadb_estimated_counts(mariadb_server, my_database):
    mariadb_server.sql("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB;"
                       "INSERT INTO t SELECT seq FROM seq_1_to_1000; ANALYZE TABLE t;"
                       "CREATE TABLE e (id INT) ENGINE=InnoDB;", my_database)
    estimated = my_dumper(mariadb_server, my_database, row_counts="estimated").inspect()
    assert estimated["row_counts"] == "estimated"
    assert sorted(estimated["tables"]) == ["e", "t"]
    assert 500 <= estimated["tables"]["t"] <= 2000
    assert my_dumper(mariadb_server, my_database).inspect()["tables"] == {"e": 0, "t": 1000}


def test_sqlite_counts_are_always_exact(tmp_path):
    sqlite_sample(tmp_path / "app.db")
    description = _db.make_dumper("sqlite", str(tmp_path / "app.db"), row_counts="estimated").inspect()
    assert description["row_counts"] == "exact"
    assert description["tables"]["people"] == 500


@pytest.mark.parametrize("engine, options, fragment", [
    ("oracle", {}, "unknown database engine"),
    ("postgresql", {"pg_format": "tar"}, "pg_format must be one of"),
    ("postgresql", {"jobs": 4}, "needs pg_format=directory"),
    ("mysql", {"include_globals": True}, "PostgreSQL only"),
    ("mysql", {"row_counts": "guess"}, "row_counts must be one of"),
])
def test_contradicting_options(engine, options, fragment):
    with pytest.raises(UsageError) as caught:
        _db.make_dumper(engine, "db", **options)
    assert fragment in str(caught.value)


def test_harness_rejects_wrong_password_over_socket_too(postgres_server):
    """The password user really authenticates on the socket (scram), so wrong-password tests are real."""
    result = subprocess.run([postgres_server.client("psql"), "-XAt", "-w", "-h", postgres_server.socket_dir,
                             "-p", str(postgres_server.port), "-U", postgres_server.user, "-d", "postgres",
                             "-c", "SELECT 1"], capture_output=True, env=dict(os.environ, PGPASSWORD="nope"),
                            check=False)
    assert result.returncode != 0
    assert b"password authentication failed" in result.stderr
    assert dbservers.free_port() != postgres_server.port
