# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data of a lost host brought back from its vault: lifeboat's restores from an S3 vault (the files to their
place while they arrive, then the PostgreSQL database, created on the new server) against doing the same by hand:
`rclone cat | age -d | zstd -d | tar -x`, then `createdb` and `rclone cat | age -d | zstd -d | pg_restore`.

A corpus of files (bench_restore's) and a PostgreSQL database are backed up, replicated to SeaweedFS on loopback
(s3server.py), then each contender recovers both, in the same run, each in its own process, files into a tmpfs and
the database into a new database of a server the run starts. What recover.yml adds around these restores (the agent's
install, the gate, the first backup) is the same whoever restores. Target: lifeboat <= 1.3x.

    python3 tests/benchmark/bench_recover.py --size-mib 1024 --db-mib 300 --work /var/tmp --tmpfs /dev/shm
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "vault"))

from bench_restore import PREPARE_CHILD, TESTS, timed  # noqa: E402  pylint: disable=wrong-import-position
from bench_s3_upload import find_rclone, rclone_environment  # noqa: E402  pylint: disable=wrong-import-position
from bench_vault_restore import REPLICATE_CHILD  # noqa: E402  pylint: disable=wrong-import-position
from corpus import touch_memory  # noqa: E402  pylint: disable=wrong-import-position

DUMP_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _dump
connection = json.loads(sys.argv[4])
with open(sys.argv[3], encoding="utf-8") as handle:
    recipient = _age.recipient_from_identity(_age.parse_identities(handle.read())[0])
made = _dump.run_dump(_dump.DumpRequest("postgresql", "app", "bench", backup_dir=sys.argv[2], recipients=[recipient],
                                        **connection))
print(json.dumps({"id": made["id"], "artifact": made["path"], "size": made["size"],
                  "input_size": made["metadata"]["input_size"]}))
"""

# One restore from the vault: the files (dest given) or the database (target_database given).
RECOVER_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _option_groups, _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import reading
settings, key_file, options = json.loads(sys.stdin.read())
with open(key_file, encoding="utf-8") as handle:
    key = _age.Key(identities=handle.read())
reading.restore_copy(_option_groups.read_vault(settings), _restore.RestoreRequest(key=key, safety_backup=False,
                                                                                  **options), from_vault=True)
"""

BY_HAND = {
    "files": "{rclone} cat vault:vault/{files} | age -d -i {key} | zstd -d | tar -x -C {dest}",
    "database": "{createdb} {login} {database} && "
                "{rclone} cat vault:vault/{dump} | age -d -i {key} | zstd -d | {pg_restore} {login} --no-owner "
                "-d {database}",
}


