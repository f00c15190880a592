"""Reading a directory vault: listing, verifying a copy, fetching it back for a restore, the trusted side's upkeep."""

import os
import time

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _restore, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, IntegrityError, NotFoundError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import maintain, reading, replicate

from testlib import KEY, backup, fingerprint, make_tree


@pytest.fixture
def replicated(tmp_path):
    source = tmp_path / "src"
    make_tree(str(source))
    backup_dir = str(tmp_path / "backups")
    (tmp_path / "vault" / "fleet").mkdir(parents=True)
    vault = _vault.Vault({"url": "file://%s/vault/fleet" % tmp_path, "host": "web1"})
    made = [backup(source, backup_dir), backup(source, backup_dir)]
    replicate.replicate(backup_dir, "app", [vault])
    return source, backup_dir, vault, made, tmp_path / "vault" / "fleet" / "web1" / "app"


def test_lists_the_hosts_copies_newest_first(replicated):
    _source, _backup_dir, vault, made, _job_dir = replicated
    listing = reading.list_backups(vault)
    assert [entry["id"] for entry in listing["backups"]] == [made[1]["id"], made[0]["id"]]
    assert all(entry["complete"] and entry["kind"] == "files" for entry in listing["backups"])
    assert listing["problems"] == []


def test_checksum_and_full_verification_pass_and_find_a_damaged_copy(replicated):
    _source, backup_dir, vault, made, job_dir = replicated
    assert reading.verify_copy(vault, made[0]["id"], backup_dir=backup_dir)["method"] == "read"
    full = reading.verify_copy(vault, made[0]["id"], "full", key=KEY)
    assert full["verified"] and full["members"] > 0
    artifact = next(name for name in os.listdir(str(job_dir)) if name.startswith(made[0]["id"] + ".tar"))
    path = job_dir / artifact
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    for level, options in (("checksum", {}), ("full", {"key": KEY})):
        with pytest.raises(IntegrityError) as caught:
            reading.verify_copy(vault, made[0]["id"], level, **options)
        assert "failed %s verification" % level in str(caught.value) and made[0]["id"] in str(caught.value)


def test_a_copy_fetched_back_restores_the_tree(replicated, tmp_path):
    source, _backup_dir, vault, made, _job_dir = replicated
    fetched = reading.fetch_copy(vault, made[1]["id"], str(tmp_path / "fetched"))
    dest = tmp_path / "dest"
    dest.mkdir()
    _restore.restore_backup(_restore.RestoreRequest(path=fetched, key=KEY, dest=str(dest),
                                                    backup_dir=str(tmp_path / "fetched"), safety_backup=False))
    assert fingerprint(str(dest / str(source).lstrip("/"))) == fingerprint(str(source))


def test_a_missing_copy_is_named(replicated):
    _source, _backup_dir, vault, _made, _job_dir = replicated
    with pytest.raises(NotFoundError) as caught:
        reading.verify_copy(vault, "app-20200101T000000Z")
    assert "holds no complete copy of app-20200101T000000Z for host web1" in str(caught.value)


def test_upkeep_applies_retention_and_sweeps_old_partial_uploads(replicated):
    _source, backup_dir, vault, made, job_dir = replicated
    partial = job_dir / "app-20200101T000000Z.tar.zst.age"
    partial.write_bytes(b"partial")
    old = time.time() - 2 * 86400
    os.utime(str(partial), (old, old))
    fresh = job_dir / "app-20200102T000000Z.tar.zst.age"
    fresh.write_bytes(b"uploading now")
    local_before = fingerprint(backup_dir)
    result = maintain.maintain(vault, build_policy(keep_last=1))
    entry = result["hosts"]["web1"]["app"]
    assert entry["kept"] == [made[1]["id"]] and entry["removed"] == [made[0]["id"]]
    assert entry["swept"] == ["app-20200101T000000Z"]
    names = os.listdir(str(job_dir))
    assert not any(name.startswith(made[0]["id"] + ".") for name in names)
    assert any(name.startswith(made[1]["id"] + ".tar") for name in names) and fresh.name in names
    assert partial.name not in names
    assert fingerprint(backup_dir) == local_before
    assert reading.verify_copy(vault, made[1]["id"])["verified"]
    assert _catalog.job_of(made[1]["id"]) == "app"


def test_a_damaged_copy_restored_as_it_arrives_leaves_the_destination_untouched(replicated, tmp_path):
    _source, backup_dir, vault, made, job_dir = replicated
    artifact = next(name for name in os.listdir(str(job_dir)) if name.startswith(made[1]["id"] + ".tar"))
    data = bytearray((job_dir / artifact).read_bytes())
    data[-100] ^= 1  # in the last chunk: the restore has staged nearly everything when it meets the damage
    (job_dir / artifact).write_bytes(bytes(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    before = fingerprint(str(dest))
    request = _restore.RestoreRequest(backup_dir=backup_dir, backup_id=made[1]["id"], key=KEY,
                                      dest=str(dest), safety_backup=False)
    with pytest.raises(BackupError) as caught:
        reading.restore_copy(vault, request, from_vault=True)
    assert "failed authentication (corrupted or tampered" in str(caught.value)
    assert fingerprint(str(dest)) == before
    assert os.listdir(os.path.join(backup_dir, ".tmp")) == []  # the download is gone
