"""Incremental backups: chains of GNU tar incremental archives. Each backup of a chain restores the tree of its
moment, through the engine and by hand with age, zstd and GNU tar; unchanged files are not stored; a missing or
damaged member fails restore and verify naming it, and nothing is written."""

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from testlib import (IDENTITY, KEY, backup, catalog_state, fingerprint, grows_while_read, make_tree, require_binary,
                     restore)

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _incremental, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (BackupError, IntegrityError,
                                                                              NotFoundError, UsageError)


def _incremental_backup(source, backup_dir, **options):
    return backup(source, backup_dir, incremental=True, **options)


def _change_step_one(source):
    """A file changed, a hard link deleted, a directory with a file added, a file renamed, a file turned into a
    link."""
    (source / "text.txt").write_text("changed text\n")
    os.unlink(source / "sub" / "hardlink.txt")
    (source / "new").mkdir()
    (source / "new" / "one.txt").write_text("one\n")
    os.rename(source / "ünïcode ñame.txt", source / "renamed.txt")
    os.unlink(source / "sub" / "random.bin")
    os.symlink("../text.txt", source / "sub" / "random.bin")


def _change_step_two(source):
    """A directory removed whole, a link turned into a directory, a mode changed, a hard link added."""
    shutil.rmtree(source / "new")
    os.unlink(source / "sub" / "random.bin")
    (source / "sub" / "random.bin").mkdir()
    (source / "sub" / "random.bin" / "inside").write_bytes(os.urandom(5000))
    os.chmod(source / "renamed.txt", 0o600)
    os.link(source / "text.txt", source / "second-link.txt")


@pytest.fixture
def chain(tmp_path):
    """Three backups of a chain of a changing tree: (source, catalog, [(backup result, fingerprint then)])."""
    source = make_tree(tmp_path / "src")
    backup_dir = tmp_path / "catalog"
    made = []
    for change in (None, _change_step_one, _change_step_two):
        if change:
            change(source)
        made.append((_incremental_backup(source, backup_dir), fingerprint(source)))
    return source, backup_dir, made


def test_a_chain_is_a_full_backup_then_backups_on_the_one_before(chain):
    _source, _backup_dir, made = chain
    ids = [result["id"] for result, _print in made]
    for level, (result, _print) in enumerate(made):
        metadata = result["metadata"]
        assert (metadata["level"], metadata["base"], metadata["chain"]) == (level, ids[0], ids[:level + 1])
    assert made[0][0]["metadata"]["full_reason"] == "the job has no incremental backup yet"
    assert "full_reason" not in made[1][0]["metadata"]
    # step one stored the changed text (and its new name's file), the new file and the renamed one
    assert made[1][0]["metadata"]["stored"]["files"] == 3
    assert "level 1 on %s" % ids[0] in made[1][0]["msg"]


def test_each_backup_of_the_chain_restores_the_tree_of_its_moment(chain, tmp_path):
    source, backup_dir, made = chain
    for result, expected in made:
        dest = tmp_path / ("restored-" + result["id"])
        dest.mkdir()
        restored = restore(backup_dir, result["id"], dest=str(dest))
        assert restored["changed"] is True
        assert fingerprint(dest / str(source).lstrip("/")) == expected, result["id"]


def test_the_chain_restores_by_hand_with_age_zstd_and_gnu_tar(chain, tmp_path):
    """The documented path: each artifact of the chain in order through age -d | zstd -d | tar -x -G."""
    for binary in ("age", "zstd", "tar", "sha256sum"):
        require_binary(binary)
    source, backup_dir, made = chain
    identity = tmp_path / "identity.txt"
    identity.write_text(IDENTITY + "\n")
    dest = tmp_path / "by-hand"
    dest.mkdir()
    for result, expected in made:
        subprocess.run(["sha256sum", "-c", "--quiet", result["id"] + ".sha256"], cwd=os.path.dirname(result["path"]),
                       check=True)
        subprocess.run("age -d -i %s %s | zstd -d | tar -x --listed-incremental=/dev/null -C %s"
                       % (identity, result["path"], dest), shell=True, check=True)
        by_hand = fingerprint(dest / str(source).lstrip("/"), seconds=True, dir_mtimes=False)
        assert by_hand == {path: _in_seconds(entry) for path, entry in expected.items()}, result["id"]


