# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication: every local backup of a job that a vault lacks is copied there, newest first, checked, recorded.

The backups an incremental backup needs go before it, oldest first (its chain's full backup first): a copy is of use
only with the copies of its chain, so a replication interrupted at any point leaves each chain a whole prefix.

A copy is the artifact, then its metadata, then its sidecar: it counts only once the sidecar is there and names
the artifact (copies.py). Each copy is read back from the vault's listing before it is recorded in the local
metadata (vaults: {name: {...}}). Nothing here ever deletes on a vault: what an interrupted upload left stays
for the trusted side; the next run finishes the copy, under a fresh stem where names cannot be written twice.
The catalog lock is held only to record a copy, never for an upload: a backup or a prune need not wait for a
slow link. A backup pruned while its copy is being sent keeps its copy (the file stays open) and gets no record.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

from .. import _catalog
from .._errors import BackupError, IntegrityError, StorageError, VaultError
from .._fileio import open_nofollow
from .address import stem as make_stem
from .copies import iso_or_none, read_host, usable
from .state import record_outcome

# Local bookkeeping that changes after a backup is made; the copy on the vault holds what the backup was.
LOCAL_ONLY_KEYS = ("vaults", "verification")


def vault_metadata(metadata):
    """The bytes of a backup's metadata as the vault keeps them."""
    document = {key: value for key, value in _catalog.public(metadata).items() if key not in LOCAL_ONLY_KEYS}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def replicate(backup_dir, job, vaults, check_mode=False, lock_timeout=600.0):
    """Copy what each vault lacks of the job's local backups; one vault failing does not stop the others.

    Returns {"changed", "vaults": [{"vault", "host", "sent", "recorded", "present", "pruned", "failed"}], "msg"}
    (pruned: backups removed locally before their upload began); when a vault failed, raises VaultError with that
    result but msg, which its message holds with what failed.
    """
    _catalog.check_job_name(job)
    backups = send_order(_catalog.list_metadata(backup_dir, job))
    reports = []
    for vault in vaults:
        report = _replicate_to(vault, backup_dir, job, backups, check_mode, lock_timeout)
        if not check_mode:
            record_outcome(backup_dir, job, vault.name, report["failed"], lock_timeout)
        reports.append(report)
    result = {"changed": any(report["sent"] or report["recorded"] for report in reports), "vaults": reports}
    failed = [report for report in reports if report["failed"]]
    if failed:
        raise VaultError("%s (%s)" % ("; ".join(report["failed"] for report in failed),
                                      _message(job, reports, check_mode)), stage="replicate", result=result)
    return dict(result, msg=_message(job, reports, check_mode))


def send_order(backups):
    """Newest first (a backlog's newest backup leaves first), each backup after the ones of its chain it needs."""
    by_id = {metadata["id"]: metadata for metadata in backups}
    ordered, placed = [], set()
    for metadata in backups:
        for backup_id in _catalog.chain_needs(metadata) + (metadata["id"],):
            if backup_id in by_id and backup_id not in placed:
                placed.add(backup_id)
                ordered.append(by_id[backup_id])
    return ordered


def _replicate_to(vault, backup_dir, job, backups, check_mode, lock_timeout):
    report = {"vault": vault.name, "host": vault.host, "sent": [], "recorded": [], "present": [], "pruned": [],
              "failed": None}
    try:
        vault.store.check(write=not check_mode)
        on_vault = read_host(vault.store, vault.host, job).get(job, {})
        for metadata in backups:
            attempts = on_vault.get(metadata["id"], [])
            copy = usable(attempts)
            if copy is not None and copy.sha256 == metadata["sha256"]:
                report["present"].append(metadata["id"])
            elif check_mode:
                report["sent"].append(metadata["id"])
                continue
            else:
                copy = _send(vault, job, metadata, attempts)
                if copy is None:
                    report["pruned"].append(metadata["id"])
                    continue
                report["sent"].append(metadata["id"])
            if _record(backup_dir, metadata, vault, copy, check_mode, lock_timeout):
                report["recorded"].append(metadata["id"])
    except BackupError as exc:
        report["failed"] = "%s: %s" % (vault.describe(), exc.msg)
    return report


def _send(vault, job, metadata, attempts):
    """Upload one backup (artifact, metadata, sidecar last) and return the complete Copy read back; None when the
    backup was pruned locally before its upload began."""
    store = vault.store
    backup_id, sha256 = metadata["id"], metadata["sha256"]
    suffix = metadata["artifact"][len(backup_id) + 1:]
    attempt = 1 if store.reusable_names else max([copy.attempt for copy in attempts] + [0]) + 1
    stem = make_stem(backup_id, attempt)
    earlier = next((copy for copy in attempts if copy.attempt == attempt), None)
    directory = vault.directory(job)
    artifact_name = "%s.%s" % (stem, suffix)
    path = _catalog.artifact_path(metadata)
    try:
        handle = open_nofollow(path)
    except FileNotFoundError:
        return None  # pruned since the catalog was read: there is nothing left to copy
    except OSError as exc:
        raise StorageError("cannot read %s: %s" % (path, exc.strerror), stage="replicate")
    with handle:  # held open: a prune from now on cannot take the bytes away mid-upload
        if not _holds(store, earlier, artifact_name, metadata["size"], sha256):
            store.upload(directory + "/" + artifact_name, handle, metadata["size"], sha256)
    for name, data in ((stem + _catalog.METADATA_SUFFIX, vault_metadata(metadata)),
                       (stem + _catalog.CHECKSUM_SUFFIX, _catalog.checksum_line(sha256, artifact_name).encode())):
        if not _holds_bytes(store, earlier, name, data):
            store.upload(directory + "/" + name, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())
    copy = usable(read_host(store, vault.host, job, with_details=True).get(job, {}).get(backup_id, []))
    if copy is None or copy.sha256 != sha256 or copy.artifact.size != metadata["size"]:
        raise IntegrityError("the copy of %s does not read back complete from the vault after its upload"
                             % backup_id, stage="replicate")
    return copy


def _earlier_version(earlier, name, size):
    """The one version of name an earlier attempt stored with this size (a run killed before the sidecar), or None:
    a key written more than once is never taken for the copy."""
    written = [info for info in (earlier.objects.get(name, []) if earlier else []) if not info.delete_marker]
    return written[0] if len(written) == 1 and written[0].size == size else None


def _holds(store, earlier, name, size, sha256):
    """Whether an earlier attempt already stored this very artifact."""
    version = _earlier_version(earlier, name, size)
    return version is not None and store.details(version).sha256 == sha256


def _holds_bytes(store, earlier, name, data):
    """Whether an earlier attempt already stored these very bytes (metadata, sidecar)."""
    version = _earlier_version(earlier, name, len(data))
    return version is not None and store.read_small(version) == data


def _record(backup_dir, metadata, vault, copy, check_mode, lock_timeout):
    """Record the copy in the local metadata, under the catalog lock; True when that changed it.

    A copy already recorded as this very object costs no request; a new record asks the store for the copy's lock.
    """
    record = {"url": vault.store.address.url, "host": vault.host, "key": copy.artifact.key,
              "version": copy.artifact.version, "sha256": copy.sha256}
    recorded = (metadata.get("vaults") or {}).get(vault.name) or {}
    if all(recorded.get(key) == value for key, value in record.items()):
        return False
    if check_mode:
        return True
    details = vault.store.details(copy.artifact)
    record.update(retain_until=iso_or_none(details.retain_until), lock_mode=details.lock_mode)
    path = metadata["_metadata_path"]
    with _catalog.CatalogLock(backup_dir, timeout=lock_timeout):
        if not os.path.exists(path):
            return False  # pruned meanwhile: its copy stays on the vault, there is nothing to record it in
        current = _catalog.read_metadata(path)
        current.setdefault("vaults", {})[vault.name] = dict(record, at=_catalog.iso_utc(_catalog.utc_now()))
        _catalog.write_metadata(path, current)
    return True


def _message(job, reports, check_mode):
    parts = []
    for report in reports:
        if report["failed"]:
            parts.append("%s failed after %d sent" % (report["vault"], len(report["sent"])))
        else:
            verb = "to send" if check_mode else "sent"
            parts.append("%s: %d %s, %d already there"
                         % (report["vault"], len(report["sent"]), verb, len(report["present"])))
    return "%s: %s" % (job, "; ".join(parts) or "no vault")
