# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores of any backup; restore_backup() is the one entry point, for the module and the on-host command.

request.py    the RestoreRequest and the backup it names (by path, id, latest of a job, deploy id)
plan.py       a file restore's plan from the manifest alone: units, destinations, hostile entries refused
dest.py       dest resolved once, every directory opened by descriptor without following a link, owners checked
swap.py       units staged beside their live path, swapped in by renames, swapped back on failure
extract.py    the archive's members written into staging, each checked against the manifest
payload.py    the artifact decoded into shared memory by a child process and hashed by another
files.py      a file restore from start to end: plan, safety backup, staging, verification, swap, roll-back
journal.py    what a file restore is about to swap, recorded in the catalog; putting back what a killed one left
database.py   a database restore: safety dump, load into the engine's target, roll-back to the safety dump
"""

from __future__ import annotations

from .. import _catalog
from .._errors import BackupError
from .._incremental import earlier_backups
from .._pipeline import artifact_layers, header_result
from .database import DatabaseRestore
from .files import run_restore_files
from .journal import repair
from .request import RestoreRequest, catalog_dir, check_encryption, check_file_key, select_backup

__all__ = ["RestoreRequest", "backup_header", "repair_restores", "restore_backup", "run_restore_files", "select_backup"]


def restore_backup(request, check_mode=False):
    """Restore the backup the request names, files or database; returns the result dict.

    The restore holds its catalog's lock from start to end (its safety backup takes it again), and first puts
    right what a killed restore from the same catalog left; the result's ``repaired`` says what that was.
    """
    artifact, metadata = select_backup(request)
    if request.key is not None:
        check_encryption(request, artifact, metadata)
        if request.key.file_key is not None:
            check_file_key(request, artifact)
    if check_mode:
        return _run(request, artifact, metadata, check_mode)
    with _catalog.CatalogLock(catalog_dir(artifact, metadata, request), timeout=request.lock_timeout):
        repaired = repair(catalog_dir(artifact, metadata, request))
        try:
            result = _run(request, artifact, metadata, check_mode)
        except BackupError as exc:
            exc.result["repaired"] = repaired
            raise
    result["repaired"] = repaired
    result["warnings"] = [entry["msg"] for entry in repaired] + result.get("warnings", [])
    return result


def backup_header(request):
    """The age header of the backup the request names, for the holder of the key (on the controller) to unwrap its
    file key; an unencrypted backup is refused as a restore with a key refuses it."""
    artifact, metadata = select_backup(request)
    check_encryption(request, artifact, metadata)
    with open(artifact, "rb") as handle:
        return header_result((metadata or {}).get("id"), artifact, handle, artifact_layers(artifact, metadata)[1],
                             earlier_backups(metadata))


def repair_restores(backup_dir, lock_timeout=0.0):
    """Only put right what killed restores from this catalog left (``lifeboat restore --repair``)."""
    with _catalog.CatalogLock(backup_dir, timeout=lock_timeout):
        repaired = repair(backup_dir)
    return {"changed": bool(repaired), "repaired": repaired,
            "msg": "; ".join(entry["msg"] for entry in repaired) or "no killed restore to put right in %s"
            % backup_dir}


def _run(request, artifact, metadata, check_mode):
    if (metadata or {}).get("kind", "files") == "database":
        return DatabaseRestore(request, artifact, metadata).run(check_mode)
    return run_restore_files(request, artifact, metadata, check_mode)
