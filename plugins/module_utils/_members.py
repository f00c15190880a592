# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes a file archive restorable: its manifest's entries, checked before anything is written.

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
