# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a vault: its backups by job, the verification of one copy, and a copy fetched back for a restore.

Every read uses the copy's first versions (copies.py): what the bucket's default retention locked when the host
wrote them. What a host's credentials did afterwards (delete markers, newer versions) is reported, never used.
"""

from __future__ import annotations

import copy as _copy
import hashlib

from .. import _age, _catalog
from .._errors import BackupError, CryptoError, IntegrityError, NotFoundError, UsageError, WrongKeyError
from .._fileio import READ_SIZE
from .._health import filter_backups, parse_since, verdict
from .._pipeline import artifact_layers, header_result
from .._retention import broken_chains
from .._restore import backup_header, restore_backup
from .._restore.request import check_encryption
from .._tools import clean_private_directories, private_directory
from .._verify import check_full_stream
from .arrival import Arrival
from .copies import check_digest, read_host, usable

LEVELS = ("checksum", "full")


def list_backups(vault, job=None):
    """The host's backups on the vault, newest first, each with its copies' state, and the vault's problems."""
    backups, problems = [], []
    for job_name, by_id in sorted(read_host(vault.store, vault.host, job, with_details=True).items()):
        for backup_id, attempts in by_id.items():
            copy = usable(attempts)
            entry = dict(copy.describe() if copy else attempts[-1].describe(), job=job_name, vault=vault.name)
            entry["complete"] = copy is not None
            entry["attempts"] = len(attempts)
            if copy is not None:
                entry.update({key: copy.metadata.get(key) for key in ("kind", "created_at", "tags", "deploy_id",
                                                                      "database", "engine", "level", "base", "chain")})
            else:
                entry["created_at"] = None
            backups.append(entry)
            for found in attempts:
                problems.extend({"code": "vault_rewritten" if found is copy else "vault_incomplete", "id": backup_id,
                                 "job": job_name, "vault": vault.name, "level": "critical" if found is copy else
                                 "warning", "message": "%s: %s" % (vault.describe(), problem)}
                                for problem in found.problems)
    backups.sort(key=lambda entry: (entry["created_at"] or "", entry["id"]), reverse=True)
    return {"vault": vault.name, "host": vault.host, "backups": backups,
            "problems": problems + _chain_problems(vault, backups)}


def _chain_problems(vault, backups):
    """A copy of an incremental backup is of no use without complete copies of the backups of its chain."""
    complete = [entry for entry in backups if entry["complete"]]
    broken = broken_chains({entry["id"]: _catalog.chain_needs(entry) for entry in complete}, set())
    problems = []
    for entry in complete:
        if entry["id"] in broken:
            member = broken[entry["id"]][0]
            problems.append({"code": "broken_chain", "id": entry["id"], "job": entry["job"], "vault": vault.name,
                             "level": "error", "member": member,
                             "message": "%s: the copy of %s cannot be restored: %s of its chain has no complete copy "
                                        "there; replicate again from the host if it still has it"
                                        % (vault.describe(), entry["id"], member)})
    return problems


def vault_info(vault, job=None, kind=None, tags=None, deploy_id=None, since=None, now=None):
    """catalog_info of a vault: the host's backups there, filtered as a local listing is (an incomplete copy, which
    has no metadata, matches no filter but job), and the vault's problems as the health report. Reads only."""
    since_time = parse_since(since, now or _catalog.utc_now()) if since else None
    listing = list_backups(vault, job)
    backups = listing["backups"]
    if kind or tags or deploy_id or since_time:
        backups = filter_backups([entry for entry in backups if entry["complete"]], kind, tags, deploy_id, since_time)
    health = verdict(listing["problems"])
    summary = "%d backup(s) listed of %d on %s for host %s" % (len(backups), len(listing["backups"]),
                                                               vault.describe(), vault.host)
    state = "healthy" if health["ok"] else "%d problem(s), worst %s" % (len(health["problems"]), health["level"])
    return {"changed": False, "vault": vault.name, "host": vault.host, "backups": backups, "health": health,
            "msg": "%s; %s" % (summary, state)}


