# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where things live in a catalog: the backup directory, job directories, backup ids and the names of their files.

    <backup_dir>/.lock                  one writer at a time (flock: a dead holder releases it)
    <backup_dir>/.restores/files-*.json      the journal of a file restore in progress: what it swaps
    <backup_dir>/.restores/database-*.json   the record of a database restore in progress: its safety backup
    <backup_dir>/.tmp/                  private scratch space of restores (0700; a dot: never a job)
    <backup_dir>/.incremental/<job>.json   the state of the job's incremental chain (_incremental.py): host only
    <backup_dir>/<job>/<id>.<suffix>    the artifact
    <backup_dir>/<job>/<id>.sha256      `sha256sum -c` format
    <backup_dir>/<job>/<id>.json        metadata, written last: a backup exists once this file does
"""

from __future__ import annotations

import datetime
import os
import re

from .._errors import IntegrityError, StorageError, UsageError
from .._fileio import TEMP_MARKER

DEFAULT_BACKUP_DIR = "/var/backups/lifeboat"
LOCK_NAME = ".lock"
RESTORES_DIR = ".restores"
FILES_JOURNAL_PREFIX = "files-"  # a file restore's journal; database restores' records are "database-*" (journal.py)
PRIVATE_NAME = ".tmp"
METADATA_SUFFIX = ".json"
CHECKSUM_SUFFIX = ".sha256"
FORMAT_VERSION = 1
_JOB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ID_PATTERN = r"%s-[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?"
_SUFFIX_PATTERN = r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*"
SIDECAR_SUFFIXES = (CHECKSUM_SUFFIX, METADATA_SUFFIX)


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


def private_dir(backup_dir):
    """<backup_dir>/.tmp, 0700: scratch space that job names, which never start with a dot, cannot collide with."""
    return ensure_dir(os.path.join(backup_dir, PRIVATE_NAME))


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


def strip_artifact_suffix(artifact_path):
    """<dir>/<id>.tar.zst.age -> <dir>/<id>; ids contain no dot (job names may not)."""
    directory, name = os.path.split(artifact_path)
    return os.path.join(directory, name.split(".", 1)[0] if "." in name else name)


def series_key(metadata):
    """What one backup series of a job is: its files, or one database.

    A job that dumps a database and archives files each night makes two backups a day; retention and
    health judge each series on its own, or keep_daily would keep the archive and drop the dump of the
    same day, and a dump failing every night would hide behind a fresh archive.
    """
    if metadata.get("kind") == "database":
        return "database %s %s" % (metadata.get("engine"), metadata.get("database"))
    return metadata.get("kind") or "files"


def job_of(backup_id):
    """The job a backup id belongs to (its prefix), or None when it is not an id."""
    match = re.match("^%s$" % (_ID_PATTERN % "(?P<job>.+)"), backup_id or "")
    return match.group("job") if match and _JOB_RE.match(match.group("job")) else None


def check_artifact_name(job, backup_id, artifact):
    """An artifact name from metadata must be <id>.<suffix> of that job: no directory, no '..', not a sidecar."""
    match = name_patterns(job)[0].match(artifact) if isinstance(artifact, str) and isinstance(job, str) else None
    if not match or match.group("id") != backup_id or "." + match.group("suffix") in SIDECAR_SUFFIXES:
        raise IntegrityError("it names an artifact that cannot belong to %s: %r" % (backup_id, artifact))
    return artifact


def artifact_path(metadata):
    """The artifact beside the metadata; a name that could point anywhere else is refused."""
    try:
        name = check_artifact_name(metadata.get("job"), metadata.get("id"), metadata.get("artifact"))
    except IntegrityError as exc:
        raise IntegrityError("the metadata %s cannot be trusted: %s; refusing to use it"
                             % (metadata["_metadata_path"], exc.msg), stage="catalog") from None
    return os.path.join(os.path.dirname(metadata["_metadata_path"]), name)


def public(metadata):
    """Metadata as returned to callers: without the catalog's private bookkeeping keys."""
    return {key: value for key, value in metadata.items() if not key.startswith("_")}


def name_patterns(job):
    """The patterns of a job's catalog files (<id>.<suffix>) and of their temporary files."""
    catalog = r"(?P<id>%s)\.(?P<suffix>%s)" % (_ID_PATTERN % re.escape(job), _SUFFIX_PATTERN)
    return re.compile(r"^%s$" % catalog), re.compile(r"^\.%s%s[A-Za-z0-9_]+$" % (catalog, re.escape(TEMP_MARKER)))


def is_catalog_file(job, name):
    """True for the names a catalog holds in the directory of job: sidecars, artifacts, temporary files."""
    return any(pattern.match(name) for pattern in name_patterns(job))
