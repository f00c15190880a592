"""Incremental chains on a directory vault (file://): sent oldest first within a chain so an interrupted replication
leaves whole prefixes, listed with their levels, broken chains reported, retention keeps and removes chains whole."""

import os

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _restore, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import copies, maintain, reading, replicate

from testlib import KEY, fingerprint, incremental_chain


@pytest.fixture
def vault(tmp_path):
    (tmp_path / "vault" / "fleet").mkdir(parents=True)
    return _vault.Vault({"url": "file://%s/vault/fleet" % tmp_path, "host": "web1"})


def on_vault(vault):
    return sorted(backup_id for backup_id, attempts in copies.read_host(vault.store, "web1", "app").get("app", {})
                  .items() if copies.usable(attempts))


def test_a_chain_goes_oldest_first_after_the_newest_chain(tmp_path, vault):
    backup_dir = str(tmp_path / "backups")
    made = [result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 6, max_chain=3)]
    old, new = made[:4], made[4:]
    plan = replicate.replicate(backup_dir, "app", [vault], check_mode=True)
    assert plan["vaults"][0]["sent"] == new + old
    result = replicate.replicate(backup_dir, "app", [vault])
    assert result["vaults"][0]["sent"] == new + old and on_vault(vault) == sorted(made)


def test_an_interrupted_replication_leaves_a_whole_prefix_of_the_chain(tmp_path, vault):
    backup_dir = str(tmp_path / "backups")
    chain = [result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 4)]
    # the third backup's artifact is damaged on the host: its upload fails, and the replication stops there
    damaged = _catalog.find_backup(backup_dir, chain[2])
    with open(_catalog.artifact_path(damaged), "ab") as handle:
        handle.write(b"grown on disk")
    with pytest.raises(VaultError) as caught:
        replicate.replicate(backup_dir, "app", [vault])
    assert caught.value.result["vaults"][0]["sent"] == chain[:2]
    assert on_vault(vault) == sorted(chain[:2])
    assert reading.list_backups(vault)["problems"] == []  # no copy whose chain is not there


def test_the_listing_carries_levels_and_a_copy_without_its_chain_is_a_problem(tmp_path, vault):
    backup_dir = str(tmp_path / "backups")
    chain = [result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 3)]
    replicate.replicate(backup_dir, "app", [vault])
    listing = reading.list_backups(vault)
    assert [(entry["id"], entry["level"], entry["base"], entry["chain"]) for entry in listing["backups"]] == [
        (chain[level], level, chain[0], chain[:level + 1]) for level in (2, 1, 0)]
    assert listing["problems"] == []
    job_dir = tmp_path / "vault" / "fleet" / "web1" / "app"
    for name in os.listdir(str(job_dir)):
        if name.startswith(chain[1] + "."):
            os.unlink(str(job_dir / name))
    info = reading.vault_info(vault)
    (problem,) = info["health"]["problems"]
    assert (problem["code"], problem["level"], problem["id"], problem["member"]) == (
        "broken_chain", "error", chain[2], chain[1])
    assert "the copy of %s cannot be restored: %s of its chain has no complete copy there" % (
        chain[2], chain[1]) in problem["message"]


def test_upkeep_keeps_what_a_kept_copy_needs_and_removes_an_older_chain_whole(tmp_path, vault):
    backup_dir = str(tmp_path / "backups")
    made = [result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 6, max_chain=2)]
    old, new = made[:3], made[3:]
    replicate.replicate(backup_dir, "app", [vault])
    local_before = fingerprint(os.path.join(backup_dir, "app"))
    plan = maintain.maintain(vault, build_policy(keep_last=1), check_mode=True)
    entry = plan["hosts"]["web1"]["app"]
    assert entry["kept"] == [new[2], new[1], new[0]] and entry["removed"] == old[::-1]
    assert on_vault(vault) == sorted(made)
    done = maintain.maintain(vault, build_policy(keep_last=1))
    assert done["hosts"]["web1"]["app"]["removed"] == old[::-1]
    assert on_vault(vault) == sorted(new)
    assert reading.list_backups(vault)["problems"] == []
    assert fingerprint(os.path.join(backup_dir, "app")) == local_before
    # the newest copy restores from the vault alone, its chain fetched back with it
    for backup_id in new:
        reading.fetch_copy(vault, backup_id, str(tmp_path / "fetched"))
    dest = tmp_path / "dest"
    fetched = _catalog.find_backup(str(tmp_path / "fetched"), new[2])
    _restore.restore_backup(_restore.RestoreRequest(path=_catalog.artifact_path(fetched), key=KEY, dest=str(dest),
                                                    backup_dir=str(tmp_path / "fetched"), safety_backup=False))
    assert fingerprint(str(dest / str(tmp_path / "src").lstrip("/"))) == fingerprint(str(tmp_path / "src"))


def test_a_copy_whose_metadata_names_no_proper_chain_cannot_be_used(tmp_path, vault):
    backup_dir = str(tmp_path / "backups")
    chain = [result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 2)]
    replicate.replicate(backup_dir, "app", [vault])
    sidecar = tmp_path / "vault" / "fleet" / "web1" / "app" / (chain[1] + ".json")
    sidecar.write_text(sidecar.read_text().replace('"%s"\n  ]' % chain[1], '"app-20200101T000000Z"\n  ]'))
    listing = reading.list_backups(vault)
    entry = next(found for found in listing["backups"] if found["id"] == chain[1])
    assert not entry["complete"]
    assert any("its chain is not a list of backup ids ending with its own" in problem["message"]
               for problem in listing["problems"] if problem["id"] == chain[1])
    # upkeep counts it as an incomplete copy, left alone within the sweep's grace period
    result = maintain.maintain(vault, build_policy(keep_last=1))
    assert result["hosts"]["web1"]["app"]["incomplete"] == 1
    assert any(name.startswith(chain[1] + ".") for name in os.listdir(str(sidecar.parent)))
