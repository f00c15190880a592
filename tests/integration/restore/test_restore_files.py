# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of files backups: byte-identical round trips, selection, delete_extra, check mode, failures."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

import testlib
from testlib import IDENTITY, KEY, RECIPIENT, backup, fingerprint, make_tree, mounted_tmpfs, restore
from ansible_collections.lifeboat.backup.plugins.module_utils import _archive, _catalog, _pipeline, _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._restore import extract, swap
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    BackupError, CryptoError, IntegrityError, StorageError, UsageError)

AS_ROOT = os.geteuid() == 0


def listing(directory):
    """Names in a directory: a restore must leave no staging or old tree behind."""
    return sorted(os.listdir(directory))


def rich_tree(root):
    """make_tree plus what it lacks: ns mtimes, other owners, odd modes, an empty dir with a mode."""
    make_tree(root)
    os.utime(os.path.join(root, "sub", "random.bin"), ns=(1_700_000_000_123_456_789, 1_650_000_000_987_654_321))
    os.chmod(os.path.join(root, "sub", "deeper"), 0o750)
    os.chmod(os.path.join(root, "empty"), 0o700)
    with open(os.path.join(root, "secret.key"), "wb") as handle:
        handle.write(b"k" * 33)
    os.chmod(os.path.join(root, "secret.key"), 0o400)
    if AS_ROOT:
        os.chown(os.path.join(root, "secret.key"), 1234, 5678)
        os.lchown(os.path.join(root, "link-to-text"), 4321, 8765)
        os.chown(os.path.join(root, "empty"), 99, 99)
    os.utime(os.path.join(root, "sub"), ns=(1_600_000_000_000_000_001, 1_600_000_000_000_000_001))
    return root


@pytest.fixture(name="tree")
def tree_fixture(tmp_path):
    """A rich tree, backed up; returns (source, backup_dir, backup result, fingerprint at backup time)."""
    source = rich_tree(str(tmp_path / "data" / "src"))
    made = backup([source], tmp_path / "backups")
    return source, tmp_path / "backups", made, fingerprint(source)


def spoil(source):
    """Changes of every kind: content, mode, a deleted file, a replaced symlink, a new file."""
    with open(os.path.join(source, "text.txt"), "a", encoding="utf-8") as handle:
        handle.write("changed\n")
    os.chmod(os.path.join(source, "run.sh"), 0o600)
    os.unlink(os.path.join(source, "sub", "random.bin"))
    os.unlink(os.path.join(source, "link-to-text"))
    os.symlink("/elsewhere", os.path.join(source, "link-to-text"))
    shutil.rmtree(os.path.join(source, "empty"))
    with open(os.path.join(source, "new.txt"), "w", encoding="utf-8") as handle:
        handle.write("new\n")


def test_round_trip_to_another_path_is_byte_identical(tree, tmp_path):
    source, backups, made, before = tree
    result = restore(backups, made["id"], dest=str(tmp_path / "out"))
    assert result["changed"] and result["restored"]["files"] == made["files"]
    assert result["restored"]["hardlinks"] == 1 and result["restored"]["symlinks"] == 2
    assert fingerprint(str(tmp_path / "out") + source) == before
    assert result["safety_backup_id"] is None  # nothing was there to replace
    assert listing(os.path.dirname(str(tmp_path / "out") + source)) == ["src"]


def test_in_place_restore_puts_back_everything_and_its_safety_backup_undoes_it(tree):
    source, backups, made, before = tree
    spoil(source)
    spoiled = fingerprint(source)
    result = restore(backups, made["id"])
    differences = result["differences"]
    prefix = source.lstrip("/") + "/"
    assert prefix + "sub/random.bin" in differences["added"] and prefix + "empty" in differences["added"]
    assert {prefix + "text.txt", prefix + "run.sh", prefix + "link-to-text"} <= set(differences["changed"]) | {
        prefix + "text.txt"}
    assert differences["removed"] == []
    kept = dict(before, **{"new.txt": spoiled["new.txt"]})  # without delete_extra, new files stay
    assert fingerprint(source) == kept
    assert listing(os.path.dirname(source)) == ["src"]
    safety = _catalog.locate(str(backups), result["safety_backup_id"])[1]
    assert safety["tags"] == ["safety"] and safety["job"] == "app"
    undo = restore(backups, result["safety_backup_id"], safety_backup=False, delete_extra=True)
    assert undo["changed"] and fingerprint(source) == spoiled


