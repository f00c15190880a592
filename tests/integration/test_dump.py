# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dumps through the whole pipeline, against real servers, restored with the engines' own tools."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from testlib import age_decrypt_cli, require_binary
# Fixtures of the dumper tests, shared rather than redefined.
from test_dumpers import (my_database, my_fresh, pg_database, pg_fresh)  # noqa: F401 pylint: disable=unused-import
from test_dumpers import (LOAD_SCHEMA, LOAD_TOTAL, MY_SAMPLE, MY_SAMPLE_COUNTS, PG_SAMPLE, PG_SAMPLE_COUNTS,
                          TransferWriter, _broken_sqlite, children_named, cmdlines_containing, my_fingerprint,
                          pg_as_owner, pg_fingerprint, sqlite_rows, sqlite_sample, unique, wait_for_progress)

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog, _dump, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    BackupError, IntegrityError, LockedError, MissingDependencyError, SourceError, UsageError)

IDENTITY, RECIPIENT = _age.generate_identity()
KILL_AFTER_BYTES = 4 << 20
LARGE_ROWS = 200000  # about 100 MB of dump: a tool can be stopped long before it is done


# --- helpers -------------------------------------------------------------------------------------

def dump(database, backup_dir, engine="sqlite", check_mode=False, **options):
    """A dump through the module's engine function, encrypted to RECIPIENT unless told otherwise."""
    options.setdefault("recipients", [RECIPIENT])
    request = _dump.DumpRequest(engine, str(database), "db", backup_dir=str(backup_dir), **options)
    return _dump.run_dump(request, check_mode=check_mode)


def login(server, **options):
    """The password user over TCP: the path a real secret takes."""
    return dict(login_host=server.host, login_port=server.port, login_user=server.user,
                login_password=server.password, **options)


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


class AfterOutput(threading.Thread):
    """Once the named child tool has written `size` bytes of output, does something to it (once)."""

    def __init__(self, tool, action, size=KILL_AFTER_BYTES):
        super().__init__(daemon=True)
        self.tool = tool
        self.action = action
        self.size = size
        self.done = threading.Event()
        self.stop = threading.Event()

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

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(30)


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
