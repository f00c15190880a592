"""Benchmark: the engine's archive against the shell pipeline, restic and borg, on the same corpus in the same run.

    python tests/benchmark/bench_archive.py [--size-gib 1] [--workdir DIR] [--skip-peers]

Builds a corpus of 0.96 GiB per --size-gib (corpus.archive_shape: 20,000 source-like files, a 155 MiB SQL-like
text and 100 MiB of random bytes per GiB; the file count is fixed), then times:
  - lifeboat: run_archive with zstd-3, age to one recipient, SHA-256 (in a child process, for its own peak RSS),
              the artifact read back from the disk and checked in full before it gets its name (read_back, the default)
  - lifeboat-no-read-back: the same with read_back=False, side by side: what the read-back costs
  - shell:    tar -cf - DIR | zstd -3 -T0 | age -r R > F && sha256sum F
  - restic:   first backup into a fresh encrypted repository (if installed)
  - borg:     first backup into a fresh encrypted repository, zstd,3 (if installed)
Each is run after dropping nothing from the page cache: the corpus is read once beforehand so every tool reads
from memory, which is what makes the comparison about CPU work and not about the disk.
"""

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from corpus import PEERS, peer_backup, peer_envs, peer_init, timed, touch_memory, tree_size, warm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHELL_PIPELINE = ("tar -cf - -C %(corpus)s . | zstd -q -3 -T0 | age -r %(recipient)s > %(out)s/f.tar.zst.age"
                  " && sha256sum %(out)s/f.tar.zst.age > /dev/null")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of runs, one per tool; the best is reported")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    shm = tempfile.mkdtemp(prefix="lifeboat-bench-", dir="/dev/shm")
    try:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        started = time.monotonic()
        # In a child: ru_maxrss of the measured commands starts from the size of the process that forks them.
        subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), "archive", corpus, str(args.size_gib)],
                       check=True)
        size = tree_size(corpus)
        print("corpus: %.2f GiB in %.0f s" % (size / 1024 ** 3, time.monotonic() - started), flush=True)
        sys.path.insert(0, os.path.join(ROOT, "build", "pytest-collections"))
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import conftest  # noqa: F401  (makes the collection importable)
        from ansible_collections.lifeboat.backup.plugins.module_utils import _age
        identity, recipient = _age.generate_identity()
        warm(corpus)
        results = {}
        code = ("import sys; sys.path.insert(0, %r)\n"
                "from ansible_collections.lifeboat.backup.plugins.module_utils import _archive\n"
                "_archive.run_archive(_archive.ArchiveRequest([%r], 'bench', backup_dir=sys.argv[1], "
                "recipients=[%r], default_excludes=False, read_back=sys.argv[2] == 'read-back'))\n") % (
            os.path.join(ROOT, "build", "pytest-collections"), corpus, recipient)

        def fresh(name):
            path = os.path.join(work, name)
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
            return path

        runs = {
            "lifeboat": lambda: timed([sys.executable, "-c", code, fresh("out-lifeboat"), "read-back"]),
            "lifeboat-no-read-back": lambda: timed([sys.executable, "-c", code, fresh("out-lifeboat-no-read-back"),
                                                    "none"]),
            "shell": lambda: timed(["bash", "-o", "pipefail", "-c", SHELL_PIPELINE % {
                "corpus": corpus, "recipient": recipient, "out": fresh("out-shell")}]),
        }
        envs = peer_envs(work)

        def peer(name):
            repo = fresh("out-" + name)
            peer_init(name, repo, envs[name])
            return timed(peer_backup(name, repo, corpus, "first"), env=envs[name])

        if not args.skip_peers:
            runs.update({name: functools.partial(peer, name) for name in PEERS if shutil.which(name)})
        # Rounds in which each contender runs once, the order switched each round, with memory touched before each
        # run: on a VM whose free memory goes back to the host, writing into pages the guest does not hold is
        # several times slower, and the figures would measure which contender met more of them.
        measured = {name: [] for name in runs}
        for round_number in range(args.repeat):
            for name in sorted(runs, reverse=round_number % 2 == 1):
                touch_memory(shm, 2 * size)
                measured[name].append(runs[name]())
        for name, pairs in measured.items():
            best = min(pairs, key=lambda pair: pair[0])
            output = os.path.join(work, "out-" + name)
            results[name] = {"seconds": round(best[0], 2), "peak_rss_mib": round(best[1], 1),
                             "output_mib": round(tree_size(output) / 1024 ** 2, 1)}
            print("%-21s %7.2f s  %8.1f MiB out  peak RSS %7.1f MiB" % (
                name, best[0], results[name]["output_mib"], best[1]), flush=True)
        # The shell pipeline reads nothing back: the like-for-like ratio is the one without read-back.
        ratio = results["lifeboat-no-read-back"]["seconds"] / results["shell"]["seconds"]
        read_back = results["lifeboat"]["seconds"] / results["lifeboat-no-read-back"]["seconds"]
        print("lifeboat without read-back / shell pipeline wall time: %.2f (target <= 1.00)" % ratio)
        print("lifeboat with / without read-back wall time: %.2f" % read_back)
        print(json.dumps({"input_gib": round(size / 1024 ** 3, 3), "results": results, "ratio_vs_shell": round(ratio, 3),
                          "read_back_ratio": round(read_back, 3)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
