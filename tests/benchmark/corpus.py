# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data the benchmarks back up: source-like files, an SQL-like dump, random bytes, an SQLite database; and what
the benchmarks share around it: timing a command, the size of a tree, restic and borg.

One builder, one shape per benchmark (archive_shape, restore_shape, fleet_shape): each keeps the file count,
total size and compressibility behind the figures in docs/performance.md. The text comes from a seeded
generator; random.bin and the noise after each file come from os.urandom.

    python3 tests/benchmark/corpus.py {archive,restore,fleet} ROOT SIZE

SIZE is in GiB for archive and in MiB for the others, as the benchmarks' own options. Standard library only:
bench_fleet.py sends this file to each fleet host over ssh and runs it there (`python3 - fleet ROOT SIZE`).
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple

MIB = 1 << 20
WORDS = ("def class return import from self if else elif for while in not and or None True False try except "
         "finally with as lambda yield async await print len range dict list set tuple str int float value "
         "result request response config logger error index count total user name path data items key").split()

Shape = namedtuple("Shape", [
    "files",      # source-like files under src/, 100 to a directory
    "text",       # bytes of text in them: many small files and a few large ones, each at least 100 bytes
    "pool",       # bytes of text the files are cut from: the smaller, the more they repeat one another
    "arguments",  # up to this many numbered arguments per line: digits compress worse than words
    "noise",      # up to this many random bytes after each file's text
    "sql",        # bytes of dump.sql
    "ordered",    # dump.sql's rows in key order, or shuffled, with wider values (compresses worse)
    "random",     # bytes of random.bin
    "sqlite",     # bytes of rows in data/bench.db
], defaults=(0, 0, True, 0, 0))


def archive_shape(size_gib):
    """Per GiB: 20,000 files of 724 MiB, a 155 MiB dump, 100 MiB random; 0.96 GiB in all (the file count is fixed)."""
    return Shape(files=20000, text=int(724 * size_gib * MIB), pool=64 * MIB, arguments=4,
                 sql=int(155 * size_gib * MIB), random=int(100 * size_gib * MIB))