def test_second_restore_of_an_identical_tree_changes_nothing(tree):
    source, backups, made, before = tree
    spoil(source)
    restore(backups, made["id"], delete_extra=True)
    assert fingerprint(source) == before
    catalog = sorted(os.listdir(backups / "app"))
    again = restore(backups, made["id"], delete_extra=True)
    assert not again["changed"] and again["safety_backup_id"] is None
    assert sorted(os.listdir(backups / "app")) == catalog
    assert not restore(backups, made["id"], check_mode=True, delete_extra=True)["changed"]


def test_delete_extra_removes_what_the_backup_does_not_have(tree):
    source, backups, made, before = tree
    os.makedirs(os.path.join(source, "extra-dir", "inner"))
    with open(os.path.join(source, "extra-dir", "inner", "x"), "w", encoding="utf-8") as handle:
        handle.write("x")
    with open(os.path.join(source, "sub", "extra.txt"), "w", encoding="utf-8") as handle:
        handle.write("extra")
    inode = os.lstat(os.path.join(source, "sub", "extra.txt")).st_ino
    check = restore(backups, made["id"], check_mode=True, delete_extra=True)
    prefix = source.lstrip("/") + "/"
    assert check["differences"]["removed"] == sorted(prefix + name for name in (
        "extra-dir", "extra-dir/inner", "extra-dir/inner/x", "sub/extra.txt"))
    kept = restore(backups, made["id"], safety_backup=False)
    assert not kept["changed"]  # extras alone are no change when they are kept
    restore(backups, made["id"], safety_backup=False, check_mode=False)
    assert os.lstat(os.path.join(source, "sub", "extra.txt")).st_ino == inode
    deleted = restore(backups, made["id"], delete_extra=True, safety_backup=False)
    assert deleted["changed"] and fingerprint(source) == before


def test_kept_extras_are_the_same_inodes_after_a_restore(tree):
    source, backups, made, _before = tree
    with open(os.path.join(source, "sub", "extra.txt"), "w", encoding="utf-8") as handle:
        handle.write("extra")
    os.makedirs(os.path.join(source, "only-here"))
    os.chmod(os.path.join(source, "only-here"), 0o711)
    inode = os.lstat(os.path.join(source, "sub", "extra.txt")).st_ino
    os.chmod(os.path.join(source, "run.sh"), 0o700)
    restore(backups, made["id"], safety_backup=False)
    assert os.lstat(os.path.join(source, "sub", "extra.txt")).st_ino == inode
    assert stat.S_IMODE(os.lstat(os.path.join(source, "only-here")).st_mode) == 0o711
    assert stat.S_IMODE(os.lstat(os.path.join(source, "run.sh")).st_mode) == 0o755


def test_selective_restore_takes_only_matching_paths(tree, tmp_path):
    source, backups, made, before = tree
    out = str(tmp_path / "out")
    result = restore(backups, made["id"], dest=out, include=["*.txt"])
    restored = fingerprint(out + source)
    files = sorted(name for name, entry in restored.items() if entry[0] == "file")
    assert files == sorted(name for name in before if name.endswith(".txt"))
    for name in files:
        assert restored[name][4:6] == before[name][4:6]  # mtime and content
    assert result["restored"]["files"] + result["restored"]["hardlinks"] == len(files)


def test_selective_restore_of_a_directory_in_place(tree):
    source, backups, made, before = tree
    spoil(source)
    result = restore(backups, made["id"], include=[source + "/sub/**", source + "/sub"], safety_backup=False)
    assert result["changed"]
    now = fingerprint(source)
    for name, entry in before.items():
        if name.startswith("sub"):
            assert now[name][:6] == entry[:6]  # the hard link to text.txt, outside the selection, is not kept
    assert now["text.txt"] != before["text.txt"]  # outside the selection: untouched (hard link aside)
    assert "new.txt" in now


def test_include_matching_nothing_fails(tree):
    _source, backups, made, _before = tree
    with pytest.raises(Exception, match="no path in the backup matches"):
        restore(backups, made["id"], include=["*.nothing"])


def test_check_mode_reports_and_touches_nothing(tree):
    source, backups, made, _before = tree
    spoil(source)
    spoiled = fingerprint(source)
    parent = listing(os.path.dirname(source))
    catalog = sorted(os.listdir(backups / "app"))
    result = restore(backups, made["id"], check_mode=True, delete_extra=True)
    assert result["changed"]
    assert result["differences"]["removed"] == [source.lstrip("/") + "/new.txt"]
    assert fingerprint(source) == spoiled and listing(os.path.dirname(source)) == parent
    assert sorted(os.listdir(backups / "app")) == catalog


