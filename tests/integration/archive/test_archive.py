"""archive + verify against the real tools: age, zstd, GNU tar, sha256sum; and every way a run can go wrong."""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from testlib import (IDENTITY, KEY, RECIPIENT, age_decrypt_cli, drop_root, fingerprint, grows_while_read,
                     lock_held_elsewhere, make_tree, mounted_tmpfs, require_binary, tree_digest)

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _archive, _catalog, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._fileio import hash_file
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import (
    CryptoError, IntegrityError, LockedError, SourceError, StorageError)


def _backup(source, backup_dir, **options):
    options.setdefault("recipients", [RECIPIENT])
    return _archive.run_archive(_archive.ArchiveRequest([str(source)], "app", backup_dir=str(backup_dir), **options))


def _catalog_files(backup_dir):
    paths = glob.glob(os.path.join(str(backup_dir), "**"), recursive=True)
    return sorted(os.path.relpath(path, backup_dir) for path in paths
                  if os.path.isfile(path) and not path.endswith(".lock"))


@pytest.mark.parametrize("compression,tool", [("zstd", ["zstd", "-d"]), ("gzip", ["gzip", "-d"]), ("none", ["cat"])])
def test_restores_by_hand_with_age_and_tar(tmp_path, compression, tool):
    require_binary("tar")
    source = make_tree(tmp_path / "src")
    result = _backup(source, tmp_path / "backups", compression=compression)
    assert result["path"].endswith({"zstd": ".tar.zst.age", "gzip": ".tar.gz.age", "none": ".tar.age"}[compression])
    plaintext = age_decrypt_cli(result["path"], IDENTITY, tmp_path)
    tar_stream = subprocess.run(tool, input=plaintext, capture_output=True, check=True).stdout
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-x", "-C", str(out)], input=tar_stream, check=True)
    assert (fingerprint(str(out) + str(source), seconds=True, dir_mtimes=False)
            == fingerprint(source, seconds=True, dir_mtimes=False))
    members = subprocess.run(["tar", "-t"], input=tar_stream, capture_output=True, check=True).stdout.decode()
    assert members.splitlines()[0] == ".lifeboat-manifest.json"
    check = subprocess.run(["sha256sum", "-c", os.path.basename(result["path"]).split(".")[0] + ".sha256"],
                           cwd=os.path.dirname(result["path"]), capture_output=True, text=True, check=True)
    assert ": OK" in check.stdout


def test_metadata_and_modes(tmp_path):
    source = make_tree(tmp_path / "src")
    result = _backup(source, tmp_path / "backups", tags=["pre-deploy"], deploy_id="v1", description="before v1",
                     compression_level=7)
    meta = result["metadata"]
    assert meta["compression"] == {"algorithm": "zstd", "level": 7}
    assert meta["id"] == result["id"] and meta["id"].startswith("app-")
    assert meta["kind"] == "files" and meta["sources"] == [str(source)]
    assert meta["encryption"] == {"method": "x25519", "recipients": [RECIPIENT]}
    assert meta["counts"] == {"dir": 6, "file": 6, "symlink": 2, "hardlink": 1}
    assert meta["tags"] == ["pre-deploy"] and meta["deploy_id"] == "v1"
    assert dict(meta["verification"], at=None) == {"state": "verified", "level": "full", "method": "read-back",
                                                   "at": None}
    assert meta["input_size"] == result["input_size"] > 200_000
    assert meta["ratio"] == round(meta["input_size"] / meta["size"], 3)
    assert IDENTITY not in json.dumps(meta)
    base = result["path"].split(".")[0]
    for path in (result["path"], base + ".json", base + ".sha256"):
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "backups").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "backups" / "app").st_mode & 0o777 == 0o700


def test_backup_dir_inside_the_source_is_never_archived(tmp_path):
    source = make_tree(tmp_path / "src")
    first = _backup(source, source / "backups")
    second = _backup(source, source / "backups")
    assert first["files"] == second["files"] == 6


