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

_KINDS = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}


class Plan:
    """What a restore will do, derived from the manifest alone: units, destinations, hostile entries refused."""

    def __init__(self, header, records, request):
        self.records = records_by_path(records)
        self.dest = request.dest or "/"
        self.selected = self._select(records, request.include)
        self.units = [name for name in self.selected if parent_of(name) not in self.selected]
        self.link_sources = self._link_sources()
        check_entries(header, self.records, self.selected, request.preserve_special)

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