def find_copy(vault, backup_id):
    """The complete Copy of a backup on the vault (NotFoundError with what was found instead)."""
    job = _catalog.job_of(backup_id)
    if job is None:
        raise UsageError("%r is not a backup id" % (backup_id,))
    attempts = read_host(vault.store, vault.host, job, with_details=True).get(job, {}).get(backup_id, [])
    copy = usable(attempts)
    if copy is None:
        detail = "; ".join(problem for found in attempts for problem in found.problems)
        raise NotFoundError("%s holds no complete copy of %s for host %s%s" % (
            vault.describe(), backup_id, vault.host, (": " + detail) if detail else ""), stage="vault")
    return copy


def verify_copy(vault, backup_id, level="checksum", key=None, backup_dir=None):
    """Check one copy on the vault.

    checksum: the digest the store recorded with the artifact against its sidecar (no download) where the store
    records one; where it does not (SFTP, a directory), the artifact is read back and hashed (no key needed).
    full: the artifact is streamed back and checked as a local full verify does (key needed).
    A copy whose keys were deleted or written again after it fails, even when its first versions pass. An
    incremental backup's copy is as good as the copies of its chain: each is checked first, at the same level.
    """
    if level not in LEVELS:
        raise UsageError("level must be one of %s for a vault" % ", ".join(LEVELS))
    copy = find_copy(vault, backup_id)
    for earlier_id in _catalog.chain_needs(copy.metadata):
        try:
            _check_copy(vault, find_copy(vault, earlier_id), level, key, backup_dir)
        except (IntegrityError, CryptoError, NotFoundError) as exc:
            if isinstance(exc, WrongKeyError):
                raise
            raise type(exc)("%s needs %s of its chain on %s, which cannot be used: %s"
                            % (backup_id, earlier_id, vault.describe(), exc.msg), stage="chain") from None
    return _check_copy(vault, copy, level, key, backup_dir)


def _check_copy(vault, copy, level, key, backup_dir):
    """verify_copy of one copy, its chain aside."""
    backup_id = copy.backup_id
    local = _local_metadata(backup_dir, backup_id)
    if local is not None and local.get("sha256") != copy.sha256:
        raise IntegrityError("the copy of %s on %s records SHA-256 %s, the local backup %s"
                             % (backup_id, vault.describe(), copy.sha256, local.get("sha256")), stage="vault")
    result = {"id": backup_id, "vault": vault.name, "level": level, "key": copy.artifact.key,
              "version": copy.artifact.version, "sha256": copy.sha256}
    try:
        if level == "full":
            with vault.store.open(copy.artifact) as stream:
                checked = check_full_stream(stream, artifact_layers(copy.artifact.name, copy.metadata),
                                            copy.metadata, key)
            check_digest(copy, checked.pop("raw_sha256"))
            result.update(checked)
            result["method"] = "read"
        elif copy.artifact.sha256 is not None:
            result["method"] = "store"  # copies.py compared it with the sidecar
        else:
            with vault.store.open(copy.artifact) as stream:
                check_digest(copy, _hash_stream(stream))
            result["method"] = "read"
    except (IntegrityError, CryptoError) as exc:
        if isinstance(exc, WrongKeyError):
            raise
        raise IntegrityError("the copy of %s on %s failed %s verification: %s" % (
            backup_id, vault.describe(), level, exc.msg), stage=exc.stage or "vault")
    if copy.problems:
        raise IntegrityError("the copy of %s on %s passed %s verification, but: %s" % (
            backup_id, vault.describe(), level, "; ".join(copy.problems)), stage="vault", result=result)
    result["verified"] = True
    result["msg"] = "the copy of %s on %s passed %s verification" % (backup_id, vault.describe(), level)
    return result


def _local_metadata(backup_dir, backup_id):
    if not backup_dir:
        return None
    try:
        return _catalog.find_backup(backup_dir, backup_id)
    except BackupError:
        return None


def copy_header(vault, backup_id):
    """The age header of a copy on the vault (only its first bytes are read), for the holder of the key to unwrap
    its file key."""
    return _header_of(vault, find_copy(vault, backup_id))