def _in_seconds(entry):
    """A fingerprint entry as GNU tar restores it: mtimes in whole seconds, none for directories."""
    if entry[0] == "file":
        return entry[:4] + (entry[4] // 10 ** 9,) + entry[5:]
    return entry[:4] if entry[0] == "dir" else entry


def test_unchanged_files_are_not_stored_and_an_unchanged_tree_stores_nothing(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(8 << 20))
    for number in range(50):
        (source / ("small-%02d.txt" % number)).write_text("small %d\n" % number)
    backup_dir = tmp_path / "catalog"
    first = _incremental_backup(source, backup_dir)
    (source / "small-07.txt").write_text("changed\n")
    second = _incremental_backup(source, backup_dir)
    third = _incremental_backup(source, backup_dir)
    assert second["metadata"]["stored"] == {"files": 1, "bytes": len("changed\n")}
    assert third["metadata"]["stored"] == {"files": 0, "bytes": 0}
    assert first["size"] > 8 << 20 and second["size"] < 64 << 10 and third["size"] < 64 << 10
    assert "51 unchanged file(s) not read" in third["msg"]


def test_new_content_under_an_old_mtime_is_seen_by_its_ctime(tmp_path):
    """A tool that puts the mtime back (touch -r, rsync -t, a restore) cannot make the ctime go back."""
    source = tmp_path / "src"
    source.mkdir()
    data = source / "data.txt"
    data.write_text("first version\n")
    before = os.stat(data)
    backup_dir = tmp_path / "catalog"
    _incremental_backup(source, backup_dir)
    time.sleep(0.01)
    data.write_text("other version\n")  # the same size
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = _incremental_backup(source, backup_dir)
    assert second["metadata"]["stored"]["files"] == 1
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backup_dir, second["id"], dest=str(dest))
    assert (dest / str(data).lstrip("/")).read_text() == "other version\n"


def test_max_chain_full_every_and_other_sources_start_a_new_chain(tmp_path):
    source = make_tree(tmp_path / "src")
    backup_dir = tmp_path / "catalog"
    levels = [_incremental_backup(source, backup_dir, max_chain=2)["metadata"] for _run in range(4)]
    assert [metadata["level"] for metadata in levels] == [0, 1, 2, 0]
    assert levels[3]["full_reason"] == "the chain holds 2 incremental backups, as many as max_chain allows"
    # the chain's full backup made two hours ago, with full_every 1h
    base = _catalog.find_backup(str(backup_dir), levels[3]["id"])
    moment = _catalog.utc_now().replace(microsecond=0) - datetime.timedelta(hours=2)
    base.update(created_at=_catalog.iso_utc(moment), local_time=_catalog.local_iso(moment))
    _catalog.write_metadata(base.pop("_metadata_path"), base)
    aged = _incremental_backup(source, backup_dir, full_every="1h")["metadata"]
    assert aged["level"] == 0
    assert aged["full_reason"] == "the chain's full backup %s is older than full_every (1h)" % levels[3]["id"]
    other = _incremental_backup([source, tmp_path / "src" / "sub"], backup_dir, exclude=["*.bin"])["metadata"]
    assert other["level"] == 0 and other["full_reason"].startswith("the sources or the selection rules changed")


def test_bad_chain_options_are_refused(tmp_path):
    source = make_tree(tmp_path / "src")
    with pytest.raises(UsageError, match="skip_unchanged is for full backups"):
        _incremental_backup(source, tmp_path / "catalog", skip_unchanged=True)
    with pytest.raises(UsageError, match="max_chain must be a whole number of at least 1, not 0"):
        _incremental_backup(source, tmp_path / "catalog", max_chain=0)
    with pytest.raises(UsageError, match="full_every '0d' is zero"):
        _incremental_backup(source, tmp_path / "catalog", full_every="0d")
    assert not (tmp_path / "catalog").exists() or not os.listdir(tmp_path / "catalog" / "app")


