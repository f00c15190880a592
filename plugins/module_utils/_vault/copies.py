# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups as a vault holds them, read from a store's listing: complete copies, partial ones, signs of tampering.

A copy is complete when its sidecar (STEM.sha256, uploaded last) is there, parses, and names the artifact of its
own stem, which is there too with its metadata (STEM.json). What a host's credentials can still do to a locked
copy on a versioned store is visible here: a delete marker over a key, or a version written after the copy. Both
are reported as problems, and the copy read is always the first version of each key: the one the bucket's
default retention locked when it was written.
"""

from __future__ import annotations

import json
import re

from .._catalog import check_chain, check_job_name, job_of
from .._errors import BackupError, IntegrityError
from .address import host_directory, job_directory, parse_stem, stem as make_stem
from .store import SMALL_OBJECT_LIMIT

CHECKSUM_SUFFIX = ".sha256"
METADATA_SUFFIX = ".json"
_CHECKSUM_RE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\n]+)\n?$")


class Copy:
    """One attempt at copying one backup: the objects of one stem.

    artifact, metadata_object, checksum_object   the first version of each key (ObjectInfo), or None
    metadata        the parsed STEM.json of a complete copy
    sha256          the digest its sidecar records
    complete        the sidecar is there and names this stem's artifact, which is there with its metadata
    problems        sentences: what was done to its keys after it was written, why it is not complete
    """

    def __init__(self, backup_id, attempt, stem):
        self.backup_id = backup_id
        self.attempt = attempt
        self.stem = stem
        self.objects = {}  # name -> every version of that key, oldest first
        self.artifact = None
        self.metadata_object = None
        self.checksum_object = None
        self.metadata = None
        self.sha256 = None
        self.complete = False
        self.problems = []

    @property
    def newest(self):
        """When the latest of its objects was written (a partial copy's age for the sweeper)."""
        return max(info.modified for versions in self.objects.values() for info in versions)

    def all_versions(self):
        return [info for versions in self.objects.values() for info in versions]

    def describe(self):
        return {"id": self.backup_id, "stem": self.stem, "complete": self.complete, "sha256": self.sha256,
                "artifact": self.artifact.key if self.artifact else None,
                "version": self.artifact.version if self.artifact else None,
                "size": self.artifact.size if self.artifact else None,
                "retain_until": iso_or_none(self.artifact.retain_until) if self.artifact else None,
                "lock_mode": self.artifact.lock_mode if self.artifact else None,
                "problems": list(self.problems)}


def iso_or_none(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def read_host(store, host, job=None, with_details=False):
    """{job: {backup id: [Copy, ...] by attempt}} of a host on the vault: one job, or every job found there.

    with_details: ask the store for what its listing leaves out (S3: the recorded SHA-256 and the lock of each
    artifact, one request each), as verify, catalog_info and prune need; replicate only needs the listing.
    """
    if job:
        directory = job_directory(store.address, host, check_job_name(job))
    else:
        directory = host_directory(store.address, host)
    copies = {}
    for info in store.list(directory):
        parent, name = info.key.rsplit("/", 1)
        job_name = parent.rsplit("/", 1)[-1]
        parsed = parse_stem(name)
        if parsed is None or parent != job_directory(store.address, host, job_name) or job_of(parsed[0]) != job_name:
            continue  # not a copy's file in a job's own directory
        backup_id, attempt = parsed
        attempts = copies.setdefault(job_name, {}).setdefault(backup_id, {})
        copy = attempts.setdefault(attempt, Copy(backup_id, attempt, make_stem(backup_id, attempt)))
        copy.objects.setdefault(name, []).append(info)
    return {job_name: {backup_id: [_settle(store, attempts[attempt], with_details) for attempt in sorted(attempts)]
                       for backup_id, attempts in backups.items()}
            for job_name, backups in copies.items()}


def _settle(store, copy, with_details):
    for versions in copy.objects.values():
        # Oldest first: times have whole seconds on S3, so within a second the listing's order (newest first)
        # decides, reversed; the sort is stable.
        versions.reverse()
        versions.sort(key=lambda info: info.modified)
    _report_rewrites(copy)
    checksum = _first(copy, copy.stem + CHECKSUM_SUFFIX)
    metadata = _first(copy, copy.stem + METADATA_SUFFIX)
    if checksum is None:
        copy.problems.append("no sidecar %s%s: the upload of this copy did not finish" % (copy.stem, CHECKSUM_SUFFIX))
        return copy
    try:
        copy.sha256, artifact_name = parse_checksum(store.read_small(checksum))
        artifact = _first(copy, artifact_name)
        if parse_stem(artifact_name) != (copy.backup_id, copy.attempt) or artifact_name.endswith(
                (CHECKSUM_SUFFIX, METADATA_SUFFIX)):
            raise IntegrityError("its sidecar names %r, not an artifact of %s" % (artifact_name, copy.stem))
        if artifact is None:
            raise IntegrityError("its sidecar names %s, which is not there" % artifact_name)
        if metadata is None:
            raise IntegrityError("its metadata %s%s is not there" % (copy.stem, METADATA_SUFFIX))
        copy.metadata = parse_metadata(store.read_small(metadata, SMALL_OBJECT_LIMIT))
        if copy.metadata.get("id") != copy.backup_id or copy.metadata.get("size") != artifact.size:
            raise IntegrityError("its metadata describes %s of %s bytes, the artifact is %s of %s bytes"
                                 % (copy.metadata.get("id"), copy.metadata.get("size"), copy.backup_id, artifact.size))
        check_chain(copy.metadata)
        copy.artifact = store.details(artifact) if with_details else artifact
        if copy.artifact.sha256 not in (None, copy.sha256):
            raise IntegrityError("the store recorded SHA-256 %s with the artifact, its sidecar %s"
                                 % (copy.artifact.sha256, copy.sha256))
    except BackupError as exc:
        copy.problems.append("%s cannot be used: %s" % (copy.stem, exc.msg))
        return copy
    copy.metadata_object, copy.checksum_object = metadata, checksum
    copy.complete = True
    return copy


def _first(copy, name):
    """The first version of a key that is not a delete marker: what was written when the copy was made."""
    for info in copy.objects.get(name, ()):
        if not info.delete_marker:
            return info
    return None


def _report_rewrites(copy):
    for name, versions in sorted(copy.objects.items()):
        markers = [info for info in versions if info.delete_marker]
        written = [info for info in versions if not info.delete_marker]
        if markers:
            copy.problems.append("%s was deleted %d time(s) after it was written (a delete marker hides it); the "
                                 "version written first is still there and is the one used" % (name, len(markers)))
        if len(written) > 1:
            copy.problems.append("%s was written %d times: a version over the copy is a sign of tampering; the "
                                 "version written first is the one used" % (name, len(written)))


def check_digest(copy, actual):
    """The SHA-256 of what was read of a copy must be its sidecar's."""
    if actual != copy.sha256:
        raise IntegrityError("%s reads back with SHA-256 %s, its sidecar records %s: the copy is damaged"
                             % (copy.artifact.key, actual, copy.sha256), stage="vault")


def parse_checksum(data):
    """(digest, artifact name) of a sidecar's bytes in `sha256sum` format."""
    try:
        match = _CHECKSUM_RE.match(data.decode("utf-8"))
    except UnicodeDecodeError:
        match = None
    if not match:
        raise IntegrityError("the sidecar is not in sha256sum format")
    return match.group(1), match.group(2)


def parse_metadata(data):
    try:
        metadata = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise IntegrityError("the metadata is not valid JSON: %s" % exc)
    if not isinstance(metadata, dict):
        raise IntegrityError("the metadata is not a JSON object")
    return metadata


def usable(attempts):
    """The copy to read of one backup's attempts: the first complete one, or None."""
    for copy in attempts:
        if copy.complete:
            return copy
    return None
