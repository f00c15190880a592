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
targets are exactly as they were.

Writes never follow a symbolic link: every member is created (O_EXCL, O_NOFOLLOW) inside a
directory this restore created itself in a 0700 staging directory, and a member below a
symlink is refused when the plan is made.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import stat
import tempfile
import time

from . import _catalog
from ._age import recipient_from_identity
from ._archive import ArchiveRequest, run_archive
from ._fileio import fsync_dir, storage_error
from ._errors import BackupError, IntegrityError, NotFoundError, UsageError
from ._manifest import parse_manifest
from ._payload_process import BLOCK_SIZE, EMPTY_SHA256, PayloadProcess, write_all
from ._pipeline import artifact_layers
from ._selection import _Globs
from ._tarstream import DIRECTORY, HARDLINK, REGULAR, SYMLINK, TarReader
from ._verify import expected_sha256, manifest_member, read_manifest_bytes

SAFETY_TAG = "safety"
STAGING_MARKER = ".lifeboat-staging-"
OLD_MARKER = ".lifeboat-old-"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}
_TYPEFLAGS = {REGULAR: "file", b"\0": "file", b"7": "file", HARDLINK: "hardlink", SYMLINK: "symlink", DIRECTORY: "dir",
              b"3": "chardev", b"4": "blockdev", b"6": "fifo"}


class RestoreRequest:
    """Which backup, how to open it, and where to put it; the module and the on-host command build one."""

    def __init__(self, path=None, backup_dir=_catalog.DEFAULT_BACKUP_DIR, backup_id=None, job=None, latest=False,
                 deploy_id=None, identities=None, passphrase=None, safety_backup=True, dest=None, include=(),
                 delete_extra=False, numeric_owner=True, preserve_special=False, target_database=None,
                 connection=None, lock_timeout=0.0, kind=None, database=None):
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
        self.identities = list(identities or [])
        self.passphrase = passphrase
        if self.identities and passphrase:
            raise UsageError("give either identity or passphrase, not both")
        self.safety_backup = safety_backup
        if dest is not None and not os.path.isabs(dest):
            raise UsageError("dest must be an absolute path: %s" % dest)
        self.dest = os.path.normpath(dest) if dest else None
        self.include = list(include or ())
        self.delete_extra = delete_extra
        self.numeric_owner = numeric_owner
        self.preserve_special = preserve_special
        self.target_database = target_database
        self.connection = dict(connection or {})
        self.lock_timeout = lock_timeout


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
    if metadata is not None:
        return os.path.dirname(os.path.dirname(metadata["_metadata_path"]))
    return request.backup_dir or os.path.dirname(os.path.dirname(artifact))


def safety_encryption(metadata, request):
    """(recipients, passphrase) for a safety backup: whoever could read the backup can read its safety copy."""
    recipients = list(((metadata or {}).get("encryption") or {}).get("recipients") or [])
    if not recipients and request.identities:
        recipients = [recipient_from_identity(identity) for identity in request.identities]
    return recipients, (None if recipients else request.passphrase)


def check_archive_path(name):
    """Refuse the names a crafted archive uses to escape: absolute, '..', '.', empty components, NUL."""
    if not name or name.startswith("/") or "\0" in name:
        raise IntegrityError("member %r has an absolute or empty path; refusing to restore it" % name,
                             stage="plan")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise IntegrityError("member %r has a '%s' component in its path; refusing to restore it" % (name, part),
                                 stage="plan")


def _parent(name):
    return name.rpartition("/")[0]


def _lexical_escape(link_dir, target, root):
    """Whether the relative symlink target, resolved from link_dir, leaves root (both archive paths)."""
    depth_root = len(root.split("/")) if root else 0
    parts = link_dir.split("/") if link_dir else []
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) <= depth_root:
                return True
            parts.pop()
        else:
            parts.append(part)
    return False


def _source_roots(header):
    roots = []
    for source in header.get("sources") or []:
        if isinstance(source, str) and os.path.isabs(source):
            roots.append(os.path.normpath(source).lstrip("/"))
    return roots


