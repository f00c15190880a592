#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore speed: lifeboat's restore (verifying every file's SHA-256) against `age -d | zstd -d | tar -x`.

Builds a corpus (~20,000 source-like files, a SQL-like text file, random bytes), backs it up with
run_archive (zstd level 3, age X25519), then restores it into a tmpfs with both, in the same run,
each in its own process. Prints both wall times, the ratio (target <= 1.0) and each side's peak RSS.

    python3 tests/benchmark/bench_restore.py --size-mib 1024 --work /var/tmp/bench --tmpfs /dev/shm
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _archive  # noqa: E402

WORDS = ("def class return import self value index result error config path name data item list dict "
         "for while if else elif try except finally with as lambda yield async await None True False "
         "int str bytes len range open read write close append extend update items keys values").split()
SQL_MIB, RANDOM_MIB, FILES = 200, 100, 20000


def _code_blob(rng, size):
    """Text that compresses like source code: indented lines of identifiers and punctuation."""
    lines, total = [], 0
    while total < size:
        words = rng.choices(WORDS, k=rng.randint(3, 12))
        line = "    " * rng.randint(0, 3) + " ".join(words) + rng.choice(("(", ")", ":", " = 0", ",", "")) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def _write_sql(path, size, rng):
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            rows = "".join("INSERT INTO orders VALUES (%d, 'customer-%d', %d.%02d, '2024-%02d-%02d');\n"
                           % (rng.getrandbits(31), rng.getrandbits(20), rng.getrandbits(16), rng.randint(0, 99),
                              rng.randint(1, 12), rng.randint(1, 28)) for _ in range(10000))
            data = rows.encode()
            handle.write(data)
            written += len(data)


def build_corpus(root, size_mib, seed=42):
    """~FILES source-like files making up what the SQL and random files leave of size_mib."""
    rng = random.Random(seed)
    fixed = min(SQL_MIB + RANDOM_MIB, size_mib // 2)
    sql_mib = fixed * SQL_MIB // (SQL_MIB + RANDOM_MIB)
    _write_sql(os.path.join(root, "dump.sql"), sql_mib << 20, rng)
    with open(os.path.join(root, "random.bin"), "wb") as handle:
        for _ in range(fixed - sql_mib):
            handle.write(os.urandom(1 << 20))
    blob = _code_blob(rng, 16 << 20)
    average = ((size_mib - fixed) << 20) // FILES
    for number in range(FILES):
        directory = os.path.join(root, "src", "pkg%03d" % (number // 200), "mod%02d" % (number % 200 // 20))
        os.makedirs(directory, exist_ok=True)
        size = rng.randint(average // 4, average * 7 // 4)
        start = rng.randrange(0, len(blob) - size)
        with open(os.path.join(directory, "file%05d.py" % number), "wb") as handle:
            handle.write(b"# file %d\n" % number + blob[start:start + size])


def timed(argv, env=None):
    """Wall time and peak RSS (KiB) of a child process and what it waited for."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env)  # pylint: disable=consider-using-with
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit("%s failed with %d" % (argv[:3], process.returncode))
    return elapsed, usage.ru_maxrss


RESTORE_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _restore
request = _restore.RestoreRequest(path=sys.argv[2], identities=[sys.argv[3]], dest=sys.argv[4], safety_backup=False)
artifact, metadata = _restore.select_backup(request)
result = _restore.run_restore_files(request, artifact, metadata)
assert result["restored"]["files"] > 0
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="total corpus size (default 1024)")
    parser.add_argument("--work", default=None, help="where the corpus and the backup go (default: a temp dir)")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs to restore into (default /dev/shm)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each (best is reported)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.work)
    targets = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.tmpfs)
    try:
        corpus = os.path.join(work, "corpus")
        os.mkdir(corpus)
        build_corpus(corpus, args.size_mib)
        identity, recipient = _age.generate_identity()
        key = os.path.join(work, "key.txt")
        with open(key, "w", encoding="utf-8") as handle:
            handle.write(identity + "\n")
        backup = _archive.run_archive(_archive.ArchiveRequest(
            [corpus], "bench", backup_dir=os.path.join(work, "backups"), recipients=[recipient]))
        artifact = backup["path"]
        print("corpus: %d files, %.0f MiB; artifact %.0f MiB" % (backup["files"], backup["input_size"] / 2**20,
                                                                 backup["size"] / 2**20))
        shell = "age -d -i %s %s | zstd -d | tar -x -C %%s" % (key, artifact)
        print("baseline: " + shell % "DIR")
        best = {"lifeboat": (float("inf"), 0), "shell": (float("inf"), 0)}
        for round_number in range(args.rounds):
            for name in ("shell", "lifeboat"):
                dest = os.path.join(targets, "%s-%d" % (name, round_number))
                os.mkdir(dest)
                if name == "shell":
                    measured = timed(["bash", "-o", "pipefail", "-c", shell % dest])
                else:
                    measured = timed([sys.executable, "-c", RESTORE_CHILD, os.path.join(ROOT, "tests"), artifact,
                                      identity, dest])
                print("  round %d %-8s %.2f s, peak RSS %d MiB" % (round_number + 1, name, measured[0],
                                                                   measured[1] // 1024))
                best[name] = min(best[name], measured)
                shutil.rmtree(dest)
        ratio = best["lifeboat"][0] / best["shell"][0]
        print("lifeboat restore %.2f s (peak RSS %d MiB), age|zstd|tar %.2f s (peak RSS %d MiB): ratio %.2f"
              % (best["lifeboat"][0], best["lifeboat"][1] // 1024, best["shell"][0], best["shell"][1] // 1024, ratio))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(targets, ignore_errors=True)


if __name__ == "__main__":
    main()
