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
from .dest import DIR_FLAGS, open_below

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


def _parents(name):
    """The archive paths of the directories above name, outermost first."""
    parts = name.split("/")
    return ["/".join(parts[:count]) for count in range(1, len(parts))]


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

    def __init__(self, header, records, request, dest="/", catalogs=()):
        """dest: the real path restored into; catalogs: real paths of the catalogs the restore must leave alone."""
        self.records = {}
        for record in records:
            check_archive_path(record.get("path", ""))
            self.records[record["path"]] = record
        self.dest = dest
        self.preserve_special = request.preserve_special
        self.roots = _source_roots(header)
        self.selected = self._select(records, request.include)
        self._check_entries()
        self.skipped = []
        self.chain = set()  # the directories holding a catalog: restored in place, never swapped
        self.in_place = []  # those of them that the backup has
        self.tops = [name for name in self.selected if parent_of(name) not in self.selected]
        self.units = self._split(self.tops, [self._archive_name(path) for path in catalogs])
        self.link_sources = self._link_sources()

    def _archive_name(self, path):
        """The archive path that lands on the real path (None: not below dest)."""
        if self.dest == "/":
            return path.lstrip("/") or None
        return path[len(self.dest) + 1:] if path.startswith(self.dest + "/") else None

    def _split(self, tops, catalogs):
        """The units: a top that holds a catalog is restored below it, each of its entries on the way to the catalog
        a directory restored in place, its other entries units of their own; what lies in a catalog is left out."""
        catalogs = [name for name in catalogs if name]
        inside = [name for name in self.selected
                  if any(name == catalog or name.startswith(catalog + "/") for catalog in catalogs)]
        chain = {parent for catalog in catalogs for parent in _parents(catalog)
                 if any(parent == top or parent.startswith(top + "/") for top in tops)}
        inside += [name for name in chain if name in self.selected and self.selected[name]["type"] != "dir"]
        for name in inside:
            del self.selected[name]
        if inside:
            self.skipped = sorted(inside)
            self.tops = [top for top in tops if top in self.selected]
        self.in_place = sorted(name for name in chain if name in self.selected)
        self.chain = chain
        self.catalogs = set(catalogs)
        units = [name for name in self.selected if name not in chain
                 and (parent_of(name) not in self.selected or parent_of(name) in chain)]
        if not units and not self.in_place:
            raise UsageError("every path selected lies in the catalog %s, which a restore never writes into; "
                             "restore with dest elsewhere" % ", ".join("/" + name for name in catalogs), stage="plan")
        return units

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

    def catalog_warning(self):
        if not self.skipped:
            return None
        return ("%d path(s) of the backup lie in the catalog and were not restored, first %s: a restore never writes "
                "into the catalog" % (len(self.skipped), self.target(self.skipped[0])))

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


def scan(dir_fd, path):
    """{relative name: lstat} of everything below the directory dir_fd (at path, for messages), each directory
    opened from its parent's descriptor without following a link."""
    found = {}
    device = os.fstat(dir_fd).st_dev
    pending = [(os.dup(dir_fd), "")]
    try:
        while pending:
            fd, relative = pending.pop()
            try:
                with os.scandir(fd) as listing:
                    entries = [(entry.name, entry.stat(follow_symlinks=False)) for entry in listing]
                for base, st in entries:
                    name = relative + "/" + base if relative else base
                    found[name] = st
                    if stat.S_ISDIR(st.st_mode):
                        if st.st_dev != device:
                            raise UsageError("%s is a mount point inside the restored path %s; restore below it or "
                                             "unmount it first" % (os.path.join(path, name), path), stage="plan")
                        pending.append((os.open(base, DIR_FLAGS, dir_fd=fd), name))
            finally:
                os.close(fd)
    finally:
        for fd, _relative in pending:
            os.close(fd)
    return found


class LiveTree:
    """The targets as they are now: lstat of every path under each unit and of the directories restored in place,
    read once through the descriptors of places."""

    def __init__(self, plan, places, delete_extra):
        self.plan = plan
        self.places = places
        self.stats = {}
        self.extras = {}
        self.removals = []  # with delete_extra, what lies beside a directory restored in place and is not restored
        for name in plan.in_place:
            try:
                self.stats[name] = os.fstat(places.open_dir(plan.target(name)))
            except FileNotFoundError:
                continue
        if delete_extra:
            self.removals = self._beside_in_place()
        for unit in plan.units + self.removals:
            self._read_unit(unit)

    def _read_unit(self, unit):
        target = self.plan.target(unit)
        parent_fd, missing = self.places.existing(os.path.dirname(target))
        if missing:
            return
        try:
            st = os.stat(os.path.basename(target), dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        self.stats[unit] = st
        if unit not in self.plan.selected:
            self.extras[unit] = st
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(os.path.basename(target), DIR_FLAGS, dir_fd=parent_fd)
            try:
                found = scan(fd, target)
            finally:
                os.close(fd)
            for relative, child in found.items():
                name = unit + "/" + relative
                self.stats[name] = child
                if name not in self.plan.selected:
                    self.extras[name] = child

    def _beside_in_place(self):
        removals = []
        for directory in self.plan.chain:
            try:
                fd = self.places.open_dir(self.plan.target(directory))
            except FileNotFoundError:
                continue
            for base in sorted(os.listdir(fd)):
                name = directory + "/" + base
                if name not in self.plan.selected and name not in self.plan.chain and name not in self.plan.catalogs:
                    removals.append(name)
        return removals

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

    def _readlink(self, name):
        target = self.plan.target(name)
        fd = open_below(self.places.open_dir(self.plan.dest), os.path.dirname(name))
        try:
            return os.readlink(os.path.basename(target), dir_fd=fd)
        finally:
            os.close(fd)

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
            return self._readlink(record["path"]) != record["target"]
        if stat.S_IMODE(st.st_mode) != record["mode"]:
            return True
        if owners and (st.st_uid, st.st_gid) != (record["uid"], record["gid"]):
            return True
        return kind == "file" and (st.st_size != record["size"] or st.st_mtime_ns != record["mtime_ns"])