def _root_of(name, roots):
    best = None
    for root in roots:
        if (root == "" or name == root or name.startswith(root + "/")) and (best is None or len(root) > len(best)):
            best = root
    return best


class Plan:
    """What a restore will do, derived from the manifest alone: units, destinations, hostile entries refused."""

    def __init__(self, header, records, request):
        self.records = {}
        for record in records:
            check_archive_path(record.get("path", ""))
            self.records[record["path"]] = record
        self.dest = request.dest or "/"
        self.preserve_special = request.preserve_special
        self.roots = _source_roots(header)
        self.selected = self._select(records, request.include)
        self.units = [name for name in self.selected if _parent(name) not in self.selected]
        self.link_sources = self._link_sources()
        self._check_entries()

    def _select(self, records, include):
        if not include:
            return {record["path"]: record for record in records}
        globs = _Globs(include)
        selected = {}
        for record in records:  # manifest order: a directory comes before its content
            name = record["path"]
            if _parent(name) in selected or globs.matches("/" + name, name.rpartition("/")[2],
                                                          record["type"] == "dir"):
                selected[name] = record
        if not selected:
            raise NotFoundError("no path in the backup matches include %s" % ", ".join(include), stage="plan")
        return selected

    def _link_sources(self):
        """Files outside the selection that a selected hard link needs as its data."""
        needed = {}
        for name, record in self.selected.items():
            if record["type"] == "hardlink" and record.get("target") not in self.selected:
                needed.setdefault(record.get("target"), name)
        return needed

    def target(self, name):
        return os.path.join(self.dest, name)

    def _check_entries(self):
        for name, record in self.selected.items():
            kind = record.get("type")
            if kind not in ("file", "dir", "symlink", "hardlink"):
                raise IntegrityError("member %s is a %s; device nodes, fifos and sockets are never restored"
                                     % (name, kind), stage="plan")
            parent = _parent(name)
            if parent in self.selected and self.selected[parent]["type"] != "dir":
                raise IntegrityError("member %s lies below %s, which is a %s in the archive; refusing to write "
                                     "through it" % (name, parent, self.selected[parent]["type"]), stage="plan")
            mode = record.get("mode", 0)
            special = stat.S_ISUID if kind == "dir" else stat.S_ISUID | stat.S_ISGID
            if mode & special and not self.preserve_special:
                raise IntegrityError("member %s has the setuid or setgid bit (mode %04o); set preserve_special to "
                                     "restore it" % (name, mode), stage="plan")
            if kind == "symlink":
                self._check_symlink(name, record.get("target") or "")
            elif kind == "hardlink":
                self._check_hardlink(name, record.get("target") or "")

    def _check_symlink(self, name, target):
        if not target or "\0" in target:
            raise IntegrityError("member %s is a symlink with an empty target" % name, stage="plan")
        if target.startswith("/"):
            return  # kept verbatim, as GNU tar and restic do; nothing is ever written through it
        root = _root_of(name, self.roots)
        if root is None or _lexical_escape(_parent(name), target, root):
            raise IntegrityError("member %s is a symlink to %s, which points out of the restored tree %s"
                                 % (name, target, "/" + (root or "")), stage="plan")

    def _check_hardlink(self, name, target):
        try:
            check_archive_path(target)
        except IntegrityError:
            raise IntegrityError("member %s is a hard link to %s, which points out of the restored tree"
                                 % (name, target), stage="plan") from None
        if self.records.get(target, {}).get("type") != "file":
            raise IntegrityError("member %s is a hard link to %s, which is not a file of the archive"
                                 % (name, target), stage="plan")


def _scan(path):
    """{relative name: lstat} of everything under the directory path, without following symlinks."""
    found = {}
    device = os.lstat(path).st_dev
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(os.path.join(path, relative) if relative else path) as listing:
            for entry in listing:
                name = relative + "/" + entry.name if relative else entry.name
                st = entry.stat(follow_symlinks=False)
                found[name] = st
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != device:
                        raise UsageError("%s is a mount point inside the restored path %s; restore below it or "
                                         "unmount it first" % (os.path.join(path, name), path), stage="plan")
                    pending.append(name)
    return found


