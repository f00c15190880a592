# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a catalog without changing it: backups by job or id, and the leftovers beside them.

The scan looks only at regular files in <backup_dir>/<job>/ whose names look like catalog files:
``<job>-<YYYYMMDDTHHMMSSZ>[-N].<suffix>`` (artifact, ``.sha256``, ``.json``) and the temporary files
of _fileio (``.<name>.tmp-*``). Anything else is neither reported nor ever removed. Each id is then:

backup          a readable ``.json`` whose artifact exists (a missing ``.sha256`` is reported as damage)
orphan          sidecars without their artifact: a prune or a removal was interrupted; holds no data
no_metadata     an artifact without ``.json``: a run was killed before it wrote its metadata
bad_metadata    a ``.json`` that cannot be read or names an impossible artifact; never removed
temp_file       a temporary file of a killed run

Lookups (list_metadata, find_backup, locate) see only backups: one broken file is reported by health and
stands in nobody's way; asked for by its id, it is refused with what is wrong with it.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime

from .._errors import BackupError, IntegrityError, NotFoundError, UsageError
from .layout import (CHECKSUM_SUFFIX, FILES_JOURNAL_PREFIX, METADATA_SUFFIX, RESTORES_DIR, artifact_path, check_artifact_name,
                     check_job_name, job_of, name_patterns, strip_artifact_suffix, utc_now)
from .lock import lock_holder
from .sidecars import read_metadata

LEFTOVER_AGE = 3600  # seconds: younger artifacts without metadata and temporary files may belong to a live writer
STATES = ("verified", "unverified", "failed")


def parse_time(text):
    """An aware datetime from ISO 8601; ``Z`` is UTC (fromisoformat accepts it only from Python 3.11)."""
    if not isinstance(text, str):
        raise ValueError("not a time: %r" % (text,))
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.utcoffset() is None:
        raise ValueError("%s has no UTC offset" % text)
    return moment


def backup_time(metadata):
    """The local wall time with its offset (what retention periods use); created_at for older metadata."""
    return parse_time(metadata.get("local_time") or metadata["created_at"])


def verification_state(metadata):
    state = (metadata.get("verification") or {}).get("state")
    return state if state in STATES else "unverified"


def verification_label(metadata):
    """The state with its level and how it was reached, as a listing shows it: 'verified full (read-back)',
    'failed checksum (verify)', 'unverified'."""
    verification = metadata.get("verification") or {}
    state = verification_state(metadata)
    if state == "unverified":
        return state
    label = "%s %s" % (state, verification.get("level", ""))
    return label + " (%s)" % verification["method"] if verification.get("method") else label


class JobScan:
    """One job directory: its backups (metadata, newest first), leftovers and backups without checksum."""

    def __init__(self, job, directory):
        self.job = job
        self.directory = directory
        self.backups = []
        self.leftovers = []
        self.missing_checksum = []


def scan_catalog(backup_dir, job=None, now=None):
    """JobScan of every job directory (or of one job), sorted by job name; reads, never writes."""
    now = now or utc_now()
    if job is not None:
        names = [check_job_name(job)]
    elif os.path.isdir(backup_dir):
        names = sorted(name for name in os.listdir(backup_dir) if _is_job_dir(backup_dir, name))
    else:
        names = []
    return [_scan_job(name, os.path.join(backup_dir, name), now) for name in names]


def _is_job_dir(backup_dir, name):
    try:
        check_job_name(name)
    except UsageError:
        return False
    return os.path.isdir(os.path.join(backup_dir, name))


def _regular_files(directory):
    """Name -> stat of the regular files of a directory (symbolic links are not catalog files)."""
    found = {}
    if not os.path.isdir(directory):
        return found
    for name in os.listdir(directory):
        try:
            st = os.lstat(os.path.join(directory, name))
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            found[name] = st
    return found


