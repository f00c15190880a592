# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to restore: the request the module and the on-host command build, and the backup it names."""

from __future__ import annotations

import os

from .. import _catalog
from .._age import Seal, file_key_of, read_header_bytes
from .._errors import IntegrityError, NotFoundError, UsageError
from .._pipeline import artifact_layers
from .._retention import SAFETY_TAG


class RestoreRequest:
    """Which backup, how to open it, and where to put it; the module and the on-host command build one."""

    def __init__(self, path=None, backup_dir=_catalog.DEFAULT_BACKUP_DIR, backup_id=None, job=None, latest=False,
                 deploy_id=None, key=None, safety_backup=True, dest=None, include=(),
                 delete_extra=False, numeric_owner=True, preserve_special=False, target_database=None,
                 connection=None, lock_timeout=0.0, kind=None, database=None, allow_unencrypted=False,
                 allow_foreign_owner=False, catalog=None, artifact_opener=None):
        self.path = path
        self.backup_dir = os.path.abspath(backup_dir) if backup_dir else None
        self.backup_id = backup_id
        self.job = job
        self.latest = latest
        self.deploy_id = deploy_id
        if kind not in (None, "files", "database") or (database and kind == "files"):
            raise UsageError("kind is files or database (database: NAME implies database)")
        self.kind = kind
        self.database = database
        self.key = key  # an _age.Key, or None for an unencrypted backup
        self.safety_backup = safety_backup
        if dest is not None and not os.path.isabs(dest):
            raise UsageError("dest must be an absolute path: %s" % dest)
        self.dest = os.path.normpath(dest) if dest else None
        self.include = list(include or ())
        self.delete_extra = delete_extra
        self.numeric_owner = numeric_owner
        self.preserve_special = preserve_special
        self.allow_foreign_owner = allow_foreign_owner
        self.target_database = target_database
        self.connection = dict(connection or {})
        self.lock_timeout = lock_timeout
        self.allow_unencrypted = allow_unencrypted
        # The catalog of an artifact that lies outside one (a copy fetched from a vault into scratch space): its
        # lock, journal and safety backups are the host's, never the scratch space's, which is removed afterwards.
        self.catalog = os.path.abspath(catalog) if catalog else None
        # How a file restore reads the artifact at path, when it is not a complete file yet (a copy that arrives from
        # a vault while it is restored): a callable returning a readable binary file. None: open(path).
        self.artifact_opener = artifact_opener


def select_backup(request):
    """(artifact path, metadata or None) of the backup the request names."""
    if request.path:
        return _catalog.locate(path=request.path)
    if request.backup_id:
        return _catalog.locate(request.backup_dir, request.backup_id)
    if not request.job or not (request.latest or request.deploy_id):
        raise UsageError("name the backup with path, with backup_dir and id, or with backup_dir, job and "
                         "latest: true or deploy_id")
    newest = {}  # series -> newest backup of it; list_metadata gives the newest first
    for metadata in _catalog.list_metadata(request.backup_dir, _catalog.check_job_name(request.job)):
        if SAFETY_TAG in (metadata.get("tags") or []):
            continue  # a restore's own safety backup is never what "the latest backup" means
        if request.deploy_id and metadata.get("deploy_id") != request.deploy_id:
            continue
        if _wanted_series(request, metadata):
            newest.setdefault(_catalog.series_key(metadata), metadata)
    deploy = " with deploy id %s" % request.deploy_id if request.deploy_id else ""
    if not newest:
        raise NotFoundError("job %s has no backup%s%s in %s"
                            % (request.job, _series_phrase(request), deploy, request.backup_dir))
    if len(newest) > 1:
        found = ", ".join("%s (%s)" % (series, newest[series]["id"]) for series in sorted(newest))
        raise UsageError("job %s has backups%s of %s: say which with kind: files, or database: NAME"
                         % (request.job, deploy, found))
    return _catalog.locate(request.backup_dir, next(iter(newest.values()))["id"])


def check_encryption(request, artifact, metadata):
    """Refuse an unencrypted artifact where a key was given (here, or kept on the controller): an encrypted one is
    expected.

    Whoever can write into the catalog could put a plain artifact and metadata saying "encryption: none" in place
    of an encrypted backup; the restore would load it without the key ever being used."""
    if not request.allow_unencrypted and not artifact_layers(artifact, metadata)[1]:
        raise IntegrityError("%s is not encrypted, yet a key was given to restore it: refusing a backup that may "
                             "have been replaced; restore it anyway with allow_unencrypted: true (lifeboat restore "
                             "--allow-unencrypted) if it was made without encryption" % artifact, stage="encryption")


def _wanted_series(request, metadata):
    """Whether a backup is of the kind (and database) the request asks for; a job may have several series."""
    kind = "database" if request.database else request.kind
    if kind and metadata.get("kind") != kind:
        return False
    return not request.database or metadata.get("database") in (request.database, os.path.abspath(request.database))


def _series_phrase(request):
    if request.database:
        return " of database %s" % request.database
    return " of its %s" % ("files" if request.kind == "files" else "databases") if request.kind else ""


def catalog_dir(artifact, metadata, request):
    """The catalog the backup lives in: safety backups go next to it."""
    if request.catalog:
        return request.catalog
    if metadata is not None:
        return os.path.dirname(os.path.dirname(metadata["_metadata_path"]))
    return request.backup_dir or os.path.dirname(os.path.dirname(artifact))


def safety_encryption(artifact, metadata, request):
    """How a safety backup is encrypted (keyword arguments of its request): whoever could read the backup can read
    its safety copy. To the backup's recipients; without them, to the identity's, or with the passphrase; with only
    the backup's file key (the identity stayed on the controller), sealed as the backup is (_age.Seal)."""
    recipients = list(((metadata or {}).get("encryption") or {}).get("recipients") or [])
    key = request.key
    if recipients or key is None:
        return {"recipients": recipients}
    if key.file_key is None:
        return {"recipients": key.recipients(), "passphrase": key.passphrase}
    with open_artifact(request, artifact) as handle:
        return {"seal": Seal(read_header_bytes(handle), key)}


def open_artifact(request, artifact):
    """The artifact, open for reading: the file, or what request.artifact_opener gives (a copy still arriving)."""
    if request.artifact_opener is not None:
        return request.artifact_opener()
    return open(artifact, "rb")


def check_file_key(request, artifact):
    """A file key that does not open the backup is refused before anything is touched (a database restore takes its
    safety dump before it reads the artifact): one HMAC of the header tells."""
    with open_artifact(request, artifact) as handle:
        file_key_of(read_header_bytes(handle), request.key)