def restore_shape(size_mib):
    """size_mib in all: the dump and random.bin (2:1) take 300 MiB, at most half; 20,000 files the rest."""
    size_mib = int(size_mib)
    fixed = min(300, size_mib // 2)
    sql = fixed * 2 // 3
    return Shape(files=20000, text=(size_mib - fixed) * MIB, pool=16 * MIB, arguments=0,
                 sql=sql * MIB, ordered=False, random=(fixed - sql) * MIB)


def fleet_shape(size_mib):
    """size_mib per host: three quarters in files of about 31 KB of repeating text and 1 KB of noise each, a
    quarter in the SQLite database."""
    files = int(size_mib * MIB) * 3 // 4 // 32000 + 1
    return Shape(files=files, text=files * 31000, pool=448 << 10, arguments=0, noise=2000,
                 sqlite=int(size_mib * MIB) // 4)


def source_text(rng, size, arguments):
    """Text that compresses like code: identifiers, indentation, repetition at short and long range."""
    lines, total = [], 0
    while total < size:
        line = "    " * rng.randint(0, 3) + " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
        line += "(%s)\n" % ", ".join("%s_%d" % (rng.choice(WORDS), rng.randint(0, 99))
                                     for _arg in range(rng.randint(0, arguments)))
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def write_files(root, shape, pool, rng):
    # many small files and a few large ones, scaled to add up to the text whatever the draw
    drawn = [rng.expovariate(1) for _file in range(shape.files)]
    scale = shape.text / sum(drawn)
    for index, weight in enumerate(drawn):
        path = os.path.join(root, "src", "pkg%03d" % (index // 100), "mod%05d.py" % index)
        if index % 100 == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        size = min(len(pool), max(100, int(weight * scale)))
        start = rng.randrange(len(pool) - size + 1)
        with open(path, "wb") as handle:
            handle.write(pool[start:start + size])
            if shape.noise:
                handle.write(os.urandom(rng.randint(0, shape.noise)))


def sql_row(key, ordered, rng):
    """An INSERT: in key order and of one month, like a dump of a table filled over time; or shuffled, with
    wider values."""
    if ordered:
        values = (key, rng.randint(1, 99999), rng.randint(1, 9999), rng.randint(0, 99), 11, rng.randint(1, 28))
    else:
        values = (rng.getrandbits(31), rng.getrandbits(20), rng.getrandbits(16), rng.randint(0, 99),
                  rng.randint(1, 12), rng.randint(1, 28))
    return b"INSERT INTO orders VALUES (%d, 'customer-%d', %d.%02d, '2026-%02d-%02d');\n" % values


def write_sql(path, size, ordered, rng):
    keys = itertools.count()
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            data = b"".join(sql_row(next(keys), ordered, rng) for _row in range(1000))
            handle.write(data)
            written += len(data)


def write_random(path, size):
    with open(path, "wb") as handle:
        for offset in range(0, size, MIB):
            handle.write(os.urandom(min(MIB, size - offset)))


def write_sqlite(path, size, pool):
    """Rows of about 120 bytes, each with 100 characters of the source-like text."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    database = sqlite3.connect(path)
    try:
        database.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, host TEXT, body TEXT)")
        database.executemany("INSERT INTO events (host, body) VALUES (?, ?)",
                             (("web%d" % (row % 7), pool[row % 5000:row % 5000 + 100].decode())
                              for row in range(size // 120)))
        database.commit()
    finally:
        database.close()


def build_corpus(root, shape):
    """Writes the corpus of this shape under root (which exists): src/, dump.sql, random.bin, data/bench.db."""
    rng = random.Random(42)
    pool = source_text(rng, shape.pool, shape.arguments)
    write_files(root, shape, pool, rng)
    if shape.sql:
        write_sql(os.path.join(root, "dump.sql"), shape.sql, shape.ordered, rng)
    if shape.random:
        write_random(os.path.join(root, "random.bin"), shape.random)
    if shape.sqlite:
        write_sqlite(os.path.join(root, "data", "bench.db"), shape.sqlite, pool)


SHAPES = {"archive": archive_shape, "restore": restore_shape, "fleet": fleet_shape}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in SHAPES:
        sys.exit("usage: corpus.py {%s} ROOT SIZE" % ",".join(SHAPES))
    os.makedirs(sys.argv[2], exist_ok=True)
    build_corpus(sys.argv[2], SHAPES[sys.argv[1]](float(sys.argv[3])))


def touch_memory(directory, size):
    """Write size bytes into a file under directory (a tmpfs) and remove it: the guest then holds those pages."""
    path = os.path.join(directory, "touch")
    block = bytes(1 << 20)
    with open(path, "wb") as handle:
        for _number in range(size >> 20):
            handle.write(block)
    os.unlink(path)


def tree_size(directory):
    return sum(os.path.getsize(os.path.join(top, name)) for top, _dirs, names in os.walk(directory) for name in names)


def timed(argv, env=None, cwd=None):
    """Wall time and peak RSS (MiB) of a command and its children."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    status, usage = os.wait4(process.pid, 0)[1:]
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("command failed: %s" % " ".join(argv))
    return elapsed, usage.ru_maxrss / 1024


def warm(directory):
    subprocess.run(["tar", "-cf", "/dev/null", directory], check=True)
    subprocess.run("find %s -type f -print0 | xargs -0 cat > /dev/null" % directory, shell=True, check=True)


PEERS = ("restic", "borg")


def peer_envs(work):
    """The environment restic and borg each run in: a passphrase, and their caches (borg's keys too) under work,
    removed with it."""
    return {"restic": dict(os.environ, RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=os.path.join(work, "restic-cache")),
            "borg": dict(os.environ, BORG_PASSPHRASE="bench", BORG_BASE_DIR=os.path.join(work, "borg-base"))}


def peer_init(name, repo, env):
    """A fresh encrypted repository of restic or borg in repo, an empty directory."""
    if name == "restic":
        subprocess.run(["restic", "-q", "init", "-r", repo], env=env, check=True, stdout=subprocess.DEVNULL)
    else:
        subprocess.run(["borg", "init", "-e", "repokey", repo], env=env, check=True)


def peer_backup(name, repo, source, archive):
    """The command of a backup of source with restic or borg (zstd,3, into archive, a name new in the repository)."""
    if name == "restic":
        return ["restic", "-q", "-r", repo, "backup", source]
    return ["borg", "create", "--compression", "zstd,3", repo + "::" + archive, source]
