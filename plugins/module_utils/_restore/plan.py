# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a file restore, from the manifest alone: what goes where, what differs from the live tree, and
whether any entry is hostile. Nothing is written before the whole plan checked out."""

from __future__ import annotations

import os
import stat

from .._errors import NotFoundError, UsageError
from .._members import check_entries, parent_of, records_by_path
from .._selection import Globs
from .dest import DIR_FLAGS, open_below

_KINDS = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}


def _parents(name):
    """The archive paths of the directories above name, outermost first."""
    parts = name.split("/")
    return ["/".join(parts[:count]) for count in range(1, len(parts))]


class Plan:
    """What a restore will do, derived from the manifest alone: units, destinations, hostile entries refused."""

    def __init__(self, header, records, request, dest="/", catalogs=()):
        """dest: the real path restored into; catalogs: real paths of the catalogs the restore must leave alone."""
        self.records = records_by_path(records)
        self.dest = dest
        self.selected = self._select(records, request.include)
        check_entries(header, self.records, self.selected, request.preserve_special)
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
