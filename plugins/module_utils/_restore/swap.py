# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Units of a file restore: staged beside their live path on the same filesystem, swapped in by renames, swapped
back on failure. A unit's hidden names are chosen before anything is made, so the restore's journal can name them
(journal.py puts back what a killed restore left)."""

from __future__ import annotations

import ctypes
import os
import secrets

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
        self.staging = hidden_name(self.base, STAGING_MARKER)
        self.aside = hidden_name(self.base, OLD_MARKER)  # where swap_in moves the live tree
        self.staging_fd = None  # what the extraction writes through
        self.old = None
        self.swapped = False

    @property
    def staging_path(self):
        return os.path.join(self.parent, self.staging)

    @property
    def aside_path(self):
        return os.path.join(self.parent, self.aside)

    def make_staging(self):
        os.mkdir(self.staging, 0o700, dir_fd=self.parent_fd)
        self.staging_fd = os.open(self.staging, DIR_FLAGS, dir_fd=self.parent_fd)

    def swap_in(self):
        try:
            os.stat(self.base, dir_fd=self.parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            os.rename(self.base, self.aside, src_dir_fd=self.parent_fd, dst_dir_fd=self.parent_fd)
            self.old = self.aside
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
        if self.staging_fd is None:
            return
        os.close(self.staging_fd)
        self.staging_fd = None
        try:
            remove_tree(self.parent_fd, self.staging)
        except OSError:
            pass  # named by the journal: the next restore from the catalog removes it


def hidden_name(base, marker):
    """A hidden sibling's name for base, unique by a random suffix: .<base><marker><hex>."""
    return "." + base + marker + secrets.token_hex(6)


def sync_filesystem(dir_fd):
    """syncfs(2) of the filesystem holding the directory dir_fd: one call instead of an fsync per restored file."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    if syncfs(dir_fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