def test_selection_by_latest_and_deploy_skips_safety_backups(tmp_path):
    source = rich_tree(str(tmp_path / "src"))
    first = backup([source], tmp_path / "backups", deploy_id="v1")
    time.sleep(1.1)
    second = backup([source], tmp_path / "backups", deploy_id="v2")
    with open(os.path.join(source, "text.txt"), "a", encoding="utf-8") as handle:
        handle.write("more\n")
    request = _restore.RestoreRequest(backup_dir=str(tmp_path / "backups"), job="app", deploy_id="v1",
                                      key=KEY)
    assert _restore.select_backup(request)[1]["id"] == first["id"]
    result = restore(tmp_path / "backups", second["id"])
    assert result["safety_backup_id"]
    request = _restore.RestoreRequest(backup_dir=str(tmp_path / "backups"), job="app", latest=True,
                                      key=KEY)
    assert _restore.select_backup(request)[1]["id"] == second["id"]


def test_a_file_changed_while_backed_up_restores_as_stored(tmp_path, monkeypatch):
    """The digest in the manifest is that of the bytes stored, so a busy file restores and verifies."""
    source = str(tmp_path / "src")
    os.makedirs(source)
    target = os.path.join(source, "growing.log")
    with open(target, "wb") as handle:
        handle.write(b"a" * 1000)
    real_open = _archive.open_nofollow

    def open_then_change(path):
        handle = real_open(path)
        if path == target:
            with open(target, "r+b") as writer:
                writer.write(b"b" * 1000)  # same size, new content, while the backup reads it
        return handle

    monkeypatch.setattr(_archive, "open_nofollow", open_then_change)
    made = backup([source], tmp_path / "backups")
    assert any("growing.log changed while it was read" in warning for warning in made["warnings"])
    out = str(tmp_path / "out")
    restore(tmp_path / "backups", made["id"], dest=out)
    with open(out + target, "rb") as handle:
        assert handle.read() == b"b" * 1000


def test_restoring_a_database_backup_as_files_is_refused(tree):
    _source, backups, made, _before = tree
    request = _restore.RestoreRequest(backup_dir=str(backups), backup_id=made["id"], key=KEY)
    artifact, metadata = _restore.select_backup(request)
    with pytest.raises(UsageError, match="not a files backup"):
        _restore.run_restore_files(request, artifact, dict(metadata, kind="database"))


# Failure injection: afterwards every target hashes exactly as before, and nothing is left beside it.

def two_trees(tmp_path):
    first = rich_tree(str(tmp_path / "data" / "a"))
    second = rich_tree(str(tmp_path / "data" / "b"))
    made = backup([first, second], tmp_path / "backups")
    spoil(first)
    spoil(second)
    return first, second, made


