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
import tempfile


STAGING_MARKER = ".lifeboat-staging-"
OLD_MARKER = ".lifeboat-old-"


class Unit:
    """One top-level restored path: its staging directory, and where the replaced tree is kept."""

    def __init__(self, name, target):
        self.name = name
        self.target = target
        self.parent, self.base = os.path.split(target)
        self.staging = None
        self.lock_fd = None
        self.old = None
        self.swapped = False

    @property
    def staged(self):
        return os.path.join(self.staging, self.base)

    def make_staging(self):
        self.staging = tempfile.mkdtemp(prefix="." + self.base + STAGING_MARKER, dir=self.parent)
        # Held until the staging directory is gone: a cleanup by a concurrent restore leaves it alone.
        self.lock_fd = os.open(self.staging, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)

    def swap_in(self):
        if os.path.lexists(self.target):
            self.old = tempfile.mkdtemp(prefix="." + self.base + OLD_MARKER, dir=self.parent)
            os.rmdir(self.old)  # only the unique name is wanted; rename() puts the live tree there
            os.rename(self.target, self.old)
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
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


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
