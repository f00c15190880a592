# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of a backup that only the vault holds: lifeboat's restore from an S3 vault (download into scratch space,
checked against its sidecar, then the verifying restore) against `rclone cat | age -d | zstd -d | tar -x`.

The corpus and its backup are bench_restore's; the backup is replicated to SeaweedFS on loopback (s3server.py), then
each contender restores it into a tmpfs, in the same run, each in its own process. Target: lifeboat <= 1.2x.

    python3 tests/benchmark/bench_vault_restore.py --size-mib 1024 --work /var/tmp --tmpfs /dev/shm
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "vault"))

from bench_restore import PREPARE_CHILD, TESTS, timed  # noqa: E402  pylint: disable=wrong-import-position
from bench_s3_upload import find_rclone, rclone_environment  # noqa: E402  pylint: disable=wrong-import-position
from corpus import touch_memory  # noqa: E402  pylint: disable=wrong-import-position

REPLICATE_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _option_groups
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import replicate
vault = _option_groups.read_vault(json.loads(sys.stdin.read()))
print(json.dumps(replicate.replicate(sys.argv[2], "bench", [vault])["vaults"][0]["sent"]))
"""

RESTORE_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _option_groups, _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import reading
settings = json.loads(sys.stdin.read())
with open(sys.argv[3], encoding="utf-8") as handle:
    key = _age.Key(identities=handle.read())
request = _restore.RestoreRequest(backup_dir=sys.argv[5], backup_id=sys.argv[2], key=key, dest=sys.argv[4],
                                  safety_backup=False)
result = reading.restore_copy(_option_groups.read_vault(settings), request, from_vault=True)
assert result["restored"]["files"] > 0
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="total corpus size (default 1024)")
    parser.add_argument("--work", default=None, help="where the corpus, the backup and the server go")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs to restore into (default /dev/shm)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each")
    args = parser.parse_args()
    import s3server  # pylint: disable=import-outside-toplevel

    rclone = find_rclone()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.work)
    targets = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.tmpfs)
    server = s3server.SeaweedServer(parent=work)
    try:
        server.start()
        server.create_buckets()
        settings = dict(server.settings("host", prefix="bench"), host="bench-host")
        engine = os.path.join(os.path.dirname(TESTS), "plugins", "module_utils")
        subprocess.run([sys.executable, "-m", "compileall", "-q", engine], check=True)
        prepared = json.loads(subprocess.run([sys.executable, "-c", PREPARE_CHILD, TESTS, work, str(args.size_mib)],
                                             check=True, capture_output=True, text=True).stdout)
        sent = json.loads(subprocess.run([sys.executable, "-c", REPLICATE_CHILD, TESTS, os.path.join(work, "backups")],
                                         input=json.dumps(settings), check=True, capture_output=True,
                                         text=True).stdout)
        backup_id = sent[0]
        key = "bench/bench-host/bench/" + os.path.basename(prepared["artifact"])
        print("corpus: %d files, %.0f MiB; artifact %.0f MiB on the vault as %s" % (
            prepared["files"], prepared["input_size"] / 2**20, prepared["size"] / 2**20, key))
        shell = "%s cat vault:vault/%s | age -d -i %s | zstd -d | tar -x -C %%s" % (rclone, key, prepared["key"])
        env = rclone_environment(server)
        runs = {"lifeboat": [], "rclone": []}
        # A first round that is not counted, the order switched each round, and the tmpfs's memory touched before
        # each run: on a VM whose free memory goes back to the host, a write into a page the guest does not hold is
        # several times slower, and the figures would measure which contender met more of them.
        for round_number in range(-1, args.rounds):
            for name in sorted(runs, reverse=round_number % 2 == 1):
                measured = runs[name] if round_number >= 0 else []
                touch_memory(targets, 3 * prepared["input_size"])
                dest = os.path.join(targets, "%s-%d" % (name, round_number))
                catalog = os.path.join(work, "catalog-%s-%d" % (name, round_number))
                os.mkdir(dest)
                if name == "rclone":
                    elapsed, rss = timed(["bash", "-o", "pipefail", "-c", shell % dest], env=env)
                else:
                    elapsed, rss = timed([sys.executable, "-c", RESTORE_CHILD, TESTS, backup_id, prepared["key"], dest,
                                          catalog], stdin=json.dumps(settings))
                label = round_number + 1 or "warm-up"
                print("  round %s %-8s %.2f s, peak RSS %d MiB" % (label, name, elapsed, rss // 1024), flush=True)
                measured.append((elapsed, rss))
                shutil.rmtree(dest)
        figures = {name: sorted(elapsed for elapsed, _rss in measured) for name, measured in runs.items()}
        for name, times in figures.items():
            print("%-9s best %.2f s, median %.2f s" % (name, times[0], statistics.median(times)))
        print("ratio lifeboat / rclone pipeline: best %.2f, median %.2f (target <= 1.2)" % (
            figures["lifeboat"][0] / figures["rclone"][0],
            statistics.median(figures["lifeboat"]) / statistics.median(figures["rclone"])))
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(targets, ignore_errors=True)


if __name__ == "__main__":
    main()