class LiveTree:
    """The targets as they are now: lstat of every path under each unit, read once."""

    def __init__(self, plan):
        self.plan = plan
        self.stats = {}
        self.extras = {}
        for unit in plan.units:
            self._check_parents(unit)
            target = plan.target(unit)
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                continue
            self.stats[unit] = st
            if stat.S_ISDIR(st.st_mode):
                for relative, child in _scan(target).items():
                    name = unit + "/" + relative
                    self.stats[name] = child
                    if name not in plan.selected:
                        self.extras[name] = child

    def _check_parents(self, unit):
        """A unit's parents that the archive knows as directories must not be symlinks on the host."""
        parent = _parent(unit)
        while parent:
            if parent in self.plan.records:
                path = self.plan.target(parent)
                if os.path.islink(path):
                    raise UsageError("cannot restore %s: its parent %s is a symbolic link on this host; include "
                                     "the parent in the restore or remove the link" % (self.plan.target(unit), path),
                                     stage="plan")
            parent = _parent(parent)

    def differences(self, delete_extra, owners):
        added, changed = [], []
        for name, record in self.plan.selected.items():
            st = self.stats.get(name)
            if st is None:
                added.append(name)
            elif self._differs(record, st, owners):
                changed.append(name)
        removed = sorted(self.extras) if delete_extra else []
        return {"added": added, "changed": changed, "removed": removed}

    def _differs(self, record, st, owners):
        """The quick check of rsync: type, mode, owner, size and mtime (ns); content is not read."""
        kind = record["type"]
        if kind == "hardlink":
            first = self.stats.get(record["target"])
            same_inode = first is not None and (st.st_dev, st.st_ino) == (first.st_dev, first.st_ino)
            return not (stat.S_ISREG(st.st_mode) and same_inode)
        if not _KINDS[kind](st.st_mode):
            return True
        if kind == "symlink":
            return os.readlink(self.plan.target(record["path"])) != record["target"]
        if stat.S_IMODE(st.st_mode) != record["mode"]:
            return True
        if owners and (st.st_uid, st.st_gid) != (record["uid"], record["gid"]):
            return True
        return kind == "file" and (st.st_size != record["size"] or st.st_mtime_ns != record["mtime_ns"])


def _owner_resolver(numeric):
    """uid/gid to apply: the recorded numbers, or (numeric_owner false) the local ids of the recorded names."""
    if numeric:
        return lambda member, record: (record["uid"], record["gid"])
    users, groups = {}, {}

    def lookup(cache, getter, name, fallback):
        if name not in cache:
            try:
                cache[name] = getter(name)[2]
            except KeyError:
                cache[name] = None
        found = cache[name] if name else None
        return fallback if found is None else found

    return lambda member, record: (lookup(users, pwd.getpwnam, member.uname, record["uid"]),
                                   lookup(groups, grp.getgrnam, member.gname, record["gid"]))


