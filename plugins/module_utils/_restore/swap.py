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
import shutil


STAGING_MARKER = ".lifeboat-staging-"
OLD_MARKER = ".lifeboat-old-"


class Unit:
    """One top-level restored path: its staging directory, and where the replaced tree is kept."""

    def __init__(self, name, target):
        self.name = name
        self.target = target
        self.parent, self.base = os.path.split(target)
        self.staging = hidden_name(target, STAGING_MARKER)
        self.aside = hidden_name(target, OLD_MARKER)  # where swap_in moves the live tree
        self.old = None
        self.swapped = False

    @property
    def staged(self):
        return os.path.join(self.staging, self.base)

    def make_staging(self):
        os.mkdir(self.staging, 0o700)

    def swap_in(self):
        if os.path.lexists(self.target):
            os.rename(self.target, self.aside)
            self.old = self.aside
        try:
            os.rename(self.staged, self.target)
        except BaseException:
            if self.old is not None:
                os.rename(self.old, self.target)
                self.old = None
            raise
        self.swapped = True

    def swap_back(self):
        if not self.swapped:
            return
        os.rename(self.target, self.staged)
        if self.old is not None:
            os.rename(self.old, self.target)
            self.old = None
        self.swapped = False

    def remove_staging(self):
        shutil.rmtree(self.staging, ignore_errors=True)


def hidden_name(target, marker):
    """A hidden sibling of target, unique by a random suffix: .<name><marker><hex>."""
    parent, base = os.path.split(target)
    return os.path.join(parent, "." + base + marker + secrets.token_hex(6))


def sync_filesystem(path):
    """syncfs(2) of the filesystem holding path: one call instead of an fsync per restored file."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
    finally:
        os.close(fd)
