# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-disk catalog: job directories, backup ids, sidecars and the writer lock.

Layout of a backup directory:
    <backup_dir>/.lock                  one writer at a time (flock: a dead holder releases it)
    <backup_dir>/<job>/<id>.<suffix>    the artifact
    <backup_dir>/<job>/<id>.sha256      `sha256sum -c` format
    <backup_dir>/<job>/<id>.json        metadata, written last: a backup exists once this file does
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import re
import socket
import time

from ._fileio import write_atomic
from ._errors import IntegrityError, LockedError, NotFoundError, StorageError, UsageError

DEFAULT_BACKUP_DIR = "/var/backups/lifeboat"
LOCK_NAME = ".lock"
METADATA_SUFFIX = ".json"
CHECKSUM_SUFFIX = ".sha256"
FORMAT_VERSION = 1
_JOB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_job_name(job):
    if not job or not _JOB_RE.match(job):
        raise UsageError("job %r is not a valid name: use letters, digits, '_' and '-' (at most 64 characters, "
                         "starting with a letter or digit)" % (job,))
    return job


def ensure_dir(path):
    """Create a catalog directory 0700 (and its missing parents); tighten an existing one."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise StorageError("cannot create the backup directory %s: %s" % (path, exc.strerror), stage="prepare")
    return path


def job_dir(backup_dir, job):
    return os.path.join(backup_dir, check_job_name(job))


def new_backup_id(backup_dir, job, now):
    """`<job>-<YYYYMMDDTHHMMSSZ>`, with a -N suffix when that second is taken; call under the lock."""
    base = "%s-%s" % (job, now.strftime("%Y%m%dT%H%M%SZ"))
    directory = job_dir(backup_dir, job)
    taken = set(os.listdir(directory)) if os.path.isdir(directory) else set()
    candidate, number = base, 1
    while any(name == candidate + METADATA_SUFFIX or name.startswith(candidate + ".") for name in taken):
        number += 1
        candidate = "%s-%d" % (base, number)
    return candidate


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_utc(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_iso(moment):
    """Local wall time with its UTC offset: retention periods follow the timezone the backup was made in."""
    return moment.astimezone().isoformat(timespec="seconds")


class CatalogLock:
    """Exclusive lock on <backup_dir>/.lock; the holder's pid and host are written in for the error message."""

    def __init__(self, backup_dir, timeout=0.0):
        self.path = os.path.join(backup_dir, LOCK_NAME)
        self.timeout = timeout
        self._fd = None

    def __enter__(self):
        ensure_dir(os.path.dirname(self.path))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                    os.close(fd)
                    raise LockedError("the backup directory %s is locked by another run (%s); wait for it to "
                                      "finish or raise lock_timeout" % (os.path.dirname(self.path), holder),
                                      stage="lock")
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("pid %d on %s since %s" % (os.getpid(), socket.gethostname(), iso_utc(utc_now())))
                  .encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None
        return False


def checksum_line(sha256, artifact_name):
    """One line in `sha256sum` format: two spaces between digest and file name."""
    return "%s  %s\n" % (sha256, artifact_name)


def write_sidecars(artifact_path, metadata):
    """Checksum first, metadata last: the metadata file is what makes the backup part of the catalog."""
    base = strip_artifact_suffix(artifact_path)
    write_atomic(base + CHECKSUM_SUFFIX, checksum_line(metadata["sha256"], os.path.basename(artifact_path)).encode())
    write_metadata(base + METADATA_SUFFIX, metadata)


def write_metadata(path, metadata):
    write_atomic(path, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def strip_artifact_suffix(artifact_path):
    """<dir>/<id>.tar.zst.age -> <dir>/<id>; ids contain no dot (job names may not)."""
    directory, name = os.path.split(artifact_path)
    return os.path.join(directory, name.split(".", 1)[0] if "." in name else name)


def read_metadata(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise NotFoundError("no metadata at %s" % path)
    except ValueError as exc:
        raise IntegrityError("the metadata file %s is not valid JSON: %s" % (path, exc))


def read_checksum(path):
    """Return (digest, file name) from a `sha256sum` line."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            line = handle.readline()
    except FileNotFoundError:
        raise NotFoundError("the checksum sidecar %s is missing" % path)
    match = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line.rstrip("\n"))
    if not match:
        raise IntegrityError("the checksum sidecar %s is not in sha256sum format" % path)
    return match.group(1), match.group(2)


def list_metadata(backup_dir, job=None):
    """Metadata of every backup (or of one job), newest first."""
    if not os.path.isdir(backup_dir):
        return []
    jobs = [job] if job else sorted(name for name in os.listdir(backup_dir)
                                    if not name.startswith(".") and os.path.isdir(os.path.join(backup_dir, name)))
    found = []
    for name in jobs:
        directory = os.path.join(backup_dir, name)
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            if entry.endswith(METADATA_SUFFIX) and not entry.startswith("."):
                metadata = read_metadata(os.path.join(directory, entry))
                metadata["_metadata_path"] = os.path.join(directory, entry)
                found.append(metadata)
    found.sort(key=lambda meta: (meta.get("created_at", ""), meta.get("id", "")), reverse=True)
    return found


def find_backup(backup_dir, backup_id):
    """Metadata of one backup by id; the job is the id's prefix, so look where it must be."""
    for metadata in list_metadata(backup_dir):
        if metadata.get("id") == backup_id:
            return metadata
    raise NotFoundError("no backup with id %s in %s" % (backup_id, backup_dir))


def series_key(metadata):
    """What one backup series of a job is: its files, or one database.

    A job that dumps a database and archives files each night makes two backups a day; retention and
    health judge each series on its own, or keep_daily would keep the archive and drop the dump of the
    same day, and a dump failing every night would hide behind a fresh archive.
    """
    if metadata.get("kind") == "database":
        return "database %s %s" % (metadata.get("engine"), metadata.get("database"))
    return metadata.get("kind") or "files"


def artifact_path(metadata):
    return os.path.join(os.path.dirname(metadata["_metadata_path"]), metadata["artifact"])


def public(metadata):
    """Metadata as returned to callers: without the catalog's private bookkeeping keys."""
    return {key: value for key, value in metadata.items() if not key.startswith("_")}