def test_full_verify_and_source_compare(tmp_path):
    source = make_tree(tmp_path / "src")
    result = _backup(source, tmp_path / "backups")
    full = _verify.verify(backup_dir=str(tmp_path / "backups"), backup_id=result["id"], level="full",
                          key=KEY)
    assert full["verified"] and full["members"] == 15 and full["changed"] is True
    meta = _catalog.find_backup(str(tmp_path / "backups"), result["id"])
    assert (meta["verification"]["state"], meta["verification"]["level"]) == ("verified", "full")
    assert meta["verification"]["method"] == "verify"
    again = _verify.verify(backup_dir=str(tmp_path / "backups"), backup_id=result["id"], level="checksum")
    assert again["changed"] is False
    (source / "added.txt").write_text("new")
    (source / "sub" / "random.bin").write_text("changed")
    os.unlink(source / "run.sh")
    drift = _verify.verify(path=result["path"], level="source", key=KEY)
    assert drift["differences"]["added"] == [str(source / "added.txt").lstrip("/")]
    assert drift["differences"]["changed"] == [str(source / "sub" / "random.bin").lstrip("/")]
    assert drift["differences"]["removed"] == [str(source / "run.sh").lstrip("/")]


def test_skip_unchanged(tmp_path):
    source = make_tree(tmp_path / "src")
    first = _backup(source, tmp_path / "backups", skip_unchanged=True)
    second = _backup(source, tmp_path / "backups", skip_unchanged=True)
    assert second["changed"] is False and second["id"] == first["id"] and second["skipped_unchanged"]
    (source / "text.txt").write_text("new content")
    third = _backup(source, tmp_path / "backups", skip_unchanged=True)
    assert third["changed"] is True and third["id"] != first["id"]


def test_check_mode_writes_nothing(tmp_path):
    source = make_tree(tmp_path / "src")
    result = _archive.run_archive(_archive.ArchiveRequest([str(source)], "app", backup_dir=str(tmp_path / "b"),
                                                          recipients=[RECIPIENT], exclude=["*.bin"]),
                                  check_mode=True)
    assert result["changed"] is True and result["files"] == 5 and result["excluded"] == 1
    assert not (tmp_path / "b").exists()


def test_file_changed_while_read_is_reported_and_still_verifies(tmp_path, monkeypatch):
    source = make_tree(tmp_path / "src")
    grows_while_read(monkeypatch, str(source / "sub" / "random.bin"))
    result = _backup(source, tmp_path / "backups")
    assert any("random.bin changed while it was read" in warning for warning in result["warnings"])
    assert result["metadata"]["warnings"] == result["warnings"]
    full = _verify.verify(path=result["path"], level="full", key=KEY)
    assert full["verified"]


def test_one_read_per_file_and_no_temporary_file_left(tmp_path, monkeypatch):
    source = make_tree(tmp_path / "src")
    opened = []
    real_open = _archive.open_nofollow
    monkeypatch.setattr(_archive, "open_nofollow", lambda path: opened.append(path) or real_open(path))
    result = _backup(source, tmp_path / "backups")
    assert len(opened) == len(set(opened)) == result["files"] == 6
    assert not [name for name in os.listdir(tmp_path / "backups" / "app") if ".tmp-" in name]
    assert _verify.verify(path=result["path"], level="full", key=KEY)["verified"]


def _many_files(root, count):
    """A tree whose manifest spans many age chunks: names and contents that do not compress away."""
    for index in range(count):
        directory = root / ("d%02d" % (index % 50))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / ("%s.txt" % os.urandom(12).hex())).write_bytes(os.urandom(index % 300))
    return root


