# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A vault on any S3 API (s3://BUCKET/PREFIX) through boto3: versions, Object Lock, parallel multipart uploads.

The bucket must keep versions and, unless require_object_lock is false, lock every upload by its default
retention: a host's key can then add versions and delete markers but destroy nothing. Uploads never set lock
headers themselves (a host's identity may not), and only the trusted side's credentials extend retention.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime
import hashlib
import threading

from .._errors import IntegrityError, MissingDependencyError, UsageError, VaultError
from . import s3errors
from .store import ObjectInfo, Store

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError as ConnectionBroken  # a read cut off mid-body, on older botocore
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

MIB = 1 << 20
MIN_PART = 5 * MIB  # S3's smallest part but the last; SeaweedFS enforces it too
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10000
DEFAULT_PART = 6 * MIB
# Parts in memory at once: sent in parallel, the next one read meanwhile.
THREADS = 4
SECRET_OPTIONS = ("secret_key", "session_token", "access_key")


def _aware(moment):
    return moment.astimezone(datetime.timezone.utc) if moment is not None else None


def _etag(value):
    return value.strip('"') if value else None


def _read_full(stream, size):
    """Up to size bytes from stream; fewer only at its end (pipes return short reads)."""
    data = stream.read(size)
    if not data or len(data) == size:
        return data or b""
    chunks = [data]
    missing = size - len(data)
    while missing:
        more = stream.read(missing)
        if not more:
            break
        chunks.append(more)
        missing -= len(more)
    return b"".join(chunks)


def _md5(data):
    # Content-MD5 is an integrity check of the part, not security: the store refuses a part that differs.
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


class S3Store(Store):
    scheme = "s3"
    versioned = True

    def __init__(self, address, settings):
        super().__init__(address, settings)
        if not HAS_BOTO3:
            raise MissingDependencyError("the vault %s is on S3, which needs boto3: install python3-boto3 (Debian, "
                                         "Ubuntu) or pip install boto3" % address.url, stage="vault")
        self.bucket = address.bucket
        self.endpoint = settings.get("endpoint_url") or None
        self.require_object_lock = settings.get("require_object_lock", True)
        self.part_size = settings.get("part_size") or DEFAULT_PART
        style = settings.get("addressing_style") or "auto"
        if style not in ("auto", "path", "virtual"):
            raise UsageError("vault %s: addressing_style %r is not auto, path or virtual" % (self.describe(), style))
        if not isinstance(self.part_size, int) or not MIN_PART <= self.part_size <= MAX_PART:
            raise UsageError("vault %s: part_size must be a number of bytes from 5 MiB to 5 GiB"
                             % self.describe())
        options = {}
        if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
            # boto3 >= 1.36 would add CRC32 checksums that some S3 servers refuse; Content-MD5 checks every part.
            options = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}
        self._config = Config(s3={"addressing_style": style}, retries={"max_attempts": 3, "mode": "standard"},
                              max_pool_connections=THREADS + 2, connect_timeout=10, read_timeout=120, **options)
        self._client = None
        self._default_mode = None

    def describe(self):
        return "%s (endpoint %s)" % (self.address.url, self.endpoint) if self.endpoint else self.address.url

    @property
    def client(self):
        if self._client is None:
            with self._request("connect"):
                session = boto3.session.Session(
                    aws_access_key_id=self.settings.get("access_key") or None,
                    aws_secret_access_key=self.settings.get("secret_key") or None,
                    aws_session_token=self.settings.get("session_token") or None,
                    profile_name=self.settings.get("profile") or None)
                verify = self.settings.get("ca_bundle") or self.settings.get("validate_certs", True)
                self._client = session.client("s3", endpoint_url=self.endpoint, verify=verify,
                                              region_name=self.settings.get("region") or "us-east-1",
                                              config=self._config)
        return self._client

    @contextlib.contextmanager
    def _request(self, action, key=None, uploading=False):
        """Turns what botocore raises inside into the vault's sentences (s3errors)."""
        try:
            yield
        except (ClientError, BotoCoreError, ConnectionBroken) as exc:
            secrets = [self.settings.get(name) for name in SECRET_OPTIONS]
            raise s3errors.translate(exc, self.describe(), self.bucket, action, key, uploading, secrets) from None

    def _key(self, info):
        return {"Bucket": self.bucket, "Key": info.key, **({"VersionId": info.version} if info.version else {})}

    # Checking the vault

    def check(self, write=False):
        # A listing first: unlike HEAD, its refusal says why (a wrong key, a missing bucket, a denied list).
        with self._request("list", self._prefix(self.address.prefix) or "the bucket"):
            self.client.list_object_versions(Bucket=self.bucket, Prefix=self._prefix(self.address.prefix),
                                             MaxKeys=1)
        with self._request("read the versioning of bucket %s" % self.bucket):
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            raise VaultError("the bucket %s of the vault %s does not keep versions (versioning %s): use a bucket "
                             "created with Object Lock, which enables versioning, so that a host cannot overwrite "
                             "its copies" % (self.bucket, self.describe(), (status or "never enabled").lower()),
                             stage="vault")
        rule = self._lock_rule() if self.require_object_lock else None
        if self.require_object_lock and not rule:
            raise VaultError("the bucket %s of the vault %s has no Object Lock default retention: create the bucket "
                             "with Object Lock and set a default retention (COMPLIANCE, N days), or set "
                             "require_object_lock: false to accept copies a host's key can delete"
                             % (self.bucket, self.describe()), stage="vault")
        if not rule:
            return {}
        facts = {"object_lock": rule["Mode"]}
        facts.update(("retention_" + unit.lower(), rule[unit]) for unit in ("Days", "Years") if rule.get(unit))
        return facts

    def _lock_rule(self):
        """The bucket's default retention ({"Mode": ..., "Days"|"Years": N}), None when it has none."""
        with self._request("read the Object Lock configuration of bucket %s" % self.bucket):
            try:
                config = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
            except ClientError as exc:
                if s3errors.error_code(exc) == "ObjectLockConfigurationNotFoundError":
                    return None
                raise
        if config.get("ObjectLockEnabled") != "Enabled":
            return None
        return config.get("Rule", {}).get("DefaultRetention") or None

    # Reading

    @staticmethod
    def _prefix(directory):
        return directory.rstrip("/") + "/" if directory else ""

    def list(self, directory):
        found = []
        with self._request("list", self._prefix(directory)):
            paginator = self.client.get_paginator("list_object_versions")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self._prefix(directory))
            for page in pages:
                for item in page.get("Versions", ()):
                    found.append(ObjectInfo(item["Key"], item["Size"], _aware(item["LastModified"]),
                                            version=item.get("VersionId"), latest=item.get("IsLatest", True),
                                            digest=_etag(item.get("ETag"))))
                for item in page.get("DeleteMarkers", ()):
                    found.append(ObjectInfo(item["Key"], None, _aware(item["LastModified"]),
                                            version=item.get("VersionId"), latest=item.get("IsLatest", True),
                                            delete_marker=True))
        return found

    def details(self, info):
        if info.delete_marker:
            return info
        with self._request("read the details of", info.key):
            head = self.client.head_object(**self._key(info))
        return ObjectInfo(info.key, head["ContentLength"], _aware(head["LastModified"]),
                          version=head.get("VersionId") or info.version, latest=info.latest,
                          retain_until=_aware(head.get("ObjectLockRetainUntilDate")),
                          lock_mode=head.get("ObjectLockMode"), sha256=head.get("Metadata", {}).get("sha256"),
                          digest=_etag(head.get("ETag")))

    @contextlib.contextmanager
    def open(self, info):
        with self._request("read", info.key):
            body = self.client.get_object(**self._key(info))["Body"]
        try:
            yield _Reader(self, info.key, body)
        finally:
            body.close()

    # Writing

    def upload(self, key, stream, size, sha256):
        digest = hashlib.sha256()
        # A part size that keeps within S3's 10,000 parts, whatever the object's size.
        part_size = max(self.part_size, -(-size // (MAX_PARTS * MIB)) * MIB)
        if size < part_size:
            data = _read_full(stream, size + 1)  # one byte more: a stream longer than announced is refused
            digest.update(data)
            self._check_digest(key, len(data), digest, size, sha256)
            with self._request("upload", key, uploading=True):
                response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=_md5(data),
                                                  Metadata={"sha256": sha256})
        else:
            response = self._multipart(key, stream, part_size, digest, size, sha256)
        return self.details(ObjectInfo(key, size, None, version=response.get("VersionId")))

    def _check_digest(self, key, length, digest, size, sha256):
        if length != size or digest.hexdigest() != sha256:
            raise IntegrityError("%s changed while it was copied to %s (%d bytes read, %d expected, or another "
                                 "SHA-256): nothing was stored" % (key, self.describe(), length, size), stage="vault")

    def _multipart(self, key, stream, part_size, digest, size, sha256):
        with self._request("upload", key, uploading=True):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                            Metadata={"sha256": sha256})["UploadId"]
        try:
            parts, length = self._send_parts(key, upload_id, stream, part_size, digest)
            self._check_digest(key, length, digest, size, sha256)
            with self._request("upload", key, uploading=True):
                return self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                             MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _send_parts(self, key, upload_id, stream, part_size, digest):
        """Reads and hashes parts in this thread while others send them, THREADS parts in memory at most (the
        one being read included); stops at the first failure."""
        slots = threading.Semaphore(THREADS)
        futures = []
        failures = []
        length = 0

        def finished(future):
            if not future.cancelled() and future.exception():
                failures.append(future.exception())
            slots.release()

        pool = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="lifeboat-s3")
        try:
            while True:
                slots.acquire()
                if failures:
                    raise failures[0]
                chunk = _read_full(stream, part_size)
                if not chunk:
                    break
                digest.update(chunk)
                length += len(chunk)
                future = pool.submit(self._send_part, key, upload_id, len(futures) + 1, chunk)
                del chunk  # the part's only reference is the pool's, until it is sent
                future.add_done_callback(finished)
                futures.append(future)
            return [future.result() for future in futures], length
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _send_part(self, key, upload_id, number, data):
        with self._request("upload", key, uploading=True):
            response = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                               Body=data, ContentMD5=_md5(data))
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort(self, key, upload_id):
        """Best effort: an upload the vault cannot abort now stays invisible until sweep_uploads."""
        with contextlib.suppress(VaultError), self._request("abort the upload of", key):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # The trusted side

    def remove(self, info):
        if not info.version:
            raise UsageError("removing %s from %s needs its version id" % (info.key, self.describe()))
        try:
            with self._request("delete", "%s (version %s)" % (info.key, info.version)):
                self.client.delete_object(**self._key(info))
        except VaultError:
            current = self.details(info)
            if current.retain_until and current.retain_until > datetime.datetime.now(datetime.timezone.utc):
                raise VaultError("%s (version %s) on %s is locked (%s) until %s: it can be removed after that"
                                 % (info.key, info.version, self.describe(), current.lock_mode,
                                    current.retain_until.isoformat(timespec="seconds")), stage="vault") from None
            raise

    def retain(self, info, until):
        current = self.details(info)
        if current.retain_until and current.retain_until >= until:
            return current
        mode = current.lock_mode or self._default_lock_mode()
        with self._request("extend the retention of", "%s (version %s)" % (info.key, info.version)):
            self.client.put_object_retention(**self._key(info), Retention={"Mode": mode, "RetainUntilDate": until})
        return self.details(info)

    def _default_lock_mode(self):
        if self._default_mode is None:
            rule = self._lock_rule()
            if not rule:
                raise VaultError("the bucket %s of the vault %s has no Object Lock default retention: a retention "
                                 "cannot be set on it" % (self.bucket, self.describe()), stage="vault")
            self._default_mode = rule["Mode"]
        return self._default_mode

    def sweep_uploads(self, directory, before):
        swept = []
        with self._request("list the interrupted uploads under", self._prefix(directory)):
            paginator = self.client.get_paginator("list_multipart_uploads")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self._prefix(directory))
            stale = [item for page in pages for item in page.get("Uploads", ()) if item["Initiated"] < before]
        for item in stale:
            with self._request("abort the interrupted upload of", item["Key"]):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"])
            swept.append(item["Key"])
        return swept

    def close(self):
        if self._client is not None:
            getattr(self._client, "close", lambda: None)()
            self._client = None


class _Reader:
    """A version's bytes as a binary stream; a connection lost while reading is the vault's error."""

    def __init__(self, store, key, body):
        self._store = store
        self._key = key
        self._body = body

    def read(self, size=-1):
        with self._store._request("read", self._key):
            return self._body.read(None if size is None or size < 0 else size)

    def readable(self):
        return True