def _live_target(tmp_path, source):
    """A tree restores go into, with content of its own: it must stay as it is when a restore fails."""
    dest = tmp_path / "live"
    target = dest / str(source).lstrip("/")
    target.mkdir(parents=True)
    (target / "text.txt").write_text("what the host has now\n")
    return dest, fingerprint(dest, dir_mtimes=False)


def test_a_missing_member_fails_restore_and_verify_naming_it_and_nothing_is_written(chain, tmp_path):
    source, backup_dir, made = chain
    middle = made[1][0]
    os.rename(middle["path"], tmp_path / "moved-away")
    dest, before = _live_target(tmp_path, source)
    catalog_before = catalog_state(backup_dir)
    wanted = r"needs %s \(level 1\), which cannot be used: backup %s has metadata but its artifact is missing" % (
        middle["id"], middle["id"])
    with pytest.raises(NotFoundError, match=wanted):
        restore(backup_dir, made[2][0]["id"], dest=str(dest))
    assert fingerprint(dest, dir_mtimes=False) == before
    assert catalog_state(backup_dir) == catalog_before
    with pytest.raises(NotFoundError, match=wanted):
        _verify.verify(backup_dir=str(backup_dir), backup_id=made[2][0]["id"], level="full", key=KEY)
    # the full backup before the missing one restores and verifies as ever
    assert _verify.verify(backup_dir=str(backup_dir), backup_id=made[0][0]["id"], level="full", key=KEY)["verified"]


