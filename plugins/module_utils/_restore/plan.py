# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a file restore, from the manifest alone: what goes where, what differs from the live tree, and
whether any entry is hostile. Nothing is written before the whole plan checked out."""

from __future__ import annotations

import os
import stat

from .._errors import IntegrityError, NotFoundError, UsageError
from .._selection import Globs

_KINDS = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}


def check_archive_path(name):
    """Refuse the names a crafted archive uses to escape: absolute, '..', '.', empty components, NUL."""
    if not name or name.startswith("/") or "\0" in name:
        raise IntegrityError("member %r has an absolute or empty path; refusing to restore it" % name,
                             stage="plan")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise IntegrityError("member %r has a '%s' component in its path; refusing to restore it" % (name, part),
                                 stage="plan")


def parent_of(name):
    """The archive path of the directory holding name ('' at the top)."""
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
        self.units = [name for name in self.selected if parent_of(name) not in self.selected]
        self.link_sources = self._link_sources()
        self._check_entries()

    def _select(self, records, include):
        if not include:
            return {record["path"]: record for record in records}
        globs = Globs(include)
        selected = {}
        for record in records:  # manifest order: a directory comes before its content
            name = record["path"]
            if parent_of(name) in selected or globs.matches("/" + name, name.rpartition("/")[2],
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
            parent = parent_of(name)
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
        if root is None or _lexical_escape(parent_of(name), target, root):
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
        parent = parent_of(unit)
        while parent:
            if parent in self.plan.records:
                path = self.plan.target(parent)
                if os.path.islink(path):
                    raise UsageError("cannot restore %s: its parent %s is a symbolic link on this host; include "
                                     "the parent in the restore or remove the link" % (self.plan.target(unit), path),
                                     stage="plan")
            parent = parent_of(parent)

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
