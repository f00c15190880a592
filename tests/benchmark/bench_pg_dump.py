# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time a PostgreSQL dump through the pipeline against plain `pg_dump -Fc` to a file.

A throwaway server (tests/integration/dbservers.py) gets a pgbench database of the given scale
(scale 60 is about 1 GB on disk); then, in the same run and alternately, `pg_dump -Fc -f FILE`
and lifeboat's dump (pg_dump --format=custom --compress=0 -> zstd level 3 -> age to one recipient
-> SHA-256 -> atomic file, row counts included) are timed. Prints wall times (best of --repeat),
their ratio (target: at most 1.1), sizes, and the peak RSS of this process.

    python tests/benchmark/bench_pg_dump.py --scale 60 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import resource
import runpy
import shutil
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
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each contender; the best counts")
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
    return os.path.getsize(target)


def lifeboat(server, database, backup_dir, recipient):
    shutil.rmtree(backup_dir, ignore_errors=True)
    request = _dump.DumpRequest("postgresql", database, "bench", backup_dir=backup_dir, recipients=[recipient],
                                login_unix_socket=server.socket_dir, login_port=server.port,
                                login_user=server.superuser)
    return _dump.run_dump(request)


def main():
    args = parse_args()
    _identity, recipient = _age.generate_identity()
    workdir = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    os.chmod(workdir, 0o755)  # the server runs as the postgres user below it
    server = dbservers.started(dbservers.PostgresServer, parent=workdir)
    try:
        database = server.create_database("bench", owner=server.superuser)
        seconds, _unused = timed(lambda: subprocess.run(
            [server.client("pgbench"), "-i", "-q", "-s", str(args.scale), "-h", server.socket_dir, "-p",
             str(server.port), "-U", server.superuser, database], check=True, capture_output=True))
        on_disk = int(server.psql("SELECT pg_database_size('bench')"))
        print("pgbench -i -s %d: %.0f MiB on disk, built in %.1f s" % (args.scale, on_disk / MIB, seconds))
        plain_times, ours_times = [], []
        for _run in range(args.repeat):
            plain_seconds, plain_size = timed(lambda: baseline(server, database, os.path.join(workdir, "bench.dump")))
            plain_times.append(plain_seconds)
            ours_seconds, result = timed(lambda: lifeboat(server, database, os.path.join(workdir, "backups"),
                                                          recipient))
            ours_times.append(ours_seconds)
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        metadata = result["metadata"]
        print("pg_dump -Fc to a file:             %7.2f s  %8.1f MiB" % (min(plain_times), plain_size / MIB))
        print("lifeboat dump (zstd-3, age, sha256): %5.2f s  %8.1f MiB  (dump stream %.1f MiB, %d rows counted)"
              % (min(ours_times), metadata["size"] / MIB, metadata["input_size"] / MIB, metadata["total_rows"]))
        print("ratio lifeboat / pg_dump -Fc:       %7.3f  (target <= 1.1)" % (min(ours_times) / min(plain_times)))
        print("peak RSS of this process:           %7.1f MiB" % (peak_rss / MIB))
        print("all runs (s): pg_dump -Fc %s; lifeboat %s" % (["%.2f" % value for value in plain_times],
                                                               ["%.2f" % value for value in ours_times]))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
