# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 store against a real SeaweedFS with versioning and Object Lock (s3server.py): uploads, refusals, what a
host's key can and cannot do to locked copies, and what the trusted side's retention does."""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
import os
import re
import traceback

import pytest
from botocore.exceptions import ClientError

from s3server import seaweed, vault_dir  # noqa: F401  pylint: disable=unused-import
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError, VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store

MIB = 1 << 20
PART = 5 * MIB  # the smallest part SeaweedFS accepts but the last (EntityTooSmall below it)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def upload(store, key, data, sha256=None):
    return store.upload(key, io.BytesIO(data), len(data), sha256 or hashlib.sha256(data).hexdigest())


def read(store, info):
    with store.open(info) as stream:
        return stream.read()


def live(store, directory):
    """The listing without delete markers, as (key, version) pairs."""
    return sorted((info.key, info.version) for info in store.list(directory) if not info.delete_marker)


def assert_no_secret(seaweed, exc):  # noqa: F811
    text = str(exc) + "".join(traceback.format_exception(exc))
    for _access, secret in seaweed.keys.values():
        assert secret not in text


@pytest.fixture
def host(seaweed, vault_dir):  # noqa: F811
    store = open_store(seaweed.settings("host", part_size=PART))
    yield store
    store.close()


@pytest.fixture
def admin(seaweed):  # noqa: F811
    store = open_store(seaweed.settings("admin"))
    yield store
    store.close()


def test_check_reports_the_default_retention(host):
    assert host.check(write=True) == {"object_lock": "COMPLIANCE", "retention_days": 1}


@pytest.mark.parametrize("size", [0, 1000, 2 * PART + 12345], ids=["empty", "small", "multipart"])
def test_round_trip(seaweed, host, vault_dir, size):  # noqa: F811
    data = os.urandom(size)
    sha256 = hashlib.sha256(data).hexdigest()
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    info = upload(host, key, data)
    assert (info.key, info.size, info.sha256, info.lock_mode) == (key, size, sha256, "COMPLIANCE")
    assert now() + datetime.timedelta(hours=23) < info.retain_until <= now() + datetime.timedelta(days=1)
    if size > PART:
        assert info.digest.endswith("-3")  # three parts
    else:
        assert info.digest == hashlib.md5(data).hexdigest()
    assert read(host, info) == data
    [listed] = host.list(vault_dir)
    assert (listed.key, listed.version, listed.size, listed.latest, listed.digest) == (
        key, info.version, size, True, info.digest)
    head = seaweed.client("admin").head_object(Bucket="vault", Key=key, VersionId=info.version)
    assert head["Metadata"] == {"sha256": sha256}  # x-amz-meta-sha256


@pytest.mark.parametrize("size", [1000, 2 * PART + 1], ids=["small", "multipart"])
def test_bytes_that_differ_from_the_sha256_are_refused(seaweed, host, vault_dir, size):  # noqa: F811
    data = os.urandom(size)
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    with pytest.raises(IntegrityError) as caught:
        upload(host, key, data, sha256=hashlib.sha256(b"other bytes").hexdigest())
    assert caught.value.msg == ("%s changed while it was copied to %s (%d bytes read, %d expected, or another "
                                "SHA-256): nothing was stored" % (key, host.describe(), size, size))
    assert host.list(vault_dir) == []
    assert seaweed.client("admin").list_multipart_uploads(Bucket="vault", Prefix=vault_dir).get("Uploads", []) == []


def test_a_stream_shorter_than_announced_is_refused(host, vault_dir):
    data = os.urandom(PART + 10)
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    with pytest.raises(IntegrityError, match=r"\(%d bytes read, %d expected" % (len(data), len(data) + 1)):
        host.upload(key, io.BytesIO(data), len(data) + 1, hashlib.sha256(data).hexdigest())
    assert host.list(vault_dir) == []


class StopsServer(io.RawIOBase):
    """A source that stops the vault's server once `after` bytes were read."""

    def __init__(self, data, server, after):
        self.source = io.BytesIO(data)
        self.server = server
        self.after = after

    def readable(self):
        return True

    def read(self, size=-1):
        if self.source.tell() >= self.after and self.server.process is not None:
            self.server.stop()
        return self.source.read(size)


