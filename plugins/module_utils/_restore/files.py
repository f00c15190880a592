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
symlink is refused when the plan is made. Every directory outside staging is reached through
descriptors opened once (dest.py), and the catalog is never part of a unit (plan.py).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time

from .._archive import ArchiveRequest, run_archive
from .._errors import BackupError, CryptoError, IntegrityError, UsageError
from .._fileio import storage_error
from .._incremental import chain_fault, earlier_backups
from .._manifest import held_here, parse_manifest
from .._members import parent_of
from .._pipeline import artifact_layers
from .._verify import expected_sha256, manifest_bytes_of
from .dest import Places, open_below
from .extract import Extractor
from .journal import Journal
from .payload import PayloadProcess
from .plan import LiveTree, Plan
from .request import SAFETY_TAG, catalog_dir, open_artifact, safety_encryption
from .swap import Unit, sync_filesystem


def _merge_extras(live, extractor):
    """Without delete_extra, what exists only on the host joins the staged tree (hard links: nothing is copied).
    Each live directory is opened from its unit's parent without following a link and must be the one the plan
    read: a directory swapped for a link meanwhile would make root hard-link whatever the link points to."""
    created_dirs = []
    opened_name, opened_fd = None, None  # the live directory last linked from
    try:
        for name in sorted(live.extras, key=lambda item: item.split("/")):
            staged_fd, parent_staged = extractor.staged_path(parent_of(name))
            try:
                if not stat.S_ISDIR(os.stat(parent_staged, dir_fd=staged_fd, follow_symlinks=False).st_mode):
                    continue  # the backup has a file or a link where the host has a directory: the backup wins
                os.stat(extractor.staged_path(name)[1], dir_fd=staged_fd, follow_symlinks=False)
                continue  # the backup has it
            except FileNotFoundError:
                pass
            st = live.extras[name]
            staged = extractor.staged_path(name)[1]
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(staged, 0o700, dir_fd=staged_fd)
                created_dirs.append((staged_fd, staged, st))
                continue
            if opened_name != parent_of(name):
                if opened_fd is not None:
                    os.close(opened_fd)
                    opened_fd = None
                opened_name = parent_of(name)
                opened_fd = _open_live(live, extractor.units[extractor.unit_of(name)], opened_name)
            os.link(name.rpartition("/")[2], staged, src_dir_fd=opened_fd, dst_dir_fd=staged_fd,
                    follow_symlinks=False)
    finally:
        if opened_fd is not None:
            os.close(opened_fd)
    for staged_fd, staged, st in reversed(created_dirs):
        os.chown(staged, st.st_uid, st.st_gid, dir_fd=staged_fd, follow_symlinks=False)
        os.chmod(staged, stat.S_IMODE(st.st_mode), dir_fd=staged_fd, follow_symlinks=False)
        os.utime(staged, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=staged_fd, follow_symlinks=False)


def _open_live(live, unit, name):
    """The live directory name of unit, opened below the unit's parent, checked to be the one the plan read."""
    try:
        fd = open_below(unit.parent_fd, unit.base + name[len(unit.name):])
    except OSError as exc:
        fd, exc_text = None, exc.strerror
    else:
        now = os.fstat(fd)
        planned = live.stats.get(name)
        if planned is not None and (now.st_dev, now.st_ino) == (planned.st_dev, planned.st_ino):
            return fd
        os.close(fd)
        exc_text = "another directory is there now"
    raise BackupError("%s changed while it was restored (%s): it was replaced, or swapped for a link, after the "
                      "plan read it; nothing was restored" % (live.plan.target(name), exc_text), stage="restore")


