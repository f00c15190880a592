# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring file archives: verify every member into staging, then swap it in with renames.

The plan comes from the manifest alone (the archive's first member): which paths are restored
where, what differs from the live tree, and whether any entry is hostile. Nothing is written
before the whole plan checked out. Each top-level restored path (a "unit") is then built in a
hidden sibling directory ``.<name>.lifeboat-staging-XXXX`` on the same filesystem, every file's
SHA-256 checked while it is written. Only when the whole archive was read and verified is each
unit swapped in: the live path is renamed to ``.<name>.lifeboat-old-XXXX``, the staged one
renamed into place; the old trees are removed once every unit is swapped. A failure at any point
before that removes the staging directories and renames back what was already swapped, so the
targets are exactly as they were. The journal (journal.py) names every unit before anything is made,
so what a kill leaves is put back by the next restore from the catalog.

Writes never follow a symbolic link: every member is created (O_EXCL, O_NOFOLLOW) inside a
directory this restore created itself in a 0700 staging directory, and a member below a
symlink is refused when the plan is made.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import time

from .._archive import ArchiveRequest, run_archive
from .._errors import BackupError, IntegrityError, UsageError
from .._fileio import fsync_dir, storage_error
from .._manifest import parse_manifest
from .._pipeline import artifact_layers
from .._verify import expected_sha256, read_manifest_bytes
from .extract import Extractor
from .journal import Journal
from .payload import PayloadProcess
from .plan import LiveTree, Plan, parent_of
from .request import SAFETY_TAG, catalog_dir, safety_encryption
from .swap import Unit, sync_filesystem


def _merge_extras(live, extractor):
    """Without delete_extra, what exists only on the host joins the staged tree (hard links: nothing is copied)."""
    created_dirs = []
    for name in sorted(live.extras, key=lambda item: item.split("/")):
        parent_staged = extractor.staged_path(parent_of(name))
        if not os.path.isdir(parent_staged) or os.path.islink(parent_staged):
            continue  # the backup has a file or a link where the host has a directory: the backup wins
        live_path = live.plan.target(name)
        staged = extractor.staged_path(name)
        st = live.extras[name]
        if os.path.lexists(staged):
            continue
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(staged, 0o700)
            created_dirs.append((staged, st))
        else:
            os.link(live_path, staged, follow_symlinks=False)
    for staged, st in reversed(created_dirs):
        os.chown(staged, st.st_uid, st.st_gid, follow_symlinks=False)
        os.chmod(staged, stat.S_IMODE(st.st_mode), follow_symlinks=False)
        os.utime(staged, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


class FileRestore:
    """One restore of a files backup: plan, predict, then stage, verify and swap."""

    def __init__(self, request, artifact, metadata):
        self.request = request
        self.artifact = artifact
        self.metadata = metadata
        self.owners = os.geteuid() == 0
        manifest = read_manifest_bytes(artifact, metadata, request.identities, request.passphrase)
        self.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        try:
            header, records = parse_manifest(bytes(manifest))
        except (ValueError, KeyError) as exc:
            raise IntegrityError("the manifest cannot be read: %s" % exc, stage="manifest") from exc
        self.plan = Plan(header, records, request)
        self.live = LiveTree(self.plan)
        self.differences = self.live.differences(request.delete_extra, self.owners)
        self.created_parents = []

    @property
    def changes(self):
        return any(self.differences.values())

    def run(self, check_mode=False):
        started = time.monotonic()
        result = {"id": (self.metadata or {}).get("id"), "path": self.artifact, "kind": "files",
                  "differences": self.differences, "safety_backup_id": None, "rolled_back": False,
                  "restored": {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0},
                  "warnings": [], "dest": self.plan.dest}
        if not self.changes:
            return dict(result, changed=False, duration=round(time.monotonic() - started, 3),
                        msg="the restored paths already match the backup; nothing to do")
        if check_mode:
            return dict(result, changed=True, duration=0.0, msg=self._summary("would restore"))
        if self.request.safety_backup:
            result["safety_backup_id"] = self._safety_backup()
        result["restored"], warnings = self._restore()
        result["warnings"].extend(warnings)
        return dict(result, changed=True, duration=round(time.monotonic() - started, 3),
                    msg=self._summary("restored"))

    def _summary(self, verb):
        found = self.differences
        return "%s %s into %s: %d added, %d changed, %d removed" % (
            verb, (self.metadata or {}).get("id") or os.path.basename(self.artifact), self.plan.dest,
            len(found["added"]), len(found["changed"]), len(found["removed"]))

    def _safety_backup(self):
        paths = [self.plan.target(unit) for unit in self.plan.units if os.path.lexists(self.plan.target(unit))]
        if not paths:
            return None
        recipients, passphrase = safety_encryption(self.metadata, self.request)
        job = (self.metadata or {}).get("job") or "restore"
        restored = (self.metadata or {}).get("id") or self.artifact
        request = ArchiveRequest(paths, job, backup_dir=catalog_dir(self.artifact, self.metadata, self.request),
                                 default_excludes=False, recipients=recipients, passphrase=passphrase,
                                 tags=[SAFETY_TAG], lock_timeout=self.request.lock_timeout,
                                 description="taken before restoring %s" % restored)
        return run_archive(request)["id"]

    def _restore(self):
        units = {name: Unit(name, self.plan.target(name)) for name in self.plan.units}
        journal = Journal(catalog_dir(self.artifact, self.metadata, self.request),
                          (self.metadata or {}).get("id") or self.artifact, units.values())
        journal.write("started")
        try:
            extractor = self._stage(units)
            for parent in sorted({unit.parent for unit in units.values()}):
                sync_filesystem(parent)  # the new trees are durable before the old ones go
            for unit in units.values():
                unit.swap_in()
            journal.write("committed")
        except OSError as exc:
            self._roll_back(units)
            journal.remove()
            raise storage_error(exc, exc.filename or self.plan.dest) from exc
        except BaseException:
            self._roll_back(units)
            journal.remove()
            raise
        warnings = self._finish_swap(units)
        journal.remove()
        return extractor.counts, warnings

    def _stage(self, units):
        for unit in units.values():
            self._make_parents(unit.parent)
            unit.make_staging()
        extractor = Extractor(self.plan, units, self.owners, self.request.numeric_owner)
        compression, encrypted = artifact_layers(self.artifact, self.metadata)
        expected = expected_sha256(self.artifact, self.metadata) if self.metadata else None
        with open(self.artifact, "rb") as handle, \
                PayloadProcess(handle, compression, encrypted, self.request.identities,
                               self.request.passphrase) as payload:
            extractor.run(payload, self.manifest_sha256)
        if expected is not None and payload.raw_sha256 != expected:
            raise IntegrityError("artifact %s does not match its checksum: the file is corrupted or was changed; "
                                 "nothing was restored" % self.artifact, stage="checksum")
        if not self.request.delete_extra:
            _merge_extras(self.live, extractor)
        extractor.set_directory_metadata()
        return extractor

    def _make_parents(self, directory):
        """Create missing parent directories (recorded for the rollback), with the backup's metadata if it has it."""
        missing = []
        while not os.path.lexists(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            os.mkdir(path, 0o755)
            self.created_parents.append(path)
            record = self.plan.records.get(os.path.relpath(path, self.plan.dest))
            if record is not None and record["type"] == "dir":
                if self.owners:
                    os.chown(path, record["uid"], record["gid"])
                os.chmod(path, record["mode"])

    def _roll_back(self, units):
        for unit in reversed(list(units.values())):
            try:
                unit.swap_back()
            finally:
                unit.remove_staging()
        for path in reversed(self.created_parents):
            try:
                os.rmdir(path)
            except OSError:
                pass  # not empty: something else was put there meanwhile, leave it

    def _finish_swap(self, units):
        warnings = []
        for parent in sorted({unit.parent for unit in units.values()}):
            fsync_dir(parent)
        for unit in units.values():
            if unit.old is not None:
                try:
                    shutil.rmtree(unit.old)
                except OSError as exc:
                    warnings.append("the replaced tree kept at %s could not be removed (%s); remove it by hand"
                                    % (unit.old, exc))
            unit.remove_staging()
        return warnings


def run_restore_files(request, artifact, metadata, check_mode=False):
    """Restore a files backup; returns the result dict that the module and the command report."""
    if metadata is not None and metadata.get("kind", "files") != "files":
        raise UsageError("backup %s is a %s backup, not a files backup" % (metadata.get("id"), metadata.get("kind")))
    try:
        return FileRestore(request, artifact, metadata).run(check_mode)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BackupError("permission denied on %s: %s" % (exc.filename, exc.strerror), stage="restore") from exc
        raise
