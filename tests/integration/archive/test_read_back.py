"""Read-back: a backup reads its artifact again from the disk before giving it its name, and a byte that differs
from what was written fails the backup and leaves the catalog as it was."""

import os

import pytest

from testlib import KEY, RECIPIENT, backup, catalog_state, dump, make_tree, sqlite_sample

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _fileio, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError


@pytest.fixture
def damaged_on_disk(monkeypatch):
    """Between the write and the read-back, one byte of the temporary file changes, as a disk that returns other
    bytes than it was given would: where(data) picks its offset from the artifact's bytes."""
    real = _fileio.drop_cache
    picked = {}

    def install(where):
        def damage_then_drop(fd):
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            offset = where(data)
            os.pwrite(fd, bytes([data[offset] ^ 0x01]), offset)
            picked["offset"] = offset
            real(fd)
        monkeypatch.setattr(_fileio, "drop_cache", damage_then_drop)
        return picked
    return install


def _mac_line(data):
    """A character of the header's MAC whose flipped bit is still base64 (the MAC is random: an A would become @,
    a corrupted header of another kind); never the last one, which also holds padding bits."""
    start = data.index(b"\n--- ") + 5
    return next(offset for offset in range(start, start + 42) if chr(data[offset] ^ 0x01).isalnum())


def _middle(data):
    return len(data) // 2


def _last(data):
    return len(data) - 1


def _source(tmp_path):
    source = make_tree(tmp_path / "src")
    (source / "random.bin").write_bytes(os.urandom(400_000))  # several 64 KiB chunks after compression
    return source


def _files(tmp_path):
    """A maker of backups of one tree: make(backup_dir, **options)."""
    source = _source(tmp_path)
    return lambda backups, **options: backup(source, backups, **options)


def _database(tmp_path):
    """A maker of dumps of one SQLite database: make(backup_dir, **options)."""
    database = tmp_path / "app.db"
    sqlite_sample(database)
    return lambda backups, **options: dump(database, backups, **options)


PLAIN = {"recipients": [], "compression": "none"}


@pytest.mark.parametrize("kind,options,where,problem", [
    (_files, {}, _mac_line, "its age header differs from the one written (header MAC mismatch)"),
    (_files, {}, _middle, "failed authentication"),
    (_files, {}, _last, "failed authentication"),
    (_files, PLAIN, _middle, "random.bin does not match its SHA-256 in the manifest"),
    (_files, dict(PLAIN, compression="gzip"), _middle, "random.bin does not match its SHA-256 in the manifest"),
    (_database, {}, _middle, "failed authentication"),
    (_database, PLAIN, _middle, "does not match the recorded content SHA-256"),
], ids=["files-age-header", "files-age-middle", "files-age-last", "files-plain", "files-plain-gzip",
        "database-age", "database-plain"])
def test_a_byte_changed_on_disk_fails_the_backup_and_leaves_the_catalog_untouched(tmp_path, damaged_on_disk, kind,
                                                                                  options, where, problem):
    backups = tmp_path / "backups"
    make = kind(tmp_path)
    older = make(backups, **options)
    before = catalog_state(backups)
    picked = damaged_on_disk(where)
    with pytest.raises(IntegrityError) as error:
        make(backups, **options)
    assert picked, "the artifact was never read back"
    assert error.value.stage == "read-back"
    assert "was read back from the disk and does not match what was written" in error.value.msg
    assert problem in error.value.msg and "nothing was stored" in error.value.msg
    assert catalog_state(backups) == before  # no artifact, no sidecar, no temporary file; the older one untouched
    assert [meta["id"] for meta in _catalog.list_metadata(str(backups))] == [older["id"]]
    assert _verify.verify(path=older["path"], level="full", key=KEY)["verified"]


def test_a_backup_read_back_records_it_and_a_later_verify_records_its_own(tmp_path):
    backups = tmp_path / "backups"
    made = _files(tmp_path)(backups)
    recorded = _catalog.find_backup(str(backups), made["id"])["verification"]
    assert made["metadata"]["verification"] == recorded
    assert (recorded["state"], recorded["level"], recorded["method"]) == ("verified", "full", "read-back")
    assert _catalog.parse_time(recorded["at"])
    # A checksum check adds nothing to a full one; a full verify with the operator's identity replaces it.
    assert _verify.verify(path=made["path"], level="checksum")["changed"] is False
    assert _verify.verify(path=made["path"], level="full", key=KEY)["changed"] is True
    later = _catalog.find_backup(str(backups), made["id"])["verification"]
    assert (later["state"], later["level"], later["method"]) == ("verified", "full", "verify")
    assert _verify.verify(path=made["path"], level="full", key=KEY)["changed"] is False


def test_the_sha256_read_back_is_the_files(tmp_path):
    backups = tmp_path / "backups"
    for made in (_files(tmp_path)(backups), _database(tmp_path)(backups)):
        assert made["sha256"] == made["metadata"]["sha256"] == _fileio.hash_file(made["path"])
        assert made["size"] == os.path.getsize(made["path"])
        assert _verify.verify(path=made["path"], level="checksum")["verified"]


def test_an_encrypted_dump_records_no_content_digest_even_when_read_back(tmp_path):
    made = _database(tmp_path)(tmp_path / "backups", recipients=[RECIPIENT])
    assert made["metadata"]["verification"]["method"] == "read-back"
    assert "content_sha256" not in made["metadata"]


def test_read_back_false_records_unverified_and_reads_nothing_back(tmp_path, damaged_on_disk):
    backups = tmp_path / "backups"
    picked = damaged_on_disk(_middle)
    made = [make(tmp_path)(backups, read_back=False) for make in (_files, _database)]
    assert not picked
    assert [result["metadata"]["verification"] for result in made] == [{"state": "unverified"}] * 2