def _scan_job(job, directory, now):
    scan = JobScan(job, directory)
    catalog_re, temp_re = name_patterns(job)
    files = _regular_files(directory)
    groups = {}
    for name in sorted(files):
        if temp_re.match(name):
            scan.leftovers.append(_leftover(scan, "temp_file", None, [name], files, now))
            continue
        match = catalog_re.match(name)
        if match:
            groups.setdefault(match.group("id"), []).append(name)
    for backup_id, names in groups.items():
        _classify(scan, backup_id, names, files, now)
    scan.backups.sort(key=lambda meta: (parse_time(meta["created_at"]), meta["id"]), reverse=True)
    scan.leftovers.sort(key=lambda leftover: leftover["files"][0])
    return scan


def _classify(scan, backup_id, names, files, now):
    json_name = backup_id + METADATA_SUFFIX
    sha_name = backup_id + CHECKSUM_SUFFIX
    artifacts = [name for name in names if name not in (json_name, sha_name)]
    sidecars = [name for name in (sha_name, json_name) if name in names]
    if json_name not in names:
        if artifacts:
            scan.leftovers.append(_leftover(scan, "no_metadata", backup_id, artifacts + sidecars, files, now))
        else:
            scan.leftovers.append(_leftover(scan, "orphan", backup_id, sidecars, files, now))
        return
    try:
        metadata = _read_valid_metadata(os.path.join(scan.directory, json_name), scan.job, backup_id)
    except BackupError as exc:
        leftover = _leftover(scan, "bad_metadata", backup_id, artifacts + sidecars, files, now)
        leftover["problem"] = exc.msg
        scan.leftovers.append(leftover)
        return
    strays = [name for name in artifacts if name != metadata["artifact"]]
    if strays:
        scan.leftovers.append(_leftover(scan, "no_metadata", backup_id, strays, files, now))
    if metadata["artifact"] not in artifacts:
        scan.leftovers.append(_leftover(scan, "orphan", backup_id, sidecars, files, now))
        return
    metadata["_metadata_path"] = os.path.join(scan.directory, json_name)
    scan.backups.append(metadata)
    if sha_name not in names:
        scan.missing_checksum.append(backup_id)


def _read_valid_metadata(path, job, backup_id):
    """Metadata that retention and prune can trust: its id, times and artifact name are checked."""
    metadata = read_metadata(path)
    if not isinstance(metadata, dict) or metadata.get("id") != backup_id:
        raise IntegrityError("its id is not %s" % backup_id)
    check_artifact_name(job, backup_id, metadata.get("artifact"))
    check_chain(metadata)
    try:
        parse_time(metadata.get("created_at"))
        backup_time(metadata)
    except ValueError as exc:
        raise IntegrityError("its created_at or local_time is not an ISO time with offset (%s)" % exc)
    return metadata


def check_chain(metadata):
    """An incremental backup's chain, which retention keeps whole, must be a list of ids ending with its own."""
    chain = metadata.get("chain")
    if chain is None:
        return
    if (not isinstance(chain, list) or not chain or chain[-1] != metadata["id"]
            or not all(isinstance(member, str) for member in chain)):
        raise IntegrityError("its chain is not a list of backup ids ending with its own: %r" % (chain,))


def chain_needs(metadata):
    """The ids of the backups a backup needs to be restored (its chain before it, the full backup first)."""
    return tuple((metadata.get("chain") or [])[:-1])


def _leftover(scan, kind, backup_id, names, files, now):
    """A set of files that is not a backup; age is that of its youngest file, removable says if prune may clean it."""
    age = int(min(now.timestamp() - files[name].st_mtime for name in names))
    if kind == "orphan":
        removable = True  # sidecars without their artifact hold no data that could be restored
    elif kind in ("no_metadata", "temp_file"):
        removable = age >= LEFTOVER_AGE
    else:
        removable = False
    return {"job": scan.job, "kind": kind, "id": backup_id, "files": names,
            "paths": [os.path.join(scan.directory, name) for name in names], "age_s": age, "removable": removable}


