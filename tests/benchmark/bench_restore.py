# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore speed: lifeboat's restore (verifying every file's SHA-256) against `age -d | zstd -d | tar -x`.

Builds a corpus (corpus.restore_shape: 20,000 source-like files, a SQL-like text file, random bytes),
backs it up with run_archive (zstd level 3, age X25519), then restores it into a tmpfs with each
contender, in the same run, each in its own process. Prints the wall times, the ratio (target <= 1.0) and each peak RSS.

The pipeline checks nothing; a third contender gives it lifeboat's guarantee by hand, `sha256sum -c`
of every restored file against a list made from the manifest before the rounds.

    python3 tests/benchmark/bench_restore.py --size-mib 1024 --work /var/tmp/bench --tmpfs /dev/shm
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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = os.path.join(ROOT, "tests")


def timed(argv, env=None, stdin=None):
    """Wall time and peak RSS (KiB) of a child process and what it waited for; stdin: a short text it reads."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdin=None if stdin is None else subprocess.PIPE)  # pylint: disable=consider-using-with
    if stdin is not None:
        process.stdin.write(stdin.encode())  # within a pipe's buffer: the write never waits for the child
        process.stdin.close()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit("%s failed with %d" % (argv[:3], process.returncode))
    return elapsed, usage.ru_maxrss


# Each side runs in a process of its own, started by a parent that never loaded the engine or the corpus:
# a child's peak RSS then is its own (Linux carries the RSS of the forking parent into ru_maxrss).
PREPARE_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, os.path.join(sys.argv[1], "benchmark"))
import conftest
import corpus
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _archive, _verify
work, size_mib = sys.argv[2], int(sys.argv[3])
root = os.path.join(work, "corpus")
os.mkdir(root)
corpus.build_corpus(root, corpus.restore_shape(size_mib))
identity, recipient = _age.generate_identity()
key = os.path.join(work, "key.txt")
with open(key, "w", encoding="utf-8") as handle:
    handle.write(identity + "\n")
backup = _archive.run_archive(_archive.ArchiveRequest([root], "bench", backup_dir=os.path.join(work, "backups"),
                                                      recipients=[recipient]))
_header, records = _verify.read_manifest(backup["path"], None, _age.Key(identities=[identity]))
sums = os.path.join(work, "SHA256SUMS")
with open(sums, "w", encoding="utf-8") as handle:
    handle.writelines("%s  %s\n" % (record["sha256"], record["path"]) for record in records if record["type"] == "file")
print(json.dumps({"artifact": backup["path"], "key": key, "sums": sums, "files": backup["files"],
                  "input_size": backup["input_size"], "size": backup["size"]}))
"""

RESTORE_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore
with open(sys.argv[3], encoding="utf-8") as handle:
    key = _age.Key(identities=handle.read())
request = _restore.RestoreRequest(path=sys.argv[2], key=key, dest=sys.argv[4], safety_backup=False)
artifact, metadata = _restore.select_backup(request)
result = _restore.run_restore_files(request, artifact, metadata)
assert result["restored"]["files"] > 0
"""


def report(runs):
    """Best and median of each side; the machine may be shared, the median is the steadier figure."""
    figures = {}
    for name, measured in runs.items():
        times = sorted(elapsed for elapsed, _rss in measured)
        figures[name] = (times[0], statistics.median(times), max(rss for _elapsed, rss in measured) // 1024)
    for name, label in (("lifeboat", "lifeboat restore"), ("shell", "age | zstd -d | tar -x"),
                        ("checked", "... && sha256sum -c")):
        print("%-24s best %.2f s, median %.2f s, peak RSS %d MiB" % ((label,) + figures[name]))
    for name, label in (("shell", "shell"), ("checked", "shell + sha256sum -c")):
        print("ratio lifeboat / %s: best %.2f, median %.2f%s" % (
            label, figures["lifeboat"][0] / figures[name][0], figures["lifeboat"][1] / figures[name][1],
            " (target <= 1.0)" if name == "shell" else ""))


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
        # byte-compiled first, as an installed engine is once it has run: each restore then starts as on a host
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "plugins", "module_utils")],
                       check=True)
        prepared = json.loads(subprocess.run([sys.executable, "-c", PREPARE_CHILD, TESTS, work, str(args.size_mib)],
                                             check=True, capture_output=True, text=True).stdout)
        print("corpus: %d files, %.0f MiB; artifact %.0f MiB" % (
            prepared["files"], prepared["input_size"] / 2**20, prepared["size"] / 2**20))
        shell = "age -d -i %s %s | zstd -d | tar -x -C %%s" % (prepared["key"], prepared["artifact"])
        checked = shell + " && cd %%s && sha256sum -c --quiet %s" % prepared["sums"]
        print("baseline: " + shell % "DIR")
        runs = {"lifeboat": [], "shell": [], "checked": []}
        for round_number in range(args.rounds):
            for name in runs:
                dest = os.path.join(targets, "%s-%d" % (name, round_number))
                os.mkdir(dest)
                if name == "shell":
                    measured = timed(["bash", "-o", "pipefail", "-c", shell % dest])
                elif name == "checked":
                    measured = timed(["bash", "-o", "pipefail", "-c", checked % (dest, dest)])
                else:
                    measured = timed([sys.executable, "-c", RESTORE_CHILD, TESTS, prepared["artifact"],
                                      prepared["key"], dest])
                print("  round %d %-8s %.2f s, peak RSS %d MiB" % (round_number + 1, name, measured[0],
                                                                   measured[1] // 1024))
                runs[name].append(measured)
                shutil.rmtree(dest)
        report(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(targets, ignore_errors=True)


if __name__ == "__main__":
    main()
