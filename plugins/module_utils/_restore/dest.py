# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a file restore works: dest resolved once, then every directory opened by descriptor, one component at a
time, never through a symbolic link; a directory or link another user owns is refused unless allowed.

Another user who owns a directory on the way can rename it and put a link in its place at any moment; a restore
that re-walked path names would then write, rename or hard-link wherever the link points. Descriptors opened once
stay on the directories that were checked."""

from __future__ import annotations

import errno
import os
import pwd
import stat

from .._errors import UsageError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's path resolution


def _owner_name(uid):
    try:
        return "%s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        return "uid %d" % uid


def open_below(dir_fd, relative):
    """Descriptor of the directory relative (a/b/c) below dir_fd, each component opened without following a link."""
    fd = dir_fd
    for part in relative.split("/") if relative else []:
        try:
            opened = os.open(part, DIR_FLAGS, dir_fd=fd)
        finally:
            if fd != dir_fd:
                os.close(fd)
        fd = opened
    return os.dup(fd) if fd == dir_fd else fd


def remove_tree(dir_fd, name):
    """rm -r of name in dir_fd, never following a link (shutil.rmtree takes a dir_fd only from Python 3.11 on)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as listing:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
        for child, is_dir in entries:
            if is_dir:
                remove_tree(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


class Places:
    """The restore's directories by absolute path, each opened once (from '/', component by component, without
    following a link, its owner checked) and kept open until close()."""

    def __init__(self, dest, allow_foreign_owner=False):
        self.allow_foreign_owner = allow_foreign_owner
        self.euid = os.geteuid()
        self.fds = {}
        self.dest = self._resolve(dest)

    def _check_owner(self, st, path, what="directory"):
        if st.st_uid in (0, self.euid) or self.allow_foreign_owner:
            return
        raise UsageError("cannot restore into %s: the %s is owned by %s, another user than root, who could swap "
                         "what the restore writes there for a link to anywhere; restore into a directory of root's, "
                         "or set allow_foreign_owner: true (lifeboat restore --allow-foreign-owner) if that user is "
                         "trusted" % (path, what, _owner_name(st.st_uid)), stage="plan")

    def _resolve(self, dest):
        """The real path of dest, its links followed here once (each owned by root or this user); a part that does
        not exist yet is kept as given: the restore creates it."""
        done, parts, links = "/", [part for part in dest.split("/") if part], 0
        while parts:
            part = parts.pop(0)
            if part in (".", ".."):
                done = os.path.dirname(done) if part == ".." else done
                continue
            fd = self.open_dir(done)
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return os.path.join(done, part, *parts)
            path = os.path.join(done, part)
            if stat.S_ISLNK(st.st_mode):
                self._check_owner(st, path, "symbolic link")
                links += 1
                if links > _MAX_LINKS:
                    raise UsageError("dest %s has more than %d symbolic links in its path" % (dest, _MAX_LINKS),
                                     stage="plan")
                target = os.readlink(part, dir_fd=fd)
                done = "/" if target.startswith("/") else done
                parts = [item for item in target.split("/") if item] + parts
                continue
            self.open_dir(path)
            done = path
        return done

    def open_dir(self, path):
        """The descriptor of the directory at the absolute path; FileNotFoundError if it does not exist."""
        fd = self.fds.get(path)
        if fd is not None:
            return fd
        if path == "/":
            fd = os.open("/", DIR_FLAGS)
        else:
            parent, base = os.path.split(path)
            parent_fd = self.open_dir(parent)
            try:
                fd = os.open(base, DIR_FLAGS, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                link = stat.S_ISLNK(os.stat(base, dir_fd=parent_fd, follow_symlinks=False).st_mode)
                what = "a symbolic link" if link else "not a directory"
                raise UsageError("cannot restore below %s: it is %s on this host, and a restore never writes "
                                 "through one; restore with dest elsewhere, or replace it by a directory"
                                 % (path, what), stage="plan") from None
        try:
            self._check_owner(os.fstat(fd), path)
        except BaseException:
            os.close(fd)
            raise
        self.fds[path] = fd
        return fd

    def existing(self, path):
        """(descriptor of the deepest directory of path that exists, the names below it still missing)."""
        missing = []
        while True:
            try:
                return self.open_dir(path), missing
            except FileNotFoundError:
                path, base = os.path.split(path)
                missing.insert(0, base)

    def make_dirs(self, path, metadata=None):
        """Create what is missing of the directory path; returns [(parent descriptor, name)] of those created, for
        a roll-back. metadata(path) gives the (uid or None, gid, mode) to set on a new one, or None."""
        fd, missing = self.existing(path)
        current = path
        for _name in missing:
            current = os.path.dirname(current)
        created = []
        for name in missing:
            os.mkdir(name, 0o755, dir_fd=fd)
            created.append((fd, name))
            current = os.path.join(current, name)
            fd = self.open_dir(current)
            wanted = metadata(current) if metadata else None
            if wanted is not None:
                uid, gid, mode = wanted
                if uid is not None:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
        return created

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