def restore_header(vault, request, from_vault=False):
    """The age header of what restore_copy would restore (the local backup, or its copy on the vault); what a
    restore with a key refuses, an unencrypted backup, is refused here already."""
    if not _from_vault(request, from_vault):
        return dict(backup_header(request), vault=None)
    copy = find_copy(vault, request.backup_id)
    check_encryption(request, copy.artifact.name, copy.metadata)
    return _header_of(vault, copy)


def _header_of(vault, copy):
    """The copy's header and, for an incremental backup, those of the earlier backups of its chain on the vault."""
    with vault.store.open(copy.artifact) as stream:
        result = header_result(copy.backup_id, None, stream, artifact_layers(copy.artifact.name, copy.metadata)[1], [])
    for backup_id in _catalog.chain_needs(copy.metadata):
        earlier = find_copy(vault, backup_id)
        if artifact_layers(earlier.artifact.name, earlier.metadata)[1]:
            with vault.store.open(earlier.artifact) as stream:
                result["chain_headers"].append(_age.read_header_bytes(stream).decode("ascii"))
    return dict(result, vault=vault.name, key=copy.artifact.key)


def _hash_stream(stream):
    digest = hashlib.sha256()
    while True:
        chunk = stream.read(READ_SIZE)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


def fetch_copy(vault, backup_id, directory):
    """Download a copy into directory (private scratch space) as the catalog lays a backup out: <job>/ with the
    artifact, checked against its sidecar as it arrives, and the sidecars; returns the artifact's path."""
    return Arrival(vault, find_copy(vault, backup_id), directory).wait()


def restore_copy(vault, request, check_mode=False, from_vault=False):
    """Restore the backup request.backup_id names from its copy on the vault: when the local catalog lacks it, or
    always with from_vault; otherwise the local backup is restored.

    The copy is downloaded into private scratch space under the catalog, checked against its sidecar as it comes,
    restored as the catalog's own backups are (its lock, its journal, safety backups into it), and removed
    afterwards, also on failure. A files backup is restored while it arrives (arrival.py), the earlier backups of
    an incremental one's chain downloaded whole before it; a database's once all of it arrived. Check mode reads
    what the plan needs, the start of the artifact, and stops the download.
    """
    if not _from_vault(request, from_vault):
        return dict(restore_backup(request, check_mode), vault=None)
    scratch_parent = _catalog.private_dir(request.backup_dir)
    clean_private_directories(scratch_parent)  # what a killed restore from a vault left
    with private_directory(scratch_parent) as scratch:
        copy = find_copy(vault, request.backup_id)
        for backup_id in _catalog.chain_needs(copy.metadata):  # an incremental backup's chain first, whole: it is read after it
            fetch_copy(vault, backup_id, scratch)
        arrival = Arrival(vault, copy, scratch)
        try:
            fetched = _copy.copy(request)
            fetched.path, fetched.backup_id, fetched.catalog = arrival.path, None, request.backup_dir
            if arrival.copy.metadata.get("kind") == "files":
                fetched.artifact_opener = arrival.open  # restored as it arrives, as a pipeline would
            else:
                arrival.wait()  # a database restore checks the whole artifact before it touches the database
            result = restore_backup(fetched, check_mode)
        finally:
            arrival.stop()
    result.pop("path", None)  # the download is gone
    result["vault"] = vault.name
    return result


def _from_vault(request, from_vault):
    """Whether the backup is restored from its copy on the vault: when the catalog lacks it, or always with
    from_vault."""
    if request.path or request.job or request.latest or request.deploy_id or not request.backup_id:
        raise UsageError("with a vault, name the backup by its id (catalog_info with the vault lists them): path, "
                         "latest and deploy_id name local backups only")
    return from_vault or not _in_catalog(request.backup_dir, request.backup_id)


def _in_catalog(backup_dir, backup_id):
    """Whether the catalog holds the backup; one it holds but cannot trust is its restore's to refuse."""
    try:
        _catalog.find_backup(backup_dir, backup_id)
    except NotFoundError:
        return False
    return True