def fill_database(server, size_mib):
    """A database of about size_mib MiB: one wide table and an index, as an application's would be."""
    server.create_database("app")
    rows = size_mib * 2**20 // 160
    server.psql("CREATE TABLE notes (id bigint PRIMARY KEY, title text, body text, at timestamptz);"
                "INSERT INTO notes SELECT g, 'note ' || g, md5(g::text) || repeat(md5((g * 7)::text), 3), "
                "now() - g * interval '1 second' FROM generate_series(1, %d) g;"
                "CREATE INDEX notes_at ON notes (at);" % rows, database="app")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the files (default 1024)")
    parser.add_argument("--db-mib", type=int, default=300, help="size of the database's table (default 300)")
    parser.add_argument("--work", default=None, help="where the corpus, the backups and the servers go")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs to restore the files into (default /dev/shm)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each")
    args = parser.parse_args()
    import dbservers  # pylint: disable=import-outside-toplevel
    import s3server  # pylint: disable=import-outside-toplevel

    rclone = find_rclone()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.work)
    targets = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.tmpfs)
    server = s3server.SeaweedServer(parent=work)
    postgres = dbservers.started(dbservers.PostgresServer)  # its own directory: the postgres user must reach it
    try:
        server.start()
        server.create_buckets()
        settings = dict(server.settings("host", prefix="bench"), host="bench-host")
        engine = os.path.join(os.path.dirname(TESTS), "plugins", "module_utils")
        subprocess.run([sys.executable, "-m", "compileall", "-q", engine], check=True)
        backups = os.path.join(work, "backups")
        prepared = json.loads(subprocess.run([sys.executable, "-c", PREPARE_CHILD, TESTS, work, str(args.size_mib)],
                                             check=True, capture_output=True, text=True).stdout)
        rows = fill_database(postgres, args.db_mib)
        superuser = {"login_host": postgres.socket_dir, "login_port": postgres.port, "login_user": "postgres"}
        dumped = json.loads(subprocess.run([sys.executable, "-c", DUMP_CHILD, TESTS, backups, prepared["key"],
                                            json.dumps(superuser)], check=True, capture_output=True,
                                           text=True).stdout)
        subprocess.run([sys.executable, "-c", REPLICATE_CHILD, TESTS, backups], input=json.dumps(settings),
                       check=True, capture_output=True, text=True)
        files_id = os.path.basename(prepared["artifact"]).split(".", 1)[0]
        keys = {"files": "bench/bench-host/bench/" + os.path.basename(prepared["artifact"]),
                "dump": "bench/bench-host/bench/" + os.path.basename(dumped["artifact"])}
        print("files: %d, %.0f MiB (artifact %.0f MiB); database: %d rows, dump %.0f MiB (artifact %.0f MiB)" % (
            prepared["files"], prepared["input_size"] / 2**20, prepared["size"] / 2**20, rows,
            dumped["input_size"] / 2**20, dumped["size"] / 2**20))
        login = "-h %s -p %d -U postgres" % (postgres.socket_dir, postgres.port)
        env = rclone_environment(server)
        runs = {"lifeboat": [], "by hand": []}
        parts = {(name, part): [] for name in runs for part in BY_HAND}
        # A first round that is not counted, the order switched each round, the tmpfs's memory touched before each
        # run (bench_vault_restore says why).
        for round_number in range(-1, args.rounds):
            for name in sorted(runs, reverse=round_number % 2 == 1):
                touch_memory(targets, 3 * prepared["input_size"])
                dest = os.path.join(targets, "%s-%d" % (name.replace(" ", "-"), round_number))
                database = "recovered_%s_%d" % (name.replace(" ", "_"), round_number + 1)
                os.mkdir(dest)
                catalog = os.path.join(work, "catalog-%d" % round_number)
                options = {"files": {"backup_dir": catalog, "backup_id": files_id, "dest": dest},
                           "database": {"backup_dir": catalog, "backup_id": dumped["id"], "target_database": database,
                                        "connection": superuser}}
                taken = {}
                for part in BY_HAND:  # files first, as recover.yml does
                    if name == "by hand":
                        shell = BY_HAND[part].format(
                            rclone=rclone, files=keys["files"], dump=keys["dump"], key=prepared["key"], dest=dest,
                            createdb=postgres.client("createdb"), login=login, database=database,
                            pg_restore=postgres.client("pg_restore"))
                        taken[part] = timed(["bash", "-o", "pipefail", "-c", shell], env=env)
                    else:
                        taken[part] = timed([sys.executable, "-c", RECOVER_CHILD, TESTS],
                                            stdin=json.dumps([settings, prepared["key"], options[part]]))
                count = postgres.psql("SELECT count(*) FROM notes", database=database).strip()
                assert count == str(rows), (name, count)
                elapsed = sum(seconds for seconds, _rss in taken.values())
                label = round_number + 1 or "warm-up"
                print("  round %s %-8s %.2f s (files %.2f s, database %.2f s), peak RSS %d MiB" % (
                    label, name, elapsed, taken["files"][0], taken["database"][0],
                    max(rss for _seconds, rss in taken.values()) // 1024), flush=True)
                if round_number >= 0:
                    runs[name].append(elapsed)
                    for part, (seconds, _rss) in taken.items():
                        parts[(name, part)].append(seconds)
                shutil.rmtree(dest)
                postgres.drop_database(database)
                time.sleep(1)  # the dropped database's files are gone before the next round writes
        for name, times in runs.items():
            print("%-9s best %.2f s, median %.2f s (median files %.2f s, database %.2f s)" % (
                name, min(times), statistics.median(times), statistics.median(parts[(name, "files")]),
                statistics.median(parts[(name, "database")])))
        print("ratio lifeboat / by hand: best %.2f, median %.2f (target <= 1.3)" % (
            min(runs["lifeboat"]) / min(runs["by hand"]),
            statistics.median(runs["lifeboat"]) / statistics.median(runs["by hand"])))
    finally:
        postgres.stop()
        server.remove()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(targets, ignore_errors=True)


if __name__ == "__main__":
    main()