@pytest.mark.parametrize("compression,tool", [("zstd", ["zstd", "-d"]), ("gzip", ["gzip", "-d"]), ("none", ["cat"])])
@pytest.mark.parametrize("encrypted", [True, False])
def test_manifest_spanning_many_chunks_reads_by_hand(tmp_path, compression, tool, encrypted):
    """The manifest's room, filled last, sits before the members: the tools read the whole as one stream."""
    require_binary("tar")
    source = _many_files(tmp_path / "src", 3000)
    result = _backup(source, tmp_path / "backups", compression=compression,
                     recipients=[RECIPIENT] if encrypted else None)
    payload = age_decrypt_cli(result["path"], IDENTITY, tmp_path) if encrypted else open(result["path"], "rb").read()
    tar_stream = subprocess.run(tool, input=payload, capture_output=True, check=True).stdout
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-x", "-C", str(out)], input=tar_stream, check=True)
    assert tree_digest(str(out) + str(source)) == tree_digest(source)
    manifest = json.loads((out / ".lifeboat-manifest.json").read_text().splitlines()[0])
    assert manifest["entries"] == 3000 + 51
    check = subprocess.run(["sha256sum", "-c", result["id"] + ".sha256"], cwd=os.path.dirname(result["path"]),
                           capture_output=True, text=True, check=True)
    assert ": OK" in check.stdout
    assert _verify.verify(path=result["path"], level="full", key=KEY)["verified"]


def test_manifest_larger_than_its_estimate_backs_up_again_with_room_enough(tmp_path, monkeypatch):
    """Should the manifest compress worse than estimated, the backup is made again, and only once stored."""
    source = _many_files(tmp_path / "src", 500)
    real_rooms = _archive._manifest_rooms
    monkeypatch.setattr(_archive, "_manifest_rooms", lambda *args: (64, real_rooms(*args)[1]))
    opened = []
    real_open = _archive.open_nofollow
    monkeypatch.setattr(_archive, "open_nofollow", lambda path: opened.append(path) or real_open(path))
    result = _backup(source, tmp_path / "backups", recipients=None)
    assert len(opened) == 2 * 500 and len(set(opened)) == 500
    assert _catalog_files(tmp_path / "backups") == sorted(
        "app/" + name for name in (os.path.basename(result["path"]), result["id"] + ".json", result["id"] + ".sha256"))
    assert _verify.verify(path=result["path"], level="full")["verified"]


def test_missing_source_fails_before_anything_is_written(tmp_path):
    with pytest.raises(SourceError, match="does not exist|missing|no such"):
        _backup(tmp_path / "nope", tmp_path / "backups")
    assert not (tmp_path / "backups").exists()


def _run_as_nobody(code):
    # The system interpreter: a virtualenv under root's home is not readable by nobody.
    return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, check=True,
                          preexec_fn=drop_root)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
                    reason="needs root and /usr/bin/python3 to run the engine as another user")
