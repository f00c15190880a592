# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extracting an archive's members into staging: created without following symlinks, each file checked against
the manifest while it is written."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import time

from .._errors import IntegrityError
from .._members import MemberCheck, parent_of
from .._tarstream import TarReader
from .._verify import manifest_member
from .payload import BLOCK_SIZE, EMPTY_SHA256, write_all

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


class Extractor:
    """Streams the archive into the units' staging directories, checking every member against the manifest.

    A backup of an incremental chain is extracted from each artifact of its chain, its own first: each gives the
    files the restored backup's manifest says it holds; hard links to a file an earlier artifact holds are made
    once every artifact was read (finish)."""

    def __init__(self, plan, units, owners, numeric_owner, held=None):
        self.plan = plan
        self.units = units
        self.owners = owners
        self.owner_of = _owner_resolver(numeric_owner)
        self.selected = plan.selected
        self.in_place = frozenset(plan.in_place)  # set on the live directory at the end, not staged
        self.staged_dirs = {}
        self.check = MemberCheck(plan.records, held)
        self.written = {}
        self.hashed = []  # the records of the files written from one artifact, in the order of the hasher's keys
        self.mismatched = []  # the files whose content differs from their SHA-256, of every artifact read
        self.links = []  # hard links whose file an earlier artifact of the chain holds, made by finish()
        self.hash_last = None
        self.directories = []
        self.counts = {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0}
        self.now_ns = time.time_ns()
        self.ids_used = set()  # (uid, gid) pairs given to restored entries

    def staged_path(self, name):
        """Where an archive path is built: (the unit's staging descriptor, <unit base>/<rest>). Below that
        descriptor every directory is one this restore made in its 0700 staging directory."""
        parent, _sep, base = name.rpartition("/")
        directory = self.staged_dirs.get(parent)
        if directory is not None:
            return directory[0], directory[1] + "/" + base
        unit = self.units[self.unit_of(name)]
        return unit.staging_fd, unit.base + name[len(unit.name):]

    def run(self, payload, manifest_sha256=None, holder=None):
        """Extract the payload of a PayloadProcess, whose hasher checks every file's content.

        manifest_sha256: of the manifest the restore was planned from, which must be this payload's; None for an
        earlier artifact of the chain (holder: its id), of which only the files the plan's manifest says it holds
        are taken."""
        tar = TarReader(payload)
        manifest = manifest_member(tar)
        if manifest_sha256 is not None and hashlib.sha256(manifest).hexdigest() != manifest_sha256:
            raise IntegrityError("the manifest changed since the restore was planned (the artifact was replaced?)",
                                 stage="manifest")
        self.hash_last = payload.hash_last
        self.hashed = []
        for member in tar:
            if manifest_sha256 is not None or self._held_by(member, holder):
                self._member(tar, member)
        payload.drain()
        digests = payload.digests()
        self.mismatched += [record["path"] for key, record in enumerate(self.hashed)
                            if digests.get(key, EMPTY_SHA256) != record["sha256"]]

    def _held_by(self, member, holder):
        record = self.plan.records.get(member.name)
        return record is not None and record["type"] == "file" and record.get("holder") == holder

    def _member(self, tar, member):
        name, record = self.check.member(member)
        if name in self.selected and name not in self.in_place:
            self._create(tar, member, record, name, self.staged_path(name))
        elif name in self.plan.link_sources:
            unit = self.units[self.unit_of(self.plan.link_sources[name])]
            self._write_file(tar, member, record, (unit.staging_fd, ".link-source-%d" % len(self.written)))

    def unit_of(self, name):
        while name not in self.units:
            name = parent_of(name)
        return name

    def _create(self, tar, member, record, name, place):
        kind = record["type"]
        dir_fd, path = place
        if kind == "file":
            self._write_file(tar, member, record, place)
            self.counts["files"] += 1
        elif kind == "dir":
            os.mkdir(path, 0o700, dir_fd=dir_fd)  # opened up once everything below it is written
            self.directories.append((place, member, record))
            self.staged_dirs[name] = place
            self.counts["dirs"] += 1
        elif kind == "symlink":
            os.symlink(record["target"], path, dir_fd=dir_fd)
            if self.owners:
                os.chown(path, *self._owner(member, record), dir_fd=dir_fd, follow_symlinks=False)
            os.utime(path, ns=(self.now_ns, record["mtime_ns"]), dir_fd=dir_fd, follow_symlinks=False)
            self.counts["symlinks"] += 1
        elif record["target"] in self.written:
            # the check of the member saw its target first, and the plan made sure that target is written
            self._link(record, place)
        else:  # its file is in an earlier artifact of the chain, read after this one
            self.links.append((record, place))

    def _link(self, record, place):
        source = self.written[record["target"]]
        os.link(source[1], place[1], src_dir_fd=source[0], dst_dir_fd=place[0], follow_symlinks=False)
        self.counts["hardlinks"] += 1

    def _write_file(self, tar, member, record, place):
        """Create the file and write the member's data, which the hasher hashes under the file's number."""
        key, read, hash_last = len(self.hashed), tar.read, self.hash_last
        self.hashed.append(record)
        fd = os.open(place[1], _CREATE_FLAGS, 0o600, dir_fd=place[0])
        try:
            chunk = read(BLOCK_SIZE)
            while chunk:
                hash_last(key)
                write_all(fd, chunk)
                chunk = read(BLOCK_SIZE)
            if self.owners:
                os.fchown(fd, *self._owner(member, record))
            os.fchmod(fd, record["mode"])
            os.utime(fd, ns=(self.now_ns, record["mtime_ns"]))
        finally:
            os.close(fd)
        self.written[record["path"]] = place
        self.counts["bytes"] += record["size"]

    def finish(self):
        """Once every artifact was read: each file matches its SHA-256, every path was seen, the last links made."""
        try:
            self.check.finish(set(self.plan.selected) | set(self.plan.link_sources), self.mismatched)
        except IntegrityError as exc:
            raise IntegrityError(exc.msg + "; nothing was restored", stage=exc.stage) from None
        for record, place in self.links:
            self._link(record, place)

    def set_directory_metadata(self):
        """Deepest first: setting a directory's mtime must come after everything is created inside it."""
        for (dir_fd, path), member, record in reversed(self.directories):
            if self.owners:
                os.chown(path, *self._owner(member, record), dir_fd=dir_fd, follow_symlinks=False)
            os.chmod(path, record["mode"], dir_fd=dir_fd, follow_symlinks=False)
            os.utime(path, ns=(self.now_ns, record["mtime_ns"]), dir_fd=dir_fd, follow_symlinks=False)

    def _owner(self, member, record):
        ids = self.owner_of(member, record)
        self.ids_used.add(ids)
        return ids

    def unknown_owners(self):
        """A warning naming the uids and gids given to restored files that have no name on this host, or None."""
        uids = sorted({uid for uid, _gid in self.ids_used if not _known(pwd.getpwuid, uid)})
        gids = sorted({gid for _uid, gid in self.ids_used if not _known(grp.getgrgid, gid)})
        if not uids and not gids:
            return None
        found = ["uid %s" % ", ".join(map(str, uids))] if uids else []
        found += ["gid %s" % ", ".join(map(str, gids))] if gids else []
        return ("restored files belong to %s, which %s no name on this host: a user or group created later with "
                "that id will own them (numeric_owner: false maps the names recorded in the backup instead)"
                % (" and ".join(found), "has" if len(uids) + len(gids) == 1 else "have"))


def _known(getter, number):
    try:
        getter(number)
        return True
    except KeyError:
        return False