class Unit:
    """One top-level restored path: its staging directory, and where the replaced tree is kept."""

    def __init__(self, name, target):
        self.name = name
        self.target = target
        self.parent, self.base = os.path.split(target)
        self.staging = None
        self.lock_fd = None
        self.old = None
        self.swapped = False

    @property
    def staged(self):
        return os.path.join(self.staging, self.base)

    def make_staging(self):
        self.staging = tempfile.mkdtemp(prefix="." + self.base + STAGING_MARKER, dir=self.parent)
        # Held until the staging directory is gone: a cleanup by a concurrent restore leaves it alone.
        self.lock_fd = os.open(self.staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)

    def swap_in(self):
        if os.path.lexists(self.target):
            self.old = tempfile.mkdtemp(prefix="." + self.base + OLD_MARKER, dir=self.parent)
            os.rmdir(self.old)  # only the unique name is wanted; rename() puts the live tree there
            os.rename(self.target, self.old)
        try:
            os.rename(self.staged, self.target)
        except BaseException:
            if self.old is not None:
                os.rename(self.old, self.target)
                self.old = None
            raise
        self.swapped = True

    def swap_back(self):
        if not self.swapped:
            return
        os.rename(self.target, self.staged)
        if self.old is not None:
            os.rename(self.old, self.target)
            self.old = None
        self.swapped = False

    def remove_staging(self):
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def sync_filesystem(path):
    """syncfs(2) of the filesystem holding path: one call instead of an fsync per restored file."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
    finally:
        os.close(fd)


def clean_leftovers(target):
    """Undo what a killed restore of target left: staging directories, and a live tree moved aside."""
    parent, base = os.path.split(target)
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return []
    cleaned = []
    for name in sorted(names):
        path = os.path.join(parent, name)
        if name.startswith("." + base + STAGING_MARKER):
            if _unlocked(path):
                shutil.rmtree(path, ignore_errors=True)
                cleaned.append(path)
        elif name.startswith("." + base + OLD_MARKER):
            if not os.path.lexists(target):
                os.rename(path, target)  # killed between the two renames of a swap: put the old tree back
            else:
                shutil.rmtree(path, ignore_errors=True)
            cleaned.append(path)
    return cleaned


def _unlocked(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class Extractor:
    """Streams the archive into the units' staging directories, checking every member against the manifest."""

    def __init__(self, plan, units, owners, numeric_owner):
        self.plan = plan
        self.units = units
        self.owners = owners
        self.owner_of = _owner_resolver(numeric_owner)
        self.records = plan.records
        self.selected = plan.selected
        self.staged_dirs = {}
        self.seen = set()
        self.written = {}
        self.hashed = []  # the records of the files written, in the order of the hasher's keys
        self.hash_last = None
        self.directories = []
        self.counts = {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0}
        self.now_ns = time.time_ns()

    def staged_path(self, name):
        """Where an archive path is built: <staging>/<unit base>/<rest>, through the staged directory above it."""
        parent, _sep, base = name.rpartition("/")
        directory = self.staged_dirs.get(parent)
        if directory is not None:
            return directory + "/" + base
        unit = name
        while unit not in self.units:
            unit = _parent(unit)
        return self.units[unit].staged + name[len(unit):]

    def run(self, payload, manifest_sha256):
        """Extract the payload of a PayloadProcess, whose hasher checks every file's content."""
        tar = TarReader(payload)
        if hashlib.sha256(manifest_member(tar)).hexdigest() != manifest_sha256:
            raise IntegrityError("the manifest changed since the restore was planned (the artifact was replaced?)",
                                 stage="manifest")
        self.hash_last = payload.hash_last
        for member in tar:
            self._member(tar, member)
        payload.drain()
        self._finish(payload.digests())

    def _member(self, tar, member):
        kind = _TYPEFLAGS.get(member.typeflag, "other")
        name = member.name.rstrip("/") if kind == "dir" else member.name
        record = self.records.get(name)
        if record is None:
            check_archive_path(name)
            raise IntegrityError("member %s is not in the manifest; refusing to restore it" % name, stage="member")
        if record["type"] != kind:
            raise IntegrityError("member %s is a %s, the manifest says %s" % (name, kind, record["type"]),
                                 stage="member")
        if name in self.seen:
            raise IntegrityError("member %s appears twice in the archive" % name, stage="member")
        self.seen.add(name)
        if kind == "file":
            if member.size != record["size"]:
                raise IntegrityError("member %s holds %d bytes, the manifest says %d"
                                     % (name, member.size, record["size"]), stage="member")
        elif kind != "dir" and member.linkname != record.get("target"):
            raise IntegrityError("member %s links to %s, the manifest says %s"
                                 % (name, member.linkname, record.get("target")), stage="member")
        if name in self.selected:
            self._create(tar, member, record, name, self.staged_path(name))
        elif name in self.plan.link_sources:
            unit = self.units[self._unit_of(self.plan.link_sources[name])]
            self._write_file(tar, member, record, os.path.join(unit.staging, ".link-source-%d" % len(self.written)))

    def _unit_of(self, name):
        while name not in self.units:
            name = _parent(name)
        return name

    def _create(self, tar, member, record, name, path):
        kind = record["type"]
        if kind == "file":
            self._write_file(tar, member, record, path)
            self.counts["files"] += 1
        elif kind == "dir":
            os.mkdir(path, 0o700)  # opened up once everything below it is written
            self.directories.append((path, member, record))
            self.staged_dirs[name] = path
            self.counts["dirs"] += 1
        elif kind == "symlink":
            os.symlink(record["target"], path)
            if self.owners:
                os.lchown(path, *self.owner_of(member, record))
            os.utime(path, ns=(self.now_ns, record["mtime_ns"]), follow_symlinks=False)
            self.counts["symlinks"] += 1
        else:
            source = self.written.get(record["target"])
            if source is None:
                raise IntegrityError("member %s is a hard link to %s, which does not come before it in the "
                                     "archive" % (name, record["target"]), stage="member")
            os.link(source, path, follow_symlinks=False)
            self.counts["hardlinks"] += 1

    def _write_file(self, tar, member, record, path):
        """Create the file and write the member's data, which the hasher hashes under the file's number."""
        key, read, hash_last = len(self.hashed), tar.read, self.hash_last
        self.hashed.append(record)
        fd = os.open(path, _CREATE_FLAGS, 0o600)
        try:
            chunk = read(BLOCK_SIZE)
            while chunk:
                hash_last(key)
                write_all(fd, chunk)
                chunk = read(BLOCK_SIZE)
            if self.owners:
                os.fchown(fd, *self.owner_of(member, record))
            os.fchmod(fd, record["mode"])
            os.utime(fd, ns=(self.now_ns, record["mtime_ns"]))
        finally:
            os.close(fd)
        self.written[record["path"]] = path
        self.counts["bytes"] += record["size"]

    def _finish(self, digests):
        mismatched = sorted(record["path"] for key, record in enumerate(self.hashed)
                            if digests.get(key, EMPTY_SHA256) != record["sha256"])
        if mismatched:
            raise IntegrityError("member %s does not match its SHA-256 in the manifest (%d member(s) differ); "
                                 "nothing was restored" % (mismatched[0], len(mismatched)), stage="member")
        wanted = set(self.plan.selected) | set(self.plan.link_sources)
        missing = sorted(wanted - self.seen)
        if missing:
            raise IntegrityError("%d manifest entries are missing from the archive, first %s; nothing was restored"
                                 % (len(missing), missing[0]), stage="member")

    def set_directory_metadata(self):
        """Deepest first: setting a directory's mtime must come after everything is created inside it."""
        for path, member, record in reversed(self.directories):
            if self.owners:
                os.chown(path, *self.owner_of(member, record), follow_symlinks=False)
            os.chmod(path, record["mode"], follow_symlinks=False)
            os.utime(path, ns=(self.now_ns, record["mtime_ns"]), follow_symlinks=False)


def _merge_extras(live, extractor):
    """Without delete_extra, what exists only on the host joins the staged tree (hard links: nothing is copied)."""
    created_dirs = []
    for name in sorted(live.extras, key=lambda item: item.split("/")):
        parent_staged = extractor.staged_path(_parent(name))
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
        for unit in self.plan.units:
            clean_leftovers(self.plan.target(unit))
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
        try:
            extractor = self._stage(units)
            for parent in sorted({unit.parent for unit in units.values()}):
                sync_filesystem(parent)  # the new trees are durable before the old ones go
            for unit in units.values():
                unit.swap_in()
        except OSError as exc:
            self._roll_back(units)
            raise storage_error(exc, exc.filename or self.plan.dest) from exc
        except BaseException:
            self._roll_back(units)
            raise
        return extractor.counts, self._finish_swap(units)

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
