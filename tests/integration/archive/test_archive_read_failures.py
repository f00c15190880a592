# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that vanish or fail to read between the walk and their read: the backup either fails with a clear message
and leaves nothing in the catalog, or is one that full verify passes and restore puts back.

Hard links: when the first link of a file is not stored, the next link of the same inode is (as GNU tar does).
A read error once a member's header is written pads the member, so the archive stays aligned.
"""

from __future__ import annotations

import errno
import glob
import os

import pytest

from testlib import KEY, backup, restore
from ansible_collections.lifeboat.backup.plugins.module_utils import _archive, _fileio, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import SourceError

SIZES = {"small": 1000, "large": _fileio.READ_SIZE + 4096}  # read ahead before the header / streamed after it


def _tree(root, size):
    """a/first, a/second, a/third: one inode; z.txt after them, to show the archive stays aligned."""
    source = root / "src"
    (source / "a").mkdir(parents=True)
    content = os.urandom(size)
    (source / "a" / "first").write_bytes(content)
    os.link(source / "a" / "first", source / "a" / "second")
    os.link(source / "a" / "first", source / "a" / "third")
    (source / "z.txt").write_text("after the links\n")
    return source, content


def _fail_open(monkeypatch, paths, action):
    """Make opening any of paths (for the backup's read or a hash) run action(path) first, then open."""
    real = _fileio.open_nofollow

    def opener(path):
        if path in paths:
            action(path)
        return real(path)
    monkeypatch.setattr(_archive, "open_nofollow", opener)
    monkeypatch.setattr(_fileio, "open_nofollow", opener)


def _vanish(path):
    """Remove the file the walk saw, keeping its directory's mtime: a tree otherwise as the walk saw it."""
    st = os.lstat(os.path.dirname(path))
    os.unlink(path)
    os.utime(os.path.dirname(path), ns=(st.st_atime_ns, st.st_mtime_ns))


def _refuse(path):
    raise PermissionError(errno.EACCES, "Permission denied", path)


def _verified_and_restored(tmp_path, result):
    """Full verify passes and restore puts the backup back; returns the restored source directory."""
    backups = os.path.dirname(os.path.dirname(result["path"]))
    assert _verify.verify(backup_dir=backups, backup_id=result["id"], level="full", key=KEY)["verified"]
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backups, result["id"], dest=str(dest), safety_backup=False)
    return dest / str(tmp_path / "src").lstrip("/")


@pytest.mark.parametrize("size", sorted(SIZES))
def test_first_link_vanishing_before_its_read_stores_the_next_link(tmp_path, monkeypatch, size):
    source, content = _tree(tmp_path, SIZES[size])
    _fail_open(monkeypatch, {str(source / "a" / "first")}, _vanish)
    result = backup(source, tmp_path / "backups")
    assert "%s vanished before it was read" % (source / "a" / "first") in result["warnings"]
    restored = _verified_and_restored(tmp_path, result)
    assert sorted(os.listdir(restored / "a")) == ["second", "third"]
    assert (restored / "a" / "second").read_bytes() == content
    assert os.path.samefile(restored / "a" / "second", restored / "a" / "third")
    assert (restored / "z.txt").read_text() == "after the links\n"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_unreadable_first_link_under_warn_stores_the_next_readable_one(tmp_path, monkeypatch, size):
    source, content = _tree(tmp_path, SIZES[size])
    refused = {str(source / "a" / "first"), str(source / "a" / "second")}
    _fail_open(monkeypatch, refused, _refuse)
    result = backup(source, tmp_path / "backups", on_unreadable="warn")
    for path in sorted(refused):
        assert "skipped unreadable %s: Permission denied" % path in result["warnings"]
    restored = _verified_and_restored(tmp_path, result)
    assert os.listdir(restored / "a") == ["third"]
    assert (restored / "a" / "third").read_bytes() == content
    # skip_unchanged hashes the tree the same way: the same links fail, the same one is stored
    again = backup(source, tmp_path / "backups", on_unreadable="warn", skip_unchanged=True)
    assert again["skipped_unchanged"] is True and again["id"] == result["id"]


def test_every_link_unreadable_under_warn_leaves_them_all_out(tmp_path, monkeypatch):
    source, _content = _tree(tmp_path, SIZES["small"])
    _fail_open(monkeypatch, {str(source / "a" / name) for name in ("first", "second", "third")}, _refuse)
    result = backup(source, tmp_path / "backups", on_unreadable="warn")
    restored = _verified_and_restored(tmp_path, result)
    assert os.listdir(restored / "a") == []
    assert (restored / "z.txt").read_text() == "after the links\n"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_unreadable_first_link_fails_the_backup_and_leaves_nothing(tmp_path, monkeypatch, size):
    source, content = _tree(tmp_path, SIZES[size])
    _fail_open(monkeypatch, {str(source / "a" / "first")}, _refuse)
    with pytest.raises(SourceError, match="cannot read %s: Permission denied; fix the permissions, exclude it, or "
                                          "set on_unreadable: warn" % (source / "a" / "first")):
        backup(source, tmp_path / "backups")
    assert not [path for path in glob.glob(str(tmp_path / "backups" / "**"), recursive=True) if os.path.isfile(path)
                and not path.endswith(".lock")]
    assert (source / "a" / "third").read_bytes() == content


class _FailingRead:
    """A file whose reads fail with EIO once `good` bytes were read, as on a bad sector."""

    def __init__(self, handle, good):
        self._handle, self._left = handle, good

    def readinto(self, view):
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        count = self._handle.readinto(view[:self._left])
        self._left -= count
        return count

    def fileno(self):
        return self._handle.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


GOOD = 300_000  # what reads before the error


def _failing_midway(monkeypatch, path):
    real = _fileio.open_nofollow
    monkeypatch.setattr(_archive, "open_nofollow",
                        lambda name: _FailingRead(real(name), GOOD) if name == path else real(name))


def test_read_error_midway_under_warn_pads_the_member_and_the_archive_stays_aligned(tmp_path, monkeypatch):
    source, content = _tree(tmp_path, SIZES["large"])
    _failing_midway(monkeypatch, str(source / "a" / "first"))
    result = backup(source, tmp_path / "backups", on_unreadable="warn")
    assert ("read error in %s after %d of its %d bytes (Input/output error): the rest of its stored copy is zeros"
            % (source / "a" / "first", GOOD, len(content))) in result["warnings"]
    assert _verify.verify(path=result["path"], level="checksum")["verified"]
    restored = _verified_and_restored(tmp_path, result)
    stored = content[:GOOD] + bytes(len(content) - GOOD)
    assert (restored / "a" / "first").read_bytes() == stored
    assert os.path.samefile(restored / "a" / "first", restored / "a" / "third")
    assert (restored / "z.txt").read_text() == "after the links\n"


def test_read_error_midway_fails_the_backup_and_leaves_nothing(tmp_path, monkeypatch):
    source, content = _tree(tmp_path, SIZES["large"])
    _failing_midway(monkeypatch, str(source / "a" / "first"))
    with pytest.raises(SourceError) as failed:
        backup(source, tmp_path / "backups")
    assert str(failed.value) == (
        "read: cannot read %s: Input/output error after %d of its %d bytes; nothing was backed up; fix the disk, "
        "exclude the file, or set on_unreadable: warn to store what can be read"
        % (source / "a" / "first", GOOD, len(content)))
    assert not [path for path in glob.glob(str(tmp_path / "backups" / "**"), recursive=True) if os.path.isfile(path)
                and not path.endswith(".lock")]
    assert (source / "a" / "first").read_bytes() == content
