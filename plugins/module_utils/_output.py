# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What archives and dumps share: where a new backup goes, how it is sealed, and its common metadata."""

from __future__ import annotations

import os
import socket
import time

from . import _catalog
from ._compression import resolve_level
from ._errors import CryptoError, IntegrityError, WrongKeyError
from ._pipeline import ArtifactWriter, artifact_suffix, encryption_method
from ._verify import READ_BACK, check_full_stream
from ._version import VERSION


class OutputRequest:
    """The output options of a backup run (the module's output and encryption option groups)."""

    def __init__(self, job, backup_dir, compression, compression_level, recipients, passphrase, tags, description,
                 deploy_id, lock_timeout, read_back, seal=None):
        """seal: an _age.Seal instead of recipients or passphrase (a restore's safety backup, sealed as the backup)."""
        self.job = _catalog.check_job_name(job)
        self.backup_dir = os.path.abspath(backup_dir)
        self.compression = compression
        self.compression_level = resolve_level(compression, compression_level)
        self.recipients = list(recipients or [])
        self.passphrase = passphrase
        self.seal = seal
        self.method = encryption_method(self.recipients, passphrase, seal)
        self.tags = list(tags or ())
        self.description = description
        self.deploy_id = deploy_id
        self.lock_timeout = lock_timeout
        self.read_back = read_back

    def artifact_name(self, backup_id, base):
        """e.g. app-20261122T021500Z.tar.zst.age: the suffixes say how to open it by hand."""
        return backup_id + artifact_suffix(base, self.compression, self.method != "none")


class NewBackup:
    """A backup being made under the catalog lock: its id, its time, and its artifact's writer.

    kind: "files" (a tar whose first member is its manifest) or "database" (a dump's payload).
    """

    def __init__(self, request, base, kind, **writer_options):
        self.request = request
        self.kind = kind
        self.now = _catalog.utc_now()
        directory = _catalog.ensure_dir(_catalog.job_dir(request.backup_dir, request.job))
        self.id = _catalog.new_backup_id(request.backup_dir, request.job, self.now)
        self.name = request.artifact_name(self.id, base)
        if request.read_back and kind != "files":
            writer_options["content_digest"] = True  # what the payload read back must match
        self.writer = ArtifactWriter(os.path.join(directory, self.name), request.compression,
                                     request.compression_level, request.recipients, request.passphrase,
                                     seal=request.seal, **writer_options)
        self.verification = {"state": "unverified"}
        self.manifest = None

    def commit(self, reserved=None, manifest=None):
        """The writer's commit(reserved); with read_back, the artifact gets its name only once it was read back
        from the disk and checked as verify level=full checks it. manifest: of a files backup, (its bytes, its
        records, its chain or None), which the manifest read back must be."""
        self.manifest = manifest
        if not self.request.read_back:
            return self.writer.commit(reserved)
        written = self.writer.commit(reserved, read_back=self._read_back)
        self.verification = {"state": "verified", "level": "full", "method": READ_BACK,
                             "at": _catalog.iso_utc(_catalog.utc_now())}
        return written

    def _read_back(self, handle, key):
        """The check of the artifact read back: every chunk, the compressed stream, every member against the
        manifest or the payload against its digest; returns the SHA-256 of the bytes read."""
        recorded = {"kind": self.kind, "content_sha256": self.writer.content_sha256}
        try:
            return check_full_stream(handle, (self.request.compression, key is not None), recorded, key,
                                     self.manifest)["raw_sha256"]
        except WrongKeyError:  # the file's own key: the header read back is not the one written
            problem = "its age header differs from the one written (header MAC mismatch)"
        except (IntegrityError, CryptoError) as exc:
            problem = exc.msg
        raise IntegrityError("%s was read back from the disk and does not match what was written: %s; nothing was "
                             "stored (the temporary file was removed, the catalog is as it was); check the disk and "
                             "the memory of this host" % (self.name, problem), stage="read-back")

    def metadata(self, sources, written, input_size, warnings, started):
        """The metadata keys every kind of backup has (started: the run's time.monotonic()); the caller adds
        its own."""
        request = self.request
        return {
            "format": _catalog.FORMAT_VERSION, "id": self.id, "job": request.job, "kind": self.kind,
            "host": socket.gethostname(), "created_at": _catalog.iso_utc(self.now),
            "local_time": _catalog.local_iso(self.now),
            "duration_s": round(time.monotonic() - started, 3),
            "sources": sources, "artifact": self.name, "sha256": written["sha256"], "size": written["size"],
            "input_size": input_size, "ratio": round(input_size / written["size"], 3) if written["size"] else None,
            "compression": {"algorithm": request.compression, "level": request.compression_level},
            "encryption": {"method": request.method, "recipients": request.recipients},
            "tags": request.tags, "description": request.description, "deploy_id": request.deploy_id,
            "warnings": warnings, "verification": self.verification, "lifeboat_version": VERSION,
        }