@pytest.mark.skipif(not AS_ROOT, reason="chattr +i needs root")
def test_failure_in_the_middle_of_the_swap_rolls_the_renames_back(tmp_path):
    first, second, made = two_trees(tmp_path)
    before = (fingerprint(first), fingerprint(second))
    if subprocess.run(["chattr", "+i", second], check=False, capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        with pytest.raises(StorageError):
            restore(tmp_path / "backups", made["id"], safety_backup=False)
    finally:
        subprocess.run(["chattr", "-i", second], check=True)
    assert (fingerprint(first), fingerprint(second)) == before
    assert listing(str(tmp_path / "data")) == ["a", "b"]


@pytest.mark.skipif(not AS_ROOT, reason="chattr +i needs root")
def test_an_immutable_extra_file_fails_the_restore_cleanly(tree):
    source, backups, made, _before = tree
    spoil(source)
    extra = os.path.join(source, "new.txt")
    if subprocess.run(["chattr", "+i", extra], check=False, capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    spoiled = fingerprint(source)
    try:
        with pytest.raises(StorageError):
            restore(backups, made["id"], safety_backup=False)
    finally:
        subprocess.run(["chattr", "-i", extra], check=True)
    assert fingerprint(source) == spoiled
    assert listing(os.path.dirname(source)) == ["src"]


def test_a_corrupted_last_chunk_changes_nothing(tree):
    source, backups, made, _before = tree
    spoil(source)
    spoiled = fingerprint(source)
    with open(made["path"], "r+b") as handle:
        handle.seek(-5, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-5, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises((CryptoError, IntegrityError)) as failure:
        restore(backups, made["id"], safety_backup=False)
    assert "chunk" in str(failure.value)
    assert fingerprint(source) == spoiled
    assert listing(os.path.dirname(source)) == ["src"]


def test_a_file_that_does_not_match_the_manifest_changes_nothing(tree):
    """The artifact re-encrypted with one file's bytes changed: age opens it, the SHA-256 check refuses it."""
    source, backups, made, _before = tree
    spoil(source)
    spoiled = fingerprint(source)
    with open(made["path"], "rb") as handle:
        payload, _raw = _pipeline.open_payload(handle, "zstd", True, KEY)
        plain = b"".join(iter(lambda: payload.read(1 << 20), b""))
    tampered = plain.replace(b"hello world\n" * 2, b"HELLO world\n" * 2, 1)
    assert tampered != plain
    with _pipeline.ArtifactWriter(made["path"], "zstd", recipients=[RECIPIENT]) as writer:
        writer.write(tampered)
        written = writer.commit()
    _catalog.write_sidecars(made["path"], dict(made["metadata"], sha256=written["sha256"], size=written["size"]))
    with pytest.raises(IntegrityError, match="does not match its SHA-256"):
        restore(backups, made["id"], safety_backup=False)
    assert fingerprint(source) == spoiled
    assert listing(os.path.dirname(source)) == ["src"]


@pytest.mark.parametrize("which,message", [
    (0, "the process hashing the restored files ended"),
    (1, "the process decrypting and decompressing the artifact ended without a result (killed by signal 9)")])
def test_a_killed_hasher_or_decoder_changes_nothing(tmp_path, monkeypatch, which, message):
    source = rich_tree(str(tmp_path / "data" / "src"))
    with open(os.path.join(source, "zz-large.bin"), "wb") as handle:  # more than the ring: the decoder still runs
        handle.write(os.urandom(48 << 20))
    made = backup([source], tmp_path / "backups")
    spoil(source)
    spoiled = fingerprint(source)
    write_file = extract.Extractor._write_file

    def kill_then_write(extractor, *args):
        pid = extractor.hash_last.__self__._pids[which]  # pylint: disable=protected-access
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return write_file(extractor, *args)

    monkeypatch.setattr(extract.Extractor, "_write_file", kill_then_write)
    with pytest.raises(BackupError) as failure:
        restore(tmp_path / "backups", made["id"], safety_backup=False)
    assert message in str(failure.value)
    assert fingerprint(source) == spoiled
    assert listing(os.path.dirname(source)) == ["src"]


KILLED_RESTORE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore
request = _restore.RestoreRequest(backup_dir=sys.argv[2], backup_id=sys.argv[3], key=_age.Key(identities=[sys.argv[4]]),
                                  safety_backup=False)
_restore.restore_backup(request)
"""


def test_a_killed_restore_leaves_the_target_as_it_was_and_the_next_run_cleans_up(tmp_path):
    """SIGKILL while staging: the target is untouched; the hidden staging sibling goes with the next restore."""
    source = str(tmp_path / "data" / "src")
    os.makedirs(source)
    for number in range(8):
        with open(os.path.join(source, "big%d.bin" % number), "wb") as handle:
            handle.write(os.urandom(16 << 20))
    made = backup([source], tmp_path / "backups", compression="none")
    with open(os.path.join(source, "big0.bin"), "r+b") as handle:
        handle.write(b"changed")
    spoiled = fingerprint(source)
    process = subprocess.Popen([sys.executable, "-c", KILLED_RESTORE, testlib.TESTS,  # pylint: disable=consider-using-with
                                str(tmp_path / "backups"), made["id"], IDENTITY])
    parent = str(tmp_path / "data")
    deadline = time.monotonic() + 60
    while not any(swap.STAGING_MARKER in name for name in os.listdir(parent)):
        assert process.poll() is None and time.monotonic() < deadline, "the restore ended before it was killed"
        time.sleep(0.01)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert fingerprint(source) == spoiled
    leftovers = [name for name in listing(parent) if name != "src"]
    assert leftovers and all(name.startswith(".src" + swap.STAGING_MARKER) for name in leftovers)
    result = restore(tmp_path / "backups", made["id"], safety_backup=False)
    assert result["changed"] and listing(parent) == ["src"]
    assert [entry["state"] for entry in result["repaired"]] == ["started"]


@pytest.fixture(name="small_tmpfs")
def small_tmpfs_fixture(tmp_path):
    with mounted_tmpfs(tmp_path / "small", "8m") as mount_point:
        yield str(mount_point)


def test_a_full_filesystem_changes_nothing(small_tmpfs, tmp_path):
    source = os.path.join(small_tmpfs, "src")
    rich_tree(source)
    with open(os.path.join(source, "large.bin"), "wb") as handle:
        handle.write(os.urandom(3 << 20))
    made = backup([source], tmp_path / "backups")
    spoil(source)
    with open(os.path.join(small_tmpfs, "filler"), "wb") as handle:
        handle.write(b"\0" * ((8 << 20) - (3 << 20) - (1 << 20)))  # leaves less room than one more copy
    spoiled = fingerprint(source)
    with pytest.raises(StorageError, match="no space left"):
        restore(tmp_path / "backups", made["id"], safety_backup=False)
    assert fingerprint(source) == spoiled
    assert listing(small_tmpfs) == ["filler", "src"]