def restore_journals(backup_dir):
    """The journals of restores from this catalog that were killed: [{"path", "journal" or "problem"}].

    A running restore holds the catalog lock for its whole run, so a journal whose owner does not hold the
    lock now belongs to a restore that was killed.
    """
    directory = os.path.join(backup_dir, RESTORES_DIR)
    names = sorted(name for name in os.listdir(directory)
                   if name.startswith(FILES_JOURNAL_PREFIX) and name.endswith(METADATA_SUFFIX)) \
        if os.path.isdir(directory) else []
    holder = lock_holder(backup_dir) if names else None
    found = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            journal = read_metadata(path)
            if not isinstance(journal, dict) or not isinstance(journal.get("units"), list):
                raise IntegrityError("the restore journal %s is not one lifeboat wrote" % path)
        except BackupError as exc:
            found.append({"path": path, "problem": exc.msg})
            continue
        if holder is None or not holder.startswith("%s since" % journal.get("owner")):
            found.append({"path": path, "journal": journal})
    return found


def list_metadata(backup_dir, job=None):
    """Metadata of every backup (or of one job), newest first; what scan_catalog does not trust is left out."""
    found = [meta for scan in scan_catalog(backup_dir, job) for meta in scan.backups]
    found.sort(key=lambda meta: (parse_time(meta["created_at"]), meta["id"]), reverse=True)
    return found


_UNUSABLE = {
    "bad_metadata": "backup %(id)s cannot be used: its metadata cannot be trusted (%(problem)s); lifeboat health "
                    "lists it: repair the metadata or remove its files by hand",
    "orphan": "backup %(id)s has metadata but its artifact is missing from %(directory)s",
    "no_metadata": "backup %(id)s has no metadata: the run that made it was killed before it finished",
}


def find_backup(backup_dir, backup_id):
    """Metadata of one backup by id; the job is the id's prefix, so look where it must be.

    Only that backup's own files are read: a broken file of another backup does not stand in the way.
    """
    job = job_of(backup_id)
    if job is not None and os.path.isdir(os.path.join(backup_dir, job)):
        scan = _scan_job(job, os.path.join(backup_dir, job), utc_now())
        for metadata in scan.backups:
            if metadata["id"] == backup_id:
                return metadata
        for leftover in scan.leftovers:
            if leftover["id"] == backup_id:
                error = IntegrityError if leftover["kind"] == "bad_metadata" else NotFoundError
                raise error(_UNUSABLE[leftover["kind"]] % dict(leftover, directory=scan.directory), stage="catalog")
    raise NotFoundError("no backup with id %s in %s" % (backup_id, backup_dir))


def locate(backup_dir=None, backup_id=None, path=None):
    """Return (artifact path, metadata or None) from a path or a backup_dir + id."""
    if path:
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            raise NotFoundError("artifact %s does not exist" % path)
        meta_path = strip_artifact_suffix(path) + METADATA_SUFFIX
        if not os.path.isfile(meta_path):
            return path, None
        backup_id = os.path.basename(strip_artifact_suffix(path))
        try:
            metadata = _read_valid_metadata(meta_path, job_of(backup_id), backup_id)
            if metadata["artifact"] != os.path.basename(path):
                raise IntegrityError("it describes %s, not %s" % (metadata["artifact"], os.path.basename(path)))
        except BackupError as exc:
            raise IntegrityError("the metadata %s beside the artifact cannot be trusted: %s; repair it or move it "
                                 "away to restore the artifact without it" % (meta_path, exc.msg),
                                 stage="catalog") from None
        metadata["_metadata_path"] = meta_path
        return path, metadata
    if not backup_dir or not backup_id:
        raise UsageError("name the backup with path, or with backup_dir and id")
    metadata = find_backup(backup_dir, backup_id)
    return artifact_path(metadata), metadata
