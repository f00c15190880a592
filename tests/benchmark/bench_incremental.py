# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incremental backups: lifeboat's chains against restic and borg, the same changes to the same tree, in one run.

    python tests/benchmark/bench_incremental.py [--size-gib 1] [--workdir DIR] [--tmpfs /dev/shm] [--repeat 2]
                                                [--skip-peers] [--json]

Builds bench_archive.py's corpus (corpus.archive_shape: 20,000 source-like files under src/, dump.sql, random.bin),
then in each round, into fresh repositories, backs it up with every contender after the same changes:
  - first backup; no change; 1 % of the files under src/ changed (a line inserted); 1 % changed again and 2 MiB of
    rows appended to dump.sql, the large file;
  - a chain of 7 backups: lifeboat starts a new chain (another job) with a full backup, then 6 backups each after
    1 % changed, restic and borg back up the same 6 changes into their repositories;
  - a full backup of that tree by lifeboat (incremental off), then restores into the tmpfs: lifeboat's 7th backup
    of the chain and that full backup, restic's and borg's last snapshot.
lifeboat: run_archive with incremental=True (zstd-3, age to one recipient, read-back: the defaults), a child
process per backup and restore; restic and borg as bench_archive.py runs them (borg with zstd,3). Each backup
gives its wall time and the bytes the catalog or repository grew; each restore its wall time, the restored tree
checked against the corpus. The order of the contenders switches each round and memory is touched before each run
(corpus.touch_memory); the best time over the rounds is reported, with the largest growth.
"""

import argparse
import functools
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from bench_restore import RESTORE_CHILD, TESTS
from corpus import MIB, PEERS, peer_backup, peer_envs, peer_init, source_text, sql_row, timed, touch_memory, \
    tree_size, warm

sys.path.insert(0, TESTS)
# the checkout's engine, importable as the collection
import conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog  # noqa: E402  pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPENDED = 2 * MIB  # appended to the large file
CHAIN = 7  # backups in the chain whose newest is restored
SMALL_RUN_MEMORY = 256 * MIB  # touched before a backup that stores little; twice the corpus before the others

BACKUP_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _archive
corpus, recipient, catalog, job, mode = sys.argv[2:7]
_archive.run_archive(_archive.ArchiveRequest([corpus], job, backup_dir=catalog, recipients=[recipient],
                                             default_excludes=False, incremental=mode == "incremental"))
"""

# (key, label): the rows of the table, in the order they run
SCENARIOS = (
    ("first", "first backup"),
    ("unchanged", "no change"),
    ("changed", "1 % of src/ changed"),
    ("appended", "1 % changed, 2 MiB appended to dump.sql"),
    ("chain_start", "chain: its full backup"),
    ("chain", "chain: 6 backups, 1 % changed before each (sum)"),
    ("full", "full backup of that tree (incremental off)"),
    ("restore_chain", "restore of the chain's 7th backup / last snapshot"),
    ("restore_full", "restore of the full backup"),
)


