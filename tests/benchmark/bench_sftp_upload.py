# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: SftpStore.upload against `sftp -b` put of the same file to the same append-only vault, same run.

    python tests/benchmark/bench_sftp_upload.py [--size-mib 1024] [--rounds 3] [--workdir DIR]

Needs root: the vault is tests/integration/vault/sshvault.py's real sshd on 127.0.0.1 (a system account, a
chroot under /srv). The source is random bytes (what an encrypted artifact looks like), read once beforehand so
both read it from the page cache. Each round alternates, each in a child process whose peak RSS (its own and its
ssh's, added up) is sampled from /proc:
  - sftp:     sftp -b BATCH with `put FILE KEY` (OpenSSH's client, 32 KiB requests, 64 in flight)
  - lifeboat: SftpStore.upload of the open file, SHA-256 checked while streaming
Every upload takes a new name: the vault refuses a name twice. Prints the best and median wall times, the
throughput ratio lifeboat / sftp (target >= 0.9) and the peak RSS of each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "integration", "vault"))
runpy.run_path(os.path.join(TESTS, "conftest.py"))  # makes the checkout importable as the collection

import sshvault  # noqa: E402  pylint: disable=wrong-import-position
from corpus import touch_memory  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1 << 20
UPLOAD = """
import sys
sys.path.insert(0, %r)
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store
store = open_store(%r)
with open(sys.argv[1], "rb") as stream:
    store.upload(sys.argv[2], stream, int(sys.argv[3]), sys.argv[4])
store.close()
"""


def _peak_mib(pid):
    """VmHWM of a process: its own peak RSS (wait4's ru_maxrss would start from this benchmark's size)."""
    with open("/proc/%d/status" % pid, encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(argv):
    """Wall time, CPU time (the command and its ssh), and their peak RSS (MiB) added up, sampled every 20 ms."""
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)  # pylint: disable=consider-using-with
    peaks = {}
    while True:
        for pid in [process.pid] + sshvault.descendants(process.pid):
            with contextlib.suppress(OSError):
                peaks[pid] = max(peaks.get(pid, 0.0), _peak_mib(pid))
        done, status, usage = os.wait4(process.pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit("failed: %s" % " ".join(argv))
    return elapsed, usage.ru_utime + usage.ru_stime, sum(peaks.values())


def make_source(path, size):
    with open(path, "wb") as handle:
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=handle, check=True)
    # sha256sum also reads it into the page cache, from where both contenders read it
    return subprocess.run(["sha256sum", path], capture_output=True, text=True, check=True).stdout.split()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="parent of the source file (default: the system's tmp)")
    parser.add_argument("--on-disk", action="store_true",
                        help="keep the vault's job directory on disk; by default it is a tmpfs, so that the disk's "
                             "writeback, which throttles both contenders at random, is not what is measured")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    vault = sshvault.SshVault(jobs=("bench",))
    job_dir = vault.path(vault.key("bench"))
    mounted = False
    try:
        if not args.on_disk:
            account = pwd.getpwnam(vault.account)
            size = "%dm" % (2 * args.rounds * args.size_mib + 64)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700,uid=%d,gid=%d" % (
                size, account.pw_uid, account.pw_gid), "tmpfs", job_dir], check=True)
            mounted = True
        vault.start()
        source = os.path.join(work, "artifact")
        size = args.size_mib * MIB
        sha256 = make_source(source, size)
        batch = os.path.join(work, "batch")
        collections = os.path.join(os.path.dirname(TESTS), "build", "pytest-collections")
        code = UPLOAD % (collections, vault.settings)
        times = {"sftp": [], "lifeboat": []}
        cpu = {"sftp": [], "lifeboat": []}
        rss = {"sftp": 0.0, "lifeboat": 0.0}
        for number in range(args.rounds):
            with open(batch, "w", encoding="utf-8") as handle:
                handle.write("put %s /%s\n" % (source, vault.key("bench", "sftp-%d" % number)))
            runs = {"sftp": vault.client_argv() + ["-b", batch, "%s@127.0.0.1" % vault.account],
                    "lifeboat": [sys.executable, "-c", code, source, vault.key("bench", "lifeboat-%d" % number),
                                 str(size), sha256]}
            for name, argv in runs.items():
                # on a VM whose free memory goes back to the host, the first write into a page is several times
                # slower: the vault's tmpfs gets its pages before each upload, whichever contender runs
                touch_memory(job_dir, size)
                seconds, cpu_seconds, peak = timed(argv)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
                rss[name] = max(rss[name], peak)
                print("round %d %-8s %6.2f s  %6.1f MiB/s  CPU %5.2f s  peak RSS %5.1f MiB" % (
                    number + 1, name, seconds, size / MIB / seconds, cpu_seconds, peak), flush=True)
        for name, values in times.items():
            print("%-8s best %6.2f s (%6.1f MiB/s)  median %6.2f s  CPU (client and ssh) median %5.2f s  "
                  "peak RSS %5.1f MiB" % (name, min(values), size / MIB / min(values), statistics.median(values),
                                          statistics.median(cpu[name]), rss[name]))
        print("throughput lifeboat / sftp: best %.3f, median %.3f (target >= 0.9)" % (
            min(times["sftp"]) / min(times["lifeboat"]),
            statistics.median(times["sftp"]) / statistics.median(times["lifeboat"])))
        for number in range(args.rounds):
            for name in times:
                path = vault.path(vault.key("bench", "%s-%d" % (name, number)))
                if os.path.getsize(path) != size:
                    raise SystemExit("%s holds %d bytes, %d were sent" % (path, os.path.getsize(path), size))
    finally:
        vault.stop()
        if mounted:
            subprocess.run(["umount", job_dir], check=True)
        vault.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