def test_a_damaged_member_fails_restore_and_verify_naming_it_and_nothing_is_written(chain, tmp_path):
    source, backup_dir, made = chain
    base = made[0][0]
    with open(base["path"], "r+b") as handle:  # a byte in the middle of the full backup's payload
        handle.seek(os.path.getsize(base["path"]) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    dest, before = _live_target(tmp_path, source)
    with pytest.raises(BackupError, match=r"%s needs %s \(level 0 of its chain\), which is damaged: .*; nothing "
                                          r"was restored" % (made[2][0]["id"], base["id"])):
        restore(backup_dir, made[2][0]["id"], dest=str(dest))
    assert fingerprint(dest, dir_mtimes=False) == before
    with pytest.raises(BackupError, match=r"%s needs %s \(level 0 of its chain\), which is damaged"
                                          % (made[2][0]["id"], base["id"])):
        _verify.verify(backup_dir=str(backup_dir), backup_id=made[2][0]["id"], level="full", key=KEY)
    with pytest.raises(IntegrityError, match=r"which is damaged: artifact .* does not match its checksum"):
        _verify.verify(backup_dir=str(backup_dir), backup_id=made[1][0]["id"], level="checksum")


def test_an_include_restore_takes_each_file_from_the_backup_that_holds_it(chain, tmp_path):
    source, backup_dir, made = chain
    newest = made[2][0]
    dest = tmp_path / "some"
    dest.mkdir()
    restore(backup_dir, newest["id"], dest=str(dest), include=["run.sh", "sub", "text.txt"])
    restored = dest / str(source).lstrip("/")
    assert sorted(os.listdir(restored)) == ["run.sh", "sub", "text.txt"]
    assert (restored / "text.txt").read_text() == "changed text\n"  # held by level 1
    assert (restored / "run.sh").read_bytes() == (source / "run.sh").read_bytes()  # held by level 0
    assert (restored / "sub" / "random.bin" / "inside").read_bytes() == \
        (source / "sub" / "random.bin" / "inside").read_bytes()  # held by level 2


def test_a_backup_killed_in_the_middle_leaves_the_chain_as_it_was(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "small.txt").write_text("small\n")
    backup_dir = tmp_path / "catalog"
    first = _incremental_backup(source, backup_dir, recipients=[])
    state = _incremental.state_path(str(backup_dir), "app")
    with open(state, "rb") as handle:
        state_before = handle.read()
    catalog_before = catalog_state(backup_dir / "app")
    with open(source / "large.bin", "wb") as handle:  # slow enough to be killed half-way
        for _chunk in range(64):
            handle.write(os.urandom(4 << 20))
    script = ("import sys; sys.path.insert(0, %r); from testlib import backup; backup(%r, %r, incremental=True)"
              % (os.path.dirname(os.path.dirname(os.path.dirname(__file__))), str(source), str(backup_dir)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    temporary = None
    for _tick in range(600):
        time.sleep(0.05)
        temporary = [name for name in os.listdir(backup_dir / "app") if name.startswith(".")]
        if temporary and os.path.getsize(backup_dir / "app" / temporary[0]) > 8 << 20:
            break
    assert temporary, "the backup never started writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with open(state, "rb") as handle:
        assert handle.read() == state_before
    assert {name: digest for name, digest in catalog_state(backup_dir / "app").items()
            if not name.startswith(".")} == catalog_before
    # the next run goes on from the same backup, and its tree restores
    after = _incremental_backup(source, backup_dir, recipients=[])
    assert after["metadata"]["chain"] == [first["id"], after["id"]]
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backup_dir, after["id"], dest=str(dest), key=None)
    assert fingerprint(dest / str(source).lstrip("/")) == fingerprint(source)


def test_the_state_never_names_a_backup_that_is_not_in_the_catalog(chain):
    _source, backup_dir, made = chain
    with open(_incremental.state_path(str(backup_dir), "app"), encoding="utf-8") as handle:
        state = json.load(handle)
    assert state["chain"] == [result["id"] for result, _print in made]
    assert os.stat(_incremental.state_path(str(backup_dir), "app")).st_mode & 0o077 == 0


def test_a_backup_of_the_chain_that_holds_no_file_restored_is_not_read(tmp_path):
    """The newest restores from its own artifact and the full backup when the one between holds only files changed
    again since; verify still checks the whole chain."""
    source = make_tree(tmp_path / "src")
    backup_dir = tmp_path / "catalog"
    made = []
    for version in ("one", "two"):
        made.append(_incremental_backup(source, backup_dir))
        (source / "text.txt").write_text("version %s\n" % version)
    made.append(_incremental_backup(source, backup_dir))
    with open(made[1]["path"], "r+b") as handle:  # damage the middle backup, which holds only text.txt
        handle.seek(os.path.getsize(made[1]["path"]) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backup_dir, made[2]["id"], dest=str(dest))
    assert fingerprint(dest / str(source).lstrip("/")) == fingerprint(source)
    with pytest.raises(BackupError, match=r"needs %s \(level 1 of its chain\), which is damaged" % made[1]["id"]):
        _verify.verify(backup_dir=str(backup_dir), backup_id=made[2]["id"], level="checksum")


def test_a_file_changed_while_an_incremental_reads_it_is_reported_and_stored_again(tmp_path, monkeypatch):
    source = make_tree(tmp_path / "src")
    backup_dir = tmp_path / "catalog"
    _incremental_backup(source, backup_dir)
    victim = str(source / "sub" / "random.bin")
    with open(victim, "ab") as handle:
        handle.write(b"changed before the second backup\n")
    grows_while_read(monkeypatch, victim)
    second = _incremental_backup(source, backup_dir)
    monkeypatch.undo()
    assert any("random.bin changed while it was read" in warning for warning in second["warnings"])
    assert _verify.verify(backup_dir=str(backup_dir), backup_id=second["id"], level="full", key=KEY)["verified"]
    third = _incremental_backup(source, backup_dir)  # what the second stored is not what the file holds now
    assert third["metadata"]["stored"]["files"] == 1
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backup_dir, third["id"], dest=str(dest))
    assert fingerprint(dest / str(source).lstrip("/")) == fingerprint(source)


def test_a_manifest_that_outgrows_its_estimated_room_is_written_again_in_a_larger_one(tmp_path):
    source = make_tree(tmp_path / "src")
    backup_dir = tmp_path / "catalog"
    _incremental_backup(source, backup_dir)
    path = _incremental.state_path(str(backup_dir), "app")
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    state["manifest"]["size"] = 1  # the estimate from it cannot hold the next manifest
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    (source / "text.txt").write_text("changed\n")
    second = _incremental_backup(source, backup_dir)
    assert second["metadata"]["level"] == 1
    dest = tmp_path / "restored"
    dest.mkdir()
    restore(backup_dir, second["id"], dest=str(dest))
    assert fingerprint(dest / str(source).lstrip("/")) == fingerprint(source)