def test_unreadable_file_fails_unless_warn():
    base = tempfile.mkdtemp(prefix="lifeboat-unreadable-")
    try:
        os.chmod(base, 0o777)
        source = os.path.join(base, "src")
        make_tree(source)
        subprocess.run(["chmod", "-R", "a+rX", source], check=True)
        os.chmod(os.path.join(source, "text.txt"), 0o600)  # owned by root: unreadable for nobody
        code = textwrap.dedent("""
            import sys, json
            sys.path.insert(0, %r)
            from ansible_collections.lifeboat.backup.plugins.module_utils import _archive
            from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError
            try:
                r = _archive.run_archive(_archive.ArchiveRequest([%r], "app", backup_dir=%r, on_unreadable=%r,
                                                                 compression="gzip"))
                print(json.dumps({"ok": True, "warnings": r["warnings"], "files": r["files"]}))
            except BackupError as exc:
                print(json.dumps({"ok": False, "msg": str(exc)}))
        """)
        collections = sys.path[0] if "pytest-collections" in sys.path[0] else [
            p for p in sys.path if p.endswith("pytest-collections")][0]
        failed = json.loads(_run_as_nobody(code % (collections, source, base + "/b1", "fail")).stdout)
        assert failed["ok"] is False and "cannot be read" in failed["msg"] and "on_unreadable: warn" in failed["msg"]
        assert not glob.glob(base + "/b1/app/*")
        warned = json.loads(_run_as_nobody(code % (collections, source, base + "/b2", "warn")).stdout)
        assert warned["ok"] is True and warned["files"] == 5
        assert any("text.txt" in warning for warning in warned["warnings"])
    finally:
        subprocess.run(["rm", "-rf", base], check=True)


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs: a real full disk."""
    with mounted_tmpfs(tmp_path / "small", "2m") as mountpoint:
        yield mountpoint


def test_full_disk_leaves_no_partial_file_and_older_backups_intact(tmp_path, small_fs):
    small = tmp_path / "small-src"
    small.mkdir()
    (small / "a.txt").write_text("small\n")
    older = _backup(small, small_fs)
    before = _catalog_files(small_fs)
    big = tmp_path / "big-src"
    big.mkdir()
    (big / "random.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    with pytest.raises(StorageError) as error:
        _backup(big, small_fs)
    assert "no space left" in str(error.value) and "partial file was removed" in str(error.value)
    assert _catalog_files(small_fs) == before
    assert _verify.verify(path=older["path"], level="full", key=KEY)["verified"]


def test_disk_full_at_the_end_with_the_manifest_room_still_a_hole(tmp_path, small_fs):
    """The members fit, the whole artifact does not: the room kept for the manifest is filled last."""
    source = _many_files(tmp_path / "src", 3000)
    size = _backup(source, tmp_path / "dry-run", recipients=None)["size"]
    older = _backup(tmp_path / "src" / "d00", small_fs, recipients=None)
    before = _catalog_files(small_fs)
    stat = os.statvfs(small_fs)
    with open(small_fs / "ballast", "wb") as handle:
        handle.write(bytes(stat.f_bavail * stat.f_frsize - (size - 40 * 1024)))
    with pytest.raises(StorageError, match="no space left.*partial file was removed"):
        _backup(source, small_fs, recipients=None)
    os.unlink(small_fs / "ballast")
    assert _catalog_files(small_fs) == before
    assert _verify.verify(path=older["path"], level="full")["verified"]


def test_sigkill_mid_backup_leaves_nothing_in_the_catalog(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    with open(source / "big.bin", "wb") as handle:
        for _chunk in range(64):
            handle.write(os.urandom(4 * 1024 * 1024))
    backups = tmp_path / "backups"
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.lifeboat.backup.plugins.module_utils import _archive\n"
            "_archive.run_archive(_archive.ArchiveRequest([%r], 'app', backup_dir=%r, compression='gzip',"
            " compression_level=9))\n") % ([p for p in sys.path if p.endswith("pytest-collections")][0],
                                           str(source), str(backups))
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not glob.glob(str(backups / "app" / ".*.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert glob.glob(str(backups / "app" / ".*.tmp-*")), "the run was killed before it started writing"
    assert _catalog.list_metadata(str(backups)) == []
    (source / "big.bin").unlink()
    (source / "small.txt").write_text("after the crash\n")
    result = _backup(source, backups)
    assert [meta["id"] for meta in _catalog.list_metadata(str(backups))] == [result["id"]]


def test_two_runs_at_once(tmp_path):
    source = make_tree(tmp_path / "src")
    backups = tmp_path / "backups"
    with lock_held_elsewhere(backups):
        with pytest.raises(LockedError) as error:
            _backup(source, backups)
        assert "locked by another run (pid %d" % os.getpid() in str(error.value)
    assert _backup(source, backups)["changed"] is True


def test_waits_for_the_lock_with_lock_timeout(tmp_path):
    source = make_tree(tmp_path / "src")
    backups = tmp_path / "backups"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; os.makedirs(%r, exist_ok=True)\n"
        "fd = os.open(%r, os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True)\n"
        "time.sleep(1.5)") % (str(backups), str(backups / ".lock"))], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    result = _backup(source, backups, lock_timeout=20)
    assert result["changed"] is True
    holder.wait()


def test_dead_holder_does_not_keep_the_lock(tmp_path):
    source = make_tree(tmp_path / "src")
    backups = tmp_path / "backups"
    backups.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, time\n"
        "fd = os.open(%r, os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid x')\n"
        "print('locked', flush=True); time.sleep(60)") % str(backups / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    assert _backup(source, backups)["changed"] is True


def _damage(path, offset):
    """Change one byte; inside base64 text, to another base64 letter, so the damage is always of one kind."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(b"B" if byte == b"A" else b"A")


