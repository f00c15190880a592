# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applying a retention policy to a catalog, and removing what it does not keep without ever losing a backup.

Each series of each job (its files, each of its databases: _catalog.series_key) is judged on its own by
_retention.apply_policy, with the backup's local_time (and its offset) and verification state.

Series of incremental backups keep their chains whole (_retention: a kept backup's chain is kept). Backups are
removed newest first, so a chain removed whole loses its newest backups before the ones they need: a prune
interrupted half way leaves a chain's older part, never a backup without one it needs.

Removal order of one backup, under the catalog lock: the artifact, fsync of the directory, then the ``.sha256``
and the ``.json``, fsync again. A kill at any moment leaves either a complete backup or sidecars
without their artifact (an orphan) that the next prune removes.

Leftovers (see _catalog.scan) are cleaned in the same run:
- orphan sidecars at once: without their artifact they hold nothing that could be restored;
- artifacts without metadata and temporary files only when older than an hour (_catalog.LEFTOVER_AGE).
  Every lifeboat writer holds the lock, so under the lock such files are leftovers of a killed run;
  the hour also protects a backup copied in by hand (cp writes the artifact before its json) and
  keeps the data of a killed run for a while in case an operator wants it back;
- unreadable metadata never: that needs a human.
Only regular files in <backup_dir>/<job>/ whose names look like catalog files are ever removed.
Check mode reads without the lock, so a run in progress may change the outcome it predicts.
"""

from __future__ import annotations

import os

from . import _catalog
from ._fileio import fsync_dir
from ._errors import StorageError
from ._retention import Candidate, apply_policy


def candidate(metadata):
    return Candidate(id=metadata["id"], time=_catalog.backup_time(metadata), tags=tuple(metadata.get("tags") or ()),
                     state=_catalog.verification_state(metadata), needs=_catalog.chain_needs(metadata))


def prune(backup_dir, policy, job=None, check_mode=False, lock_timeout=0.0, now=None):
    """Apply policy to every job (or one) of backup_dir; returns the result the module and the command report."""
    policy.validate()
    now = now or _catalog.utc_now()
    if check_mode or not os.path.isdir(backup_dir):
        return _run(backup_dir, policy, job, check_mode, now)
    with _catalog.CatalogLock(backup_dir, timeout=lock_timeout):
        return _run(backup_dir, policy, job, False, now)


def decide(backups, policy, now):
    """apply_policy on each series of one job; the union of the decisions."""
    series = {}
    for meta in backups:
        series.setdefault(_catalog.series_key(meta), []).append(candidate(meta))
    kept, removed = [], []
    for members in series.values():
        decision = apply_policy(members, policy, now=now)
        kept.extend(decision.kept)
        removed.extend(decision.removed)
    return kept, removed


def _run(backup_dir, policy, job, check_mode, now):
    scans = _catalog.scan_catalog(backup_dir, job, now)
    jobs, times = {}, {}
    for scan in scans:
        kept, removed = decide(scan.backups, policy, now)
        times.update((meta["id"], _catalog.backup_time(meta)) for meta in scan.backups)
        cleaned = [_cleaned(leftover) for leftover in scan.leftovers if leftover["removable"]]
        if not check_mode:
            by_id = {meta["id"]: meta for meta in scan.backups}
            for backup_id in removed:
                remove_backup(scan, by_id[backup_id])
            for leftover in scan.leftovers:
                if leftover["removable"]:
                    remove_files(scan, leftover["files"])
        jobs[scan.job] = {"kept": kept, "removed": removed, "cleaned": cleaned}
    return _result(backup_dir, policy, jobs, times, check_mode)


def _cleaned(leftover):
    return {key: leftover[key] for key in ("job", "kind", "id", "paths", "age_s")}


def remove_backup(scan, metadata):
    """Artifact first and made durable, sidecars last: an interruption leaves an orphan, never a backup without data."""
    artifact = metadata["artifact"]
    remove_files(scan, [artifact])
    backup_id = metadata["id"]
    remove_files(scan, [backup_id + _catalog.CHECKSUM_SUFFIX, backup_id + _catalog.METADATA_SUFFIX])


def remove_files(scan, names):
    """Unlink catalog files of one job directory in the given order, then fsync the directory."""
    for name in names:
        if not _catalog.is_catalog_file(scan.job, name):
            raise StorageError("refusing to remove %s from %s: not a catalog file" % (name, scan.directory),
                               stage="prune")
        try:
            os.unlink(os.path.join(scan.directory, name))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError("cannot remove %s: %s; nothing else was removed after it, run prune again once "
                               "fixed" % (os.path.join(scan.directory, name), exc.strerror), stage="prune")
    fsync_dir(scan.directory)


def _result(backup_dir, policy, jobs, times, check_mode):
    def newest_first(ids):
        return sorted(ids, key=lambda backup_id: (times[backup_id], backup_id), reverse=True)

    kept_entries = {entry["id"]: entry for job in jobs.values() for entry in job["kept"]}
    kept = [kept_entries[backup_id] for backup_id in newest_first(kept_entries)]
    removed = newest_first([backup_id for job in jobs.values() for backup_id in job["removed"]])
    cleaned = [entry for job in jobs.values() for entry in job["cleaned"]]
    changed = bool(removed or cleaned)
    return {"changed": changed, "kept": kept, "removed": removed, "cleaned": cleaned, "jobs": jobs,
            "diff": {"before_header": backup_dir, "after_header": backup_dir,
                     "before": "".join(backup_id + "\n" for backup_id in newest_first(times)),
                     "after": "".join(entry["id"] + "\n" for entry in kept)},
            "msg": _message(policy, len(kept), removed, cleaned, check_mode)}


def _message(policy, kept, removed, cleaned, check_mode):
    verb = "would remove" if check_mode else "removed"
    parts = []
    if policy.is_empty():
        parts.append("no retention rule is set (keep_last, keep_daily, keep_within, keep_tags, ...): every backup "
                     "is kept")
    parts.append("kept %d backup(s), %s %d" % (kept, verb, len(removed)))
    if cleaned:
        parts.append("%s %d leftover(s) of interrupted runs" % (verb, len(cleaned)))
    return "; ".join(parts)