class FileRestore:
    """One restore of a files backup: plan, predict, then stage, verify and swap."""

    def __init__(self, request, artifact, metadata):
        self.request = request
        self.artifact = artifact
        self.metadata = metadata
        self.owners = os.geteuid() == 0
        self.layers = artifact_layers(artifact, metadata)
        self.earlier = earlier_backups(metadata)
        with open_artifact(request, artifact) as handle:
            manifest = manifest_bytes_of(handle, self.layers, request.key)
        self.manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        try:
            header, records = parse_manifest(bytes(manifest))
        except (ValueError, KeyError) as exc:
            raise IntegrityError("the manifest cannot be read: %s" % exc, stage="manifest") from exc
        self._check_chain(header)
        self.header = header
        self.places = Places(request.dest or "/", request.allow_foreign_owner)
        try:
            catalogs = self._catalogs()
            self.plan = Plan(header, records, request, self.places.dest, catalogs)
            self.live = LiveTree(self.plan, self.places, request.delete_extra)
        except BaseException:
            self.places.close()
            raise
        self.differences = self.live.differences(request.delete_extra, self.owners)
        self.created_parents = []

    def _check_chain(self, header):
        """The chain the manifest names is the one the catalog's metadata names: the artifacts read are the right
        ones. An incremental backup cannot be restored without the catalog that holds its chain."""
        chain = header.get("chain")
        if chain is None or len(chain) == 1:
            return
        if self.metadata is None:
            raise UsageError("%s is an incremental backup (level %d): restore it by id from the catalog that holds "
                             "its chain" % (self.artifact, len(chain) - 1), stage="chain")
        if chain != self.metadata.get("chain"):
            raise IntegrityError("the manifest of %s names another chain than its metadata; nothing was restored"
                                 % self.metadata["id"], stage="chain")

    def _catalogs(self):
        """The real paths of the catalog the backup is read from and the safety backup written to: never touched."""
        catalogs = sorted({os.path.realpath(path) for path in (catalog_dir(self.artifact, self.metadata, self.request),
                                                               self.request.backup_dir) if path})
        for catalog in catalogs:
            if self.places.dest == catalog or self.places.dest.startswith(catalog + "/"):
                raise UsageError("dest %s lies in the catalog %s, which a restore never writes into; restore "
                                 "elsewhere" % (self.places.dest, catalog), stage="plan")
        return catalogs

    @property
    def changes(self):
        return any(self.differences.values())

    def run(self, check_mode=False):
        started = time.monotonic()
        result = {"id": (self.metadata or {}).get("id"), "path": self.artifact, "kind": "files",
                  "differences": self.differences, "safety_backup_id": None, "rolled_back": False,
                  "restored": {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0},
                  "warnings": [warning for warning in [self.plan.catalog_warning()] if warning],
                  "dest": self.plan.dest}
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
        """What is about to change, the catalog aside (an archive never takes its own backup_dir)."""
        paths = [self.plan.target(top) for top in self.plan.tops if top in self.live.stats]
        if not paths:
            return None
        job = (self.metadata or {}).get("job") or "restore"
        restored = (self.metadata or {}).get("id") or self.artifact
        request = ArchiveRequest(paths, job, backup_dir=catalog_dir(self.artifact, self.metadata, self.request),
                                 default_excludes=False, tags=[SAFETY_TAG],
                                 **safety_encryption(self.artifact, self.metadata, self.request), lock_timeout=self.request.lock_timeout,
                                 description="taken before restoring %s" % restored)
        return run_archive(request)["id"]

    def _restore(self):
        units = {}
        self.journal = None
        try:
            extractor = self._stage(units)
            parents = {unit.parent: unit.parent_fd for unit in units.values()}
            for parent in sorted(parents):
                sync_filesystem(parents[parent])  # the new trees are durable before the old ones go
            for unit in units.values():
                unit.swap_in()
            self.journal.write("committed")
        except OSError as exc:
            self._roll_back(units)
            raise storage_error(exc, exc.filename or self.plan.dest) from exc
        except BaseException:
            self._roll_back(units)
            raise
        warnings = self._finish_swap(units)
        self.journal.remove()
        unknown = extractor.unknown_owners()
        return extractor.counts, warnings + ([unknown] if unknown else [])

    def _stage(self, units):
        for name in self.plan.in_place:
            self._make_dirs(self.plan.target(name))
        for name in self.plan.units + self.live.removals:
            target = self.plan.target(name)
            self._make_dirs(os.path.dirname(target))
            units[name] = Unit(name, target, self.places.open_dir(os.path.dirname(target)))
        # Named before anything is made beside a target: a kill from here on is put back from the journal.
        self.journal = Journal(catalog_dir(self.artifact, self.metadata, self.request),
                               (self.metadata or {}).get("id") or self.artifact, units.values())
        self.journal.write("started")
        for name, unit in units.items():
            if name in self.plan.selected:
                unit.make_staging()
        extractor = Extractor(self.plan, units, self.owners, self.request.numeric_owner,
                              held_here(self.header, self.plan.records))
        self._extract(extractor, self.artifact, self.metadata, self.manifest_sha256)
        holders = self._holders()
        for artifact, metadata in reversed(self.earlier):  # the newest first: what is left comes from further back
            if metadata["id"] in holders:  # one that holds none of the files restored is not read at all
                self._extract(extractor, artifact, metadata, None)
        extractor.finish()
        if not self.request.delete_extra:
            _merge_extras(self.live, extractor)
        extractor.set_directory_metadata()
        return extractor

    def _extract(self, extractor, artifact, metadata, manifest_sha256):
        """One artifact's members into staging (extractor.run), and its checksum against its sidecar."""
        try:
            expected = expected_sha256(artifact, metadata) if metadata else None
            opened = open_artifact(self.request, artifact) if artifact == self.artifact else open(artifact, "rb")
            with opened as handle, \
                    PayloadProcess(handle, *artifact_layers(artifact, metadata), self.request.key) as payload:
                extractor.run(payload, manifest_sha256, (metadata or {}).get("id"))
            if expected is not None and payload.raw_sha256 != expected:
                raise IntegrityError("artifact %s does not match its checksum: the file is corrupted or was changed"
                                     % artifact, stage="checksum")
        except (IntegrityError, CryptoError) as exc:
            if artifact == self.artifact:
                raise
            raise type(exc)("%s needs %s (level %d of its chain), which %s: %s; nothing was restored"
                            % (self.metadata["id"], metadata["id"], metadata.get("level", 0), chain_fault(exc), exc.msg),
                            stage="chain") from None

    def _holders(self):
        """The ids of the backups that hold a file this restore writes."""
        wanted = set(self.plan.selected) | set(self.plan.link_sources)
        return {self.plan.records[name].get("holder") for name in wanted}

    def _make_dirs(self, directory):
        """Create missing directories (recorded for the roll-back), with the backup's metadata if it has it."""
        self.created_parents.extend(self.places.make_dirs(directory, self._recorded_dir))

    def _recorded_dir(self, path):
        record = self.plan.records.get(os.path.relpath(path, self.plan.dest))
        if record is None or record["type"] != "dir":
            return None
        return (record["uid"] if self.owners else None), record["gid"], record["mode"]

    def _roll_back(self, units):
        for unit in reversed(list(units.values())):
            try:
                unit.swap_back()
            finally:
                unit.remove_staging()
        for parent_fd, name in reversed(self.created_parents):
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except OSError:
                pass  # not empty: something else was put there meanwhile, leave it
        if self.journal is not None:
            self.journal.remove()

    def _finish_swap(self, units):
        warnings = []
        for parent_fd in {unit.parent_fd for unit in units.values()}:
            os.fsync(parent_fd)
        for unit in units.values():
            if unit.old is not None:
                try:
                    unit.remove_old()
                except OSError as exc:
                    warnings.append("the replaced tree kept at %s could not be removed (%s); remove it by hand"
                                    % (os.path.join(unit.parent, unit.old), exc))
            unit.remove_staging()
        return warnings + self._set_in_place_metadata()

    def _set_in_place_metadata(self):
        """The directories holding a catalog get the backup's owner, mode and mtime last, deepest first."""
        warnings = []
        now_ns = time.time_ns()
        for name in reversed(self.plan.in_place):
            record = self.plan.selected[name]
            try:
                fd = self.places.open_dir(self.plan.target(name))
                if self.owners:
                    os.fchown(fd, record["uid"], record["gid"])
                os.fchmod(fd, record["mode"])
                os.utime(fd, ns=(now_ns, record["mtime_ns"]))
            except OSError as exc:
                warnings.append("the owner, mode or mtime of %s could not be restored (%s)"
                                % (self.plan.target(name), exc))
        return warnings


def run_restore_files(request, artifact, metadata, check_mode=False):
    """Restore a files backup; returns the result dict that the module and the command report."""
    if metadata is not None and metadata.get("kind", "files") != "files":
        raise UsageError("backup %s is a %s backup, not a files backup" % (metadata.get("id"), metadata.get("kind")))
    try:
        restore = FileRestore(request, artifact, metadata)
        try:
            return restore.run(check_mode)
        finally:
            restore.places.close()
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BackupError("permission denied on %s: %s" % (exc.filename, exc.strerror), stage="restore") from exc
        raise