class Changes:
    """The changes made to the corpus between backups, from a seed: every run makes the same ones."""

    def __init__(self, root):
        self.root = root
        self.rng = random.Random(7)
        self.small = sorted(os.path.join(top, name) for top, _dirs, names in os.walk(os.path.join(root, "src"))
                            for name in names)
        self.large = os.path.join(root, "dump.sql")

    def change_small(self):
        """A line of source-like text inserted at a random place in 1 % of the files under src/."""
        for path in self.rng.sample(self.small, max(1, len(self.small) // 100)):
            with open(path, "r+b") as handle:
                data = handle.read()
                at = self.rng.randrange(len(data) + 1)
                handle.seek(0)
                handle.write(data[:at] + source_text(self.rng, 40, 4) + data[at:])

    def append_large(self):
        """Rows appended to dump.sql, as a table that grew: 2 MiB and the rest of the last row."""
        keys = itertools.count(os.path.getsize(self.large))
        rows, size = [], 0
        while size < APPENDED:
            rows.append(sql_row(next(keys), True, self.rng))
            size += len(rows[-1])
        with open(self.large, "ab") as handle:
            handle.write(b"".join(rows))


class Lifeboat:
    """lifeboat's catalog: backups through run_archive, restores through run_restore_files, each in a child."""

    name = "lifeboat"

    def __init__(self, store, corpus, recipient, key_file):
        self.store, self.corpus, self.recipient, self.key_file = store, corpus, recipient, key_file
        self.levels = {}  # job -> level of its newest backup
        self.newest = None  # metadata of the newest backup

    def backup(self, job="bench", incremental=True):
        """Seconds of one backup; an incremental one must land on the level after the job's newest (a full
        backup made instead would measure something else)."""
        before = {metadata["id"] for metadata in _catalog.list_metadata(self.store, job)}
        seconds = timed([sys.executable, "-c", BACKUP_CHILD, TESTS, self.corpus, self.recipient, self.store, job,
                         "incremental" if incremental else "full"])[0]
        made = [metadata for metadata in _catalog.list_metadata(self.store, job) if metadata["id"] not in before]
        if len(made) != 1:
            raise SystemExit("lifeboat's backup of job %s left %d new backups in %s, not one" % (
                job, len(made), self.store))
        self.newest = made[0]
        expected = self.levels.get(job, -1) + 1 if incremental else None
        if self.newest.get("level") != expected:
            raise SystemExit("lifeboat's backup %s is level %s, not %s: %s" % (
                self.newest["id"], self.newest.get("level"), expected, self.newest.get("full_reason", "")))
        self.levels[job] = expected
        return seconds

    def stored_files(self):
        """Files the newest backup holds itself (an incremental one); None for a full backup made without."""
        return (self.newest.get("stored") or {}).get("files")

    def restore(self, metadata, dest):
        return timed([sys.executable, "-c", RESTORE_CHILD, TESTS, _catalog.artifact_path(metadata), self.key_file,
                      dest])[0]


class Peer:
    """A restic or borg repository: a backup makes a snapshot, a restore extracts the newest."""

    def __init__(self, name, store, corpus, env):
        self.name, self.store, self.corpus, self.env = name, store, corpus, env
        self.snapshots = 0
        peer_init(name, store, env)

    def stored_files(self):
        return None

    def backup(self):
        self.snapshots += 1
        return timed(peer_backup(self.name, self.store, self.corpus, "s%d" % self.snapshots), env=self.env)[0]

    def restore(self, dest):
        if self.name == "restic":
            return timed(["restic", "-q", "-r", self.store, "restore", "latest", "--target", dest], env=self.env)[0]
        return timed(["borg", "extract", "%s::s%d" % (self.store, self.snapshots)], env=self.env, cwd=dest)[0]


def amount(size):
    if size is None:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if abs(size) >= scale:
            return "%.1f %s" % (size / scale, unit)
    return "%d B" % size


def best(runs):
    """A scenario's figures over the rounds: the best wall time, the largest growth, lifeboat's stored files."""
    return {"seconds": round(min(run["seconds"] for run in runs), 2),
            "added_bytes": max(run["added_bytes"] for run in runs) if runs[0]["added_bytes"] is not None else None,
            "stored_files": runs[0].get("stored_files")}


def ratio(figures, field, top, bottom):
    """figures[scenario][name][field] of top over that of bottom, each a (scenario, name); None if one is missing."""
    try:
        return figures[top[0]][top[1]][field] / figures[bottom[0]][bottom[1]][field]
    except (KeyError, ZeroDivisionError):
        return None


def targets(figures):
    """[(what, ratio or None, limit or None, result)]: the requirement's targets, and the figures it asks to report."""
    rows = [("1 % changed: wall time / restic's", ratio(figures, "seconds", ("changed", "lifeboat"),
                                                        ("changed", "restic")), 1.0),
            ("1 % changed: added storage / restic's", ratio(figures, "added_bytes", ("changed", "lifeboat"),
                                                            ("changed", "restic")), 1.5),
            ("no change: wall time / restic's", ratio(figures, "seconds", ("unchanged", "lifeboat"),
                                                      ("unchanged", "restic")), 0.5)]
    for peer in PEERS:
        for field, what in (("seconds", "wall time"), ("added_bytes", "added storage")):
            rows.append(("1 %% changed + 2 MiB appended: %s / %s's" % (what, peer),
                         ratio(figures, field, ("appended", "lifeboat"), ("appended", peer)), None))
    rows.append(("restore: chain's 7th backup / full backup", ratio(figures, "seconds", ("restore_chain", "lifeboat"),
                                                                    ("restore_full", "lifeboat")), 1.2))
    found = []
    for what, value, limit in rows:
        if value is None:
            result = "n/a"
        elif limit is None:
            result = "reported"
        else:
            result = "pass" if value <= limit else "FAIL"
        found.append((what, value, limit, result))
    unchanged = figures["unchanged"]["lifeboat"]["stored_files"]
    found.append(("no change: files lifeboat stored", unchanged, 0, "pass" if unchanged == 0 else "FAIL"))
    return found


def print_table(figures, names, size, rounds):
    print("\ncorpus %.2f GiB, best of %d round(s): wall time, bytes the catalog or repository grew%s" % (
        size / (1 << 30), rounds, ", files lifeboat's backup stored itself" if "lifeboat" in names else ""))
    header = "%-52s" % "scenario" + "".join("%24s" % name for name in names) + "%10s" % "stored"
    print(header)
    for scenario, label in SCENARIOS:
        cells = []
        for name in names:
            figure = figures[scenario].get(name)
            text = "" if figure is None else "%.2f s %11s" % (figure["seconds"], amount(figure["added_bytes"]))
            cells.append("%24s" % text)
        stored = figures[scenario]["lifeboat"]["stored_files"]
        print("%-52s" % label + "".join(cells) + "%10s" % ("" if stored is None else stored))


def print_targets(found):
    print("\n%-56s %8s %8s  %s" % ("target", "ratio", "limit", "result"))
    for what, value, limit, result in found:
        print("%-56s %8s %8s  %s" % (what, "-" if value is None else "%.2f" % value if isinstance(value, float)
                                     else value, "" if limit is None else "<= %s" % limit, result))


def fresh(work, name):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run_round(runs, contenders, order, changes, shm):
    """Every scenario once, the contenders in this order; each figure appended to runs[scenario][name]."""
    lifeboat = contenders["lifeboat"]
    size = tree_size(changes.root)

    def measure(name, backup, memory):
        """One backup timed, with what its store grew and the files lifeboat's backup stored."""
        touch_memory(shm, memory)
        before = tree_size(contenders[name].store)
        return {"seconds": backup(), "added_bytes": tree_size(contenders[name].store) - before,
                "stored_files": contenders[name].stored_files()}

    def everyone(scenario, memory):
        for name in order:
            runs[scenario][name].append(measure(name, contenders[name].backup, memory))

    everyone("first", 2 * size)
    everyone("unchanged", SMALL_RUN_MEMORY)
    changes.change_small()
    everyone("changed", SMALL_RUN_MEMORY)
    changes.change_small()
    changes.append_large()
    everyone("appended", SMALL_RUN_MEMORY)
    chain_backup = functools.partial(lifeboat.backup, "chain")
    runs["chain_start"]["lifeboat"].append(measure("lifeboat", chain_backup, 2 * size))
    chain = {name: [] for name in order}
    for _backup in range(CHAIN - 1):
        changes.change_small()
        for name in order:
            chain[name].append(measure(name, chain_backup if name == "lifeboat" else contenders[name].backup,
                                       SMALL_RUN_MEMORY))
    for name, figures in chain.items():
        runs["chain"][name].append({key: None if figures[0][key] is None else sum(figure[key] for figure in figures)
                                    for key in figures[0]})
    seventh = lifeboat.newest
    runs["full"]["lifeboat"].append(measure("lifeboat", functools.partial(lifeboat.backup, "full", False), 2 * size))
    restores = [("restore_chain", name, contenders[name].restore) for name in order if name != "lifeboat"]
    restores += [("restore_chain", "lifeboat", functools.partial(lifeboat.restore, seventh)),
                 ("restore_full", "lifeboat", functools.partial(lifeboat.restore, lifeboat.newest))]
    restores.sort(key=lambda restore: order.index(restore[1]))
    size = tree_size(changes.root)
    for scenario, name, restore in restores:
        touch_memory(shm, 2 * size)
        dest = tempfile.mkdtemp(prefix="restore-", dir=shm)
        seconds = restore(dest)
        restored = tree_size(dest)
        shutil.rmtree(dest)
        if restored != size:
            raise SystemExit("%s restored %d bytes where the tree holds %d" % (name, restored, size))
        runs[scenario][name].append({"seconds": seconds, "added_bytes": None, "stored_files": None})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="corpus size (default 1; the file count is fixed)")
    parser.add_argument("--workdir", default=None, help="where the corpus and the repositories go (default: a temp "
                                                        "dir)")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs to restore into (default /dev/shm)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, each into fresh repositories (default 2)")
    parser.add_argument("--skip-peers", action="store_true", help="lifeboat alone, without restic and borg")
    parser.add_argument("--json", action="store_true", help="print the figures and targets as JSON at the end")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    shm = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.tmpfs)
    try:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), "archive", corpus, str(args.size_gib)],
                       check=True)
        # byte-compiled first, as an installed engine is once it has run
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "plugins", "module_utils")],
                       check=True)
        identity, recipient = _age.generate_identity()
        key_file = os.path.join(work, "key.txt")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(identity + "\n")
        changes = Changes(corpus)
        warm(corpus)
        peers = [] if args.skip_peers else [name for name in PEERS if shutil.which(name)]
        names = ["lifeboat"] + peers
        envs = peer_envs(work)
        runs = {scenario: {name: [] for name in names} for scenario, _label in SCENARIOS}
        for round_number in range(args.repeat):
            contenders = {"lifeboat": Lifeboat(fresh(work, "lifeboat"), corpus, recipient, key_file)}
            contenders.update({name: Peer(name, fresh(work, name), corpus, envs[name]) for name in peers})
            run_round(runs, contenders, sorted(names, reverse=round_number % 2 == 1), changes, shm)
            print("round %d of %d done" % (round_number + 1, args.repeat), flush=True)
        figures = {scenario: {name: best(found) for name, found in by_name.items() if found}
                   for scenario, by_name in runs.items()}
        found = targets(figures)
        print_table(figures, names, tree_size(corpus), args.repeat)
        print_targets(found)
        if args.json:
            print(json.dumps({"input_gib": round(tree_size(corpus) / (1 << 30), 3), "rounds": args.repeat,
                              "figures": figures,
                              "targets": [{"target": what, "ratio": None if value is None else round(value, 3),
                                           "limit": limit, "result": result}
                                          for what, value, limit, result in found]}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