def test_the_server_stopping_mid_upload_leaves_nothing(seaweed, host, admin, vault_dir):  # noqa: F811
    data = os.urandom(6 * PART)
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    try:
        with pytest.raises(VaultError) as caught:
            host.upload(key, StopsServer(data, seaweed, 2 * PART), len(data), hashlib.sha256(data).hexdigest())
    finally:
        seaweed.start()
    message = caught.value.msg
    assert message.startswith("the vault %s went away while uploading %s: " % (host.describe(), key))
    assert message.endswith("nothing was stored under that key, the upload can be run again")
    assert host.list(vault_dir) == []
    # The abort could not reach the server: the parts stay, invisible, until the trusted side sweeps them.
    assert admin.sweep_uploads(vault_dir, now() - datetime.timedelta(hours=1)) == []
    assert admin.sweep_uploads(vault_dir, now()) == [key]
    assert seaweed.client("admin").list_multipart_uploads(Bucket="vault", Prefix=vault_dir).get("Uploads", []) == []
    assert upload(host, key, data).size == len(data)  # the same key takes the retry


def test_wrong_credentials_are_refused_without_the_secret(seaweed, caplog):  # noqa: F811
    wrong = "Wr0ng-%s" % seaweed.keys["host"][1]
    store = open_store(seaweed.settings("host", secret_key=wrong))
    with caplog.at_level(logging.DEBUG), pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg.startswith("the vault s3://vault (endpoint %s) refused the credentials "
                                       "(SignatureDoesNotMatch: " % seaweed.endpoint)
    assert caught.value.msg.endswith("to list the bucket: check access_key and secret_key (or the profile or "
                                     "environment they come from)")
    assert wrong not in caplog.text and wrong not in str(caught.value)
    assert_no_secret(seaweed, caught.value)


def test_a_missing_bucket_is_named(seaweed):  # noqa: F811
    with pytest.raises(VaultError) as caught:
        open_store(seaweed.settings("admin", bucket="missing")).check()
    assert caught.value.msg == ("the bucket missing does not exist on the vault s3://missing (endpoint %s): create it "
                                "with versioning and Object Lock, or correct the vault url" % seaweed.endpoint)
    # The host's key, scoped to bucket vault, cannot tell a missing bucket from a forbidden one: it says both.
    with pytest.raises(VaultError) as caught:
        open_store(seaweed.settings("host", bucket="missing")).check()
    assert caught.value.msg == (
        "the vault s3://missing (endpoint %s) denied the request to list the bucket (AccessDenied: Access Denied.): "
        "the credentials lack that permission on bucket missing, or the bucket does not exist" % seaweed.endpoint)
    assert_no_secret(seaweed, caught.value)


@pytest.mark.parametrize("require_object_lock", [True, False])
def test_a_bucket_without_versions_is_refused(seaweed, require_object_lock):  # noqa: F811
    with pytest.raises(VaultError) as caught:
        open_store(seaweed.settings("admin", bucket="plain", require_object_lock=require_object_lock)).check()
    assert caught.value.msg == (
        "the bucket plain of the vault s3://plain (endpoint %s) does not keep versions (versioning never enabled): "
        "use a bucket created with Object Lock, which enables versioning, so that a host cannot overwrite its "
        "copies" % seaweed.endpoint)
    assert_no_secret(seaweed, caught.value)