@pytest.fixture
def big_backup(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "random.bin").write_bytes(os.urandom(400_000))  # several 64 KiB chunks after compression
    return _backup(source, tmp_path / "backups")


@pytest.mark.parametrize("where,message", [
    ("stanza", "no identity matches any recipient of this file (the file does not match its recorded checksum)"),
    ("mac", "header is corrupted (MAC mismatch)"),
    ("first", "chunk 1 of the payload failed authentication"),  # the manifest's room, sealed last
    ("middle", "chunk 4 of the payload failed authentication"),
    ("last", "chunk 7 of the payload failed authentication"),
])
def test_flipped_byte_is_found_by_full_verify(big_backup, where, message):
    path = big_backup["path"]
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(400)
    payload = head.index(b"\n", head.index(b"\n--- ") + 1) + 1 + 16  # after the MAC line and the nonce
    offset = {"stanza": head.index(b"X25519 ") + 10, "mac": head.index(b"\n--- ") + 8, "first": payload + 100,
              "middle": size // 2, "last": size - 10}[where]
    _damage(path, offset)
    with pytest.raises((CryptoError, IntegrityError)) as error:
        _verify.verify(path=path, level="full", key=KEY)
    assert os.path.basename(path) in str(error.value) and message in str(error.value)
    meta = json.load(open(path.split(".")[0] + ".json"))
    assert meta["verification"]["state"] == "failed"
    with pytest.raises(IntegrityError, match="does not match its checksum"):
        _verify.verify(path=path, level="checksum")


def test_damage_found_by_full_verify_is_recorded(big_backup):
    path = big_backup["path"]
    meta_path = path.split(".")[0] + ".json"
    with open(path, "r+b") as handle:
        data = handle.read()
    sidecar = path.split(".")[0] + ".sha256"
    _damage(path, len(data) // 2)
    with pytest.raises(IntegrityError, match="failed full verification.*chunk"):
        # skip the checksum level by refreshing the sidecar: only the payload's authentication can find this
        with open(sidecar, "w") as handle:
            handle.write(_catalog.checksum_line(hash_file(path), os.path.basename(path)))
        meta = json.load(open(meta_path))
        meta["sha256"] = hash_file(path)
        json.dump(meta, open(meta_path, "w"))
        _verify.verify(path=path, level="full", key=KEY)
    assert json.load(open(meta_path))["verification"]["state"] == "failed"


def test_truncated_artifact(big_backup):
    path = big_backup["path"]
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size - 5000)
    with pytest.raises(IntegrityError, match="does not match its checksum"):
        _verify.verify(path=path, level="checksum")


def test_wrong_identity_is_not_recorded_as_damage(big_backup):
    other = _age.generate_identity()[0]
    with pytest.raises(CryptoError) as error:
        _verify.verify(path=big_backup["path"], level="full", key=_age.Key(identities=[other]))
    assert "no identity matches" in str(error.value) and other not in str(error.value)
    meta = json.load(open(big_backup["path"].split(".")[0] + ".json"))
    assert meta["verification"] == big_backup["metadata"]["verification"]


def test_passphrase_backup_round_trip(tmp_path):
    source = make_tree(tmp_path / "src")
    result = _archive.run_archive(_archive.ArchiveRequest([str(source)], "app", backup_dir=str(tmp_path / "b"),
                                                          passphrase="correct horse"))
    assert result["metadata"]["encryption"]["method"] == "scrypt"
    assert _verify.verify(path=result["path"], level="full", key=_age.Key(passphrase="correct horse"))["verified"]
    with pytest.raises(CryptoError, match="wrong passphrase"):
        _verify.verify(path=result["path"], level="full", key=_age.Key(passphrase="wrong"))
    assert tree_digest(source)
