# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time a PostgreSQL dump through the pipeline against plain `pg_dump -Fc` to a file.

A throwaway server (tests/integration/dbservers.py) gets a pgbench database of the given scale
(scale 60 is about 1 GB on disk). After one untimed dump that warms the page cache, each round
times, one after the other: `pg_dump -Fc -f FILE`, and lifeboat's dump (pg_dump --format=custom
--compress=0 -> zstd level 3 -> age to one recipient -> SHA-256 -> fsynced atomic file) with
row_counts=estimated (the dump alone, like for like) and with row_counts=exact (the module's
default, which adds one count(*) per table). Prints the best and median wall times of the rounds,
the ratios to pg_dump -Fc (target: at most 1.1), sizes, and the peak RSS of this process.

    python tests/benchmark/bench_pg_dump.py --scale 60 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TESTS, "integration"))
runpy.run_path(os.path.join(TESTS, "conftest.py"))  # makes the checkout importable as the collection

import dbservers
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _dump

MIB = 1 << 20


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=60, help="pgbench scale factor (default 60, about 1 GB)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of the three contenders (default 5)")
    parser.add_argument("--workdir", default=None, help="parent of the server and output directories")
    return parser.parse_args()


def timed(action):
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def baseline(server, database, target):
    """What an operator would type: pg_dump's own custom format, compressed by pg_dump, to a file."""
    subprocess.run([server.client("pg_dump"), "-Fc", "-f", target, "-h", server.socket_dir, "-p", str(server.port),
                    "-U", server.superuser, "--dbname=" + database], check=True)
    return {"size": os.path.getsize(target)}


def lifeboat(server, database, backup_dir, recipient, row_counts):
    shutil.rmtree(backup_dir, ignore_errors=True)
    request = _dump.DumpRequest("postgresql", database, "bench", backup_dir=backup_dir, recipients=[recipient],
                                login_unix_socket=server.socket_dir, login_port=server.port,
                                login_user=server.superuser, row_counts=row_counts)
    return _dump.run_dump(request)["metadata"]


def build(server, scale):
    database = server.create_database("bench", owner=server.superuser)
    seconds, _unused = timed(lambda: subprocess.run(
        [server.client("pgbench"), "-i", "-q", "-s", str(scale), "-h", server.socket_dir, "-p", str(server.port),
         "-U", server.superuser, database], check=True, capture_output=True))
    on_disk = int(server.psql("SELECT pg_database_size('%s')" % database))
    print("pgbench -i -s %d: %.0f MiB on disk, built in %.1f s" % (scale, on_disk / MIB, seconds))
    return database


def report(times, outputs):
    """Best and median of each contender; on a shared machine the median ratio is the steadier figure."""
    plain = times["pg_dump -Fc"]
    print("%-32s %7s %9s %9s %10s %13s" % ("", "best s", "median s", "size MiB", "best ratio", "median ratio"))
    for name, values in times.items():
        print("%-32s %7.2f %9.2f %9.1f %10.3f %13.3f" % (
            name, min(values), statistics.median(values), outputs[name]["size"] / MIB, min(values) / min(plain),
            statistics.median(values) / statistics.median(plain)))
    stream = outputs["lifeboat, row_counts=exact"]
    print("dump stream (uncompressed): %.1f MiB; rows counted: %d" % (stream["input_size"] / MIB,
                                                                      stream["total_rows"]))
    print("peak RSS of this process: %.1f MiB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    for name, values in times.items():
        print("runs of %s: %s" % (name, " ".join("%.2f" % value for value in values)))


def main():
    args = parse_args()
    _identity, recipient = _age.generate_identity()
    workdir = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    os.chmod(workdir, 0o755)  # the server runs as the postgres user below it
    server = dbservers.started(dbservers.PostgresServer, parent=workdir)
    try:
        database = build(server, args.scale)
        backup_dir = os.path.join(workdir, "backups")
        contenders = {
            "pg_dump -Fc": lambda: baseline(server, database, os.path.join(workdir, "bench.dump")),
            "lifeboat, row_counts=estimated": lambda: lifeboat(server, database, backup_dir, recipient, "estimated"),
            "lifeboat, row_counts=exact": lambda: lifeboat(server, database, backup_dir, recipient, "exact"),
        }
        contenders["pg_dump -Fc"]()  # warms the page cache for everyone
        times = {name: [] for name in contenders}
        outputs = {}
        for _number in range(args.rounds):
            for name, action in contenders.items():
                seconds, outputs[name] = timed(action)
                times[name].append(seconds)
        report(times, outputs)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