def test_a_versioned_bucket_without_default_retention_is_refused(seaweed):  # noqa: F811
    client = seaweed.client("admin")
    if "unlocked" not in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="unlocked")
        client.put_bucket_versioning(Bucket="unlocked", VersioningConfiguration={"Status": "Enabled"})
    with pytest.raises(VaultError) as caught:
        open_store(seaweed.settings("admin", bucket="unlocked")).check()
    assert caught.value.msg == (
        "the bucket unlocked of the vault s3://unlocked (endpoint %s) has no Object Lock default retention: create "
        "the bucket with Object Lock and set a default retention (COMPLIANCE, N days), or set require_object_lock: "
        "false to accept copies a host's key can delete" % seaweed.endpoint)
    assert open_store(seaweed.settings("admin", bucket="unlocked", require_object_lock=False)).check() == {}


def test_an_unreachable_endpoint_is_named(seaweed):  # noqa: F811
    store = open_store(seaweed.settings("host", endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg.startswith("the vault s3://vault (endpoint http://127.0.0.1:1) cannot be reached to list "
                                       "the bucket (Could not connect to the endpoint URL: ")
    assert caught.value.msg.endswith("): check endpoint_url, the network and that the server runs")
    assert_no_secret(seaweed, caught.value)


def test_the_host_cannot_destroy_a_locked_copy(seaweed, host, vault_dir):  # noqa: F811
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    first = upload(host, key, b"first copy")
    with pytest.raises(VaultError) as caught:
        host.remove(first)
    assert caught.value.msg == ("%s (version %s) on %s is locked (COMPLIANCE) until %s: it can be removed after that"
                                % (key, first.version, host.describe(), first.retain_until.isoformat()))
    assert read(host, first) == b"first copy"

    # A delete without a version id only hides the copy behind a delete marker.
    seaweed.client("host").delete_object(Bucket="vault", Key=key)
    listed = {(info.version, info.delete_marker, info.latest) for info in host.list(vault_dir)}
    [marker] = [version for version, is_marker, _latest in listed if is_marker]
    assert listed == {(first.version, False, False), (marker, True, True)}
    assert read(host, first) == b"first copy"

    # A put over the key adds a version; the first stays.
    second = upload(host, key, b"second copy")
    assert second.version != first.version
    assert live(host, vault_dir) == sorted([(key, first.version), (key, second.version)])
    assert (read(host, first), read(host, second)) == (b"first copy", b"second copy")

    # Nor can the host shorten the retention.
    with pytest.raises(ClientError):
        seaweed.client("host").put_object_retention(
            Bucket="vault", Key=key, VersionId=first.version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now() + datetime.timedelta(minutes=5)})
    assert host.details(first).retain_until == first.retain_until


def test_the_trusted_side_extends_retention_and_never_shortens_it(host, admin, vault_dir):
    info = upload(host, vault_dir + "/web1/etc/b1.sha256", b"abc  b1.tar.zst.age\n")
    assert info.retain_until > now()
    later = (now() + datetime.timedelta(days=3)).replace(microsecond=0)
    extended = admin.retain(info, later)
    assert (extended.retain_until, extended.lock_mode) == (later, "COMPLIANCE")
    assert admin.retain(info, now() + datetime.timedelta(days=2)).retain_until == later
    assert host.details(info).retain_until == later
    with pytest.raises(VaultError, match=r"is locked \(COMPLIANCE\) until %s" % re.escape(later.isoformat())):
        admin.remove(info)
    assert read(host, info) == b"abc  b1.tar.zst.age\n"


def test_corrupt_makes_a_newer_version_that_lies_about_its_bytes(seaweed, host, vault_dir):  # noqa: F811
    key = vault_dir + "/web1/etc/b1.tar.zst.age"
    original = upload(host, key, b"the backup")
    seaweed.corrupt(key)
    newest = [host.details(info) for info in host.list(vault_dir) if info.latest][0]
    assert newest.version != original.version
    assert newest.sha256 == original.sha256
    assert hashlib.sha256(read(host, newest)).hexdigest() != newest.sha256
    assert read(host, original) == b"the backup"
