# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes a file archive restorable: its manifest's entries, checked before anything is written, and each
member against its entry while the archive streams past.

Restore and full verify both call these checks, so a backup that passes full verify is one restore accepts.
"""

from __future__ import annotations

import os
import stat

from ._errors import IntegrityError


def check_archive_path(name):
    """Refuse the names a crafted archive uses to escape: absolute, '..', '.', empty components, NUL."""
    if not name or name.startswith("/") or "\0" in name:
        raise IntegrityError("member %r has an absolute or empty path; refusing to restore it" % name,
                             stage="plan")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise IntegrityError("member %r has a '%s' component in its path; refusing to restore it" % (name, part),
                                 stage="plan")


def records_by_path(records):
    """The manifest's records by archive path; each path must be safe and appear once."""
    found = {}
    for record in records:
        check_archive_path(record["path"])
        if record["path"] in found:
            raise IntegrityError("member %s appears twice in the manifest" % record["path"], stage="plan")
        found[record["path"]] = record
    return found


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


def check_entries(header, records, selected, preserve_special):
    """Refuse hostile entries among selected (a dict by path, a part of records): kinds never restored, members
    below a non-directory, setuid/setgid unless preserve_special, symlinks out of the tree, hard links to what is
    not a file of the archive."""
    roots = _source_roots(header)
    for name, record in selected.items():
        kind = record.get("type")
        if kind not in ("file", "dir", "symlink", "hardlink"):
            raise IntegrityError("member %s is a %s; device nodes, fifos and sockets are never restored"
                                 % (name, kind), stage="plan")
        parent = parent_of(name)
        if parent in selected and selected[parent]["type"] != "dir":
            raise IntegrityError("member %s lies below %s, which is a %s in the archive; refusing to write "
                                 "through it" % (name, parent, selected[parent]["type"]), stage="plan")
        mode = record.get("mode", 0)
        special = stat.S_ISUID if kind == "dir" else stat.S_ISUID | stat.S_ISGID
        if mode & special and not preserve_special:
            raise IntegrityError("member %s has the setuid or setgid bit (mode %04o); set preserve_special to "
                                 "restore it" % (name, mode), stage="plan")
        if kind == "symlink":
            _check_symlink(name, record.get("target") or "", roots)
        elif kind == "hardlink":
            _check_hardlink(name, record.get("target") or "", records)


def _check_symlink(name, target, roots):
    if not target or "\0" in target:
        raise IntegrityError("member %s is a symlink with an empty target" % name, stage="plan")
    if target.startswith("/"):
        return  # kept verbatim, as GNU tar and restic do; nothing is ever written through it
    root = _root_of(name, roots)
    if root is None or _lexical_escape(parent_of(name), target, root):
        raise IntegrityError("member %s is a symlink to %s, which points out of the restored tree %s"
                             % (name, target, "/" + (root or "")), stage="plan")


def _check_hardlink(name, target, records):
    try:
        check_archive_path(target)
    except IntegrityError:
        raise IntegrityError("member %s is a hard link to %s, which points out of the restored tree"
                             % (name, target), stage="plan") from None
    if records.get(target, {}).get("type") != "file":
        raise IntegrityError("member %s is a hard link to %s, which is not a file of the archive"
                             % (name, target), stage="plan")


class MemberCheck:
    """Each member of an archive against its manifest record, in the order the members stream past."""

    def __init__(self, records, held=None):
        """held: the paths whose members the archive holds (held_here), when not all of them: a hard link of an
        incremental backup may point to a file an earlier backup of its chain holds."""
        self.records = records
        self.held = held
        self.seen = set()

    def member(self, member):
        """(archive path, record) of a tarstream Member; refuses one the manifest does not describe exactly."""
        kind = member.kind
        name = member.name.rstrip("/") if kind == "dir" else member.name
        record = self.records.get(name)
        if record is None:
            check_archive_path(name)
            raise IntegrityError("member %s is not in the manifest" % name, stage="member")
        if record["type"] != kind:
            raise IntegrityError("member %s is a %s, the manifest says %s" % (name, kind, record["type"]),
                                 stage="member")
        if name in self.seen:
            raise IntegrityError("member %s appears twice in the archive" % name, stage="member")
        if kind == "file":
            if member.size != record["size"]:
                raise IntegrityError("member %s holds %d bytes, the manifest says %d"
                                     % (name, member.size, record["size"]), stage="member")
        elif kind != "dir" and member.linkname != record["target"]:
            raise IntegrityError("member %s links to %s, the manifest says %s"
                                 % (name, member.linkname, record["target"]), stage="member")
        if kind == "hardlink" and record["target"] not in self.seen \
                and (self.held is None or record["target"] in self.held):
            raise IntegrityError("member %s is a hard link to %s, which does not come before it in the archive"
                                 % (name, record["target"]), stage="member")
        self.seen.add(name)
        return name, record

    def finish(self, wanted, mismatched):
        """Once every member was read: mismatched names the files whose content differs from their SHA-256, and
        each path of wanted must have been seen."""
        if mismatched:
            raise IntegrityError("member %s does not match its SHA-256 in the manifest (%d member(s) differ)"
                                 % (min(mismatched), len(mismatched)), stage="member")
        missing = sorted(set(wanted) - self.seen)
        if missing:
            raise IntegrityError("%d manifest entries are missing from the archive, first %s"
                                 % (len(missing), missing[0]), stage="member")
