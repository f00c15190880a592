# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Units of a file restore: staged beside their live path on the same filesystem, swapped in by renames, swapped
back on failure; leftovers of a killed restore are put back."""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil

from .dest import DIR_FLAGS, remove_tree

STAGING_MARKER = ".lifeboat-staging-"
OLD_MARKER = ".lifeboat-old-"


class Unit:
    """One top-level restored path: its staging directory, and where the replaced tree is kept. Every name lives in
    the directory parent_fd holds, opened once: no rename re-walks a path another user could change. A unit never
    staged only moves the live path aside (delete_extra beside a directory that is restored in place)."""

    def __init__(self, name, target, parent_fd):
        self.name = name
        self.target = target
        self.parent, self.base = os.path.split(target)
        self.parent_fd = parent_fd
        self.staging = None
        self.staging_fd = None  # what the extraction writes through; its flock marks the staging as in use
        self.old = None
        self.swapped = False

    def _fresh_name(self, marker):
        while True:
            name = "." + self.base + marker + os.urandom(6).hex()
            try:
                os.mkdir(name, 0o700, dir_fd=self.parent_fd)
                return name
            except FileExistsError:
                continue

    def make_staging(self):
        self.staging = self._fresh_name(STAGING_MARKER)
        # Held until the staging directory is gone: a cleanup by a concurrent restore leaves it alone.
        self.staging_fd = os.open(self.staging, DIR_FLAGS, dir_fd=self.parent_fd)
        fcntl.flock(self.staging_fd, fcntl.LOCK_EX)

    def swap_in(self):
        try:
            os.stat(self.base, dir_fd=self.parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            self.old = self._fresh_name(OLD_MARKER)
            os.rmdir(self.old, dir_fd=self.parent_fd)  # only the unique name is wanted: the live tree goes there
            os.rename(self.base, self.old, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
        try:
            if self.staging_fd is not None:
                os.rename(self.base, self.base, src_dir_fd=self.staging_fd, dst_dir_fd=self.parent_fd)
        except BaseException:
            if self.old is not None:
                os.rename(self.old, self.base, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
                self.old = None
            raise
        self.swapped = True

    def swap_back(self):
        if not self.swapped:
            return
        if self.staging_fd is not None:
            os.rename(self.base, self.base, src_dir_fd=self.parent_fd, dst_dir_fd=self.staging_fd)
        if self.old is not None:
            os.rename(self.old, self.base, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
            self.old = None
        self.swapped = False

    def remove_old(self):
        """Remove the replaced tree, kept aside until every unit was swapped."""
        remove_tree(self.parent_fd, self.old)

    def remove_staging(self):
        if self.staging is not None:
            try:
                remove_tree(self.parent_fd, self.staging)
            except OSError:
                pass  # a leftover the next restore of this target removes
            self.staging = None
        if self.staging_fd is not None:
            os.close(self.staging_fd)
            self.staging_fd = None


def sync_filesystem(dir_fd):
    """syncfs(2) of the filesystem holding the directory dir_fd: one call instead of an fsync per restored file."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    if syncfs(dir_fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


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
