"""Replication to a directory vault (file://): what lands there, idempotence, records, retries, a pruned backup."""

import hashlib
import json
import os
import subprocess
import threading

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._prune import prune
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import copies, replicate, state

from testlib import backup, fingerprint, make_tree


@pytest.fixture
def setup(tmp_path):
    source = tmp_path / "src"
    make_tree(str(source))
    backup_dir = tmp_path / "backups"
    vault_dir = tmp_path / "vault"
    vault_dir.mkdir()
    vault = _vault.Vault({"url": "file://" + str(vault_dir) + "/fleet", "host": "web1"})
    os.makedirs(str(vault_dir / "fleet"))
    return source, str(backup_dir), vault_dir, vault


def test_copies_every_backup_newest_first_and_records_them(setup):
    source, backup_dir, vault_dir, vault = setup
    first = backup(source, backup_dir)
    second = backup(source, backup_dir, tags=["x"])
    result = replicate.replicate(backup_dir, "app", [vault])
    assert result["changed"] and result["vaults"][0]["sent"] == [second["id"], first["id"]]
    job_dir = vault_dir / "fleet" / "web1" / "app"
    for made in (first, second):
        metadata = _catalog.read_metadata(os.path.join(backup_dir, "app", made["id"] + ".json"))
        names = sorted(os.listdir(str(job_dir)))
        assert metadata["artifact"] in names and made["id"] + ".json" in names and made["id"] + ".sha256" in names
        with open(os.path.join(str(job_dir), metadata["artifact"]), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == metadata["sha256"]
        record = metadata["vaults"][vault.name]
        assert record["sha256"] == metadata["sha256"] and record["host"] == "web1" and record["at"]
        # sha256sum -c works on the vault as it does in the catalog
        subprocess.run(["sha256sum", "-c", made["id"] + ".sha256"], cwd=str(job_dir), check=True, capture_output=True)
        on_vault = json.loads((job_dir / (made["id"] + ".json")).read_text())
        assert "vaults" not in on_vault and on_vault["id"] == made["id"]


def test_a_second_run_changes_nothing(setup):
    source, backup_dir, vault_dir, vault = setup
    backup(source, backup_dir)
    replicate.replicate(backup_dir, "app", [vault])
    before = fingerprint(str(vault_dir)), fingerprint(os.path.join(backup_dir, "app"))
    again = replicate.replicate(backup_dir, "app", [vault])
    assert not again["changed"] and again["vaults"][0]["sent"] == [] and len(again["vaults"][0]["present"]) == 1
    assert (fingerprint(str(vault_dir)), fingerprint(os.path.join(backup_dir, "app"))) == before
    outcome = state.read_state(backup_dir)["app"][vault.name]
    assert outcome["failure"] is None and outcome["last_success"] == outcome["last_attempt"]


def test_check_mode_lists_what_would_be_sent_and_sends_nothing(setup):
    source, backup_dir, vault_dir, vault = setup
    made = backup(source, backup_dir)
    before = fingerprint(str(vault_dir)), fingerprint(backup_dir)
    result = replicate.replicate(backup_dir, "app", [vault], check_mode=True)
    assert result["changed"] and result["vaults"][0]["sent"] == [made["id"]]
    assert (fingerprint(str(vault_dir)), fingerprint(backup_dir)) == before


def test_an_interrupted_copy_never_counts_and_the_next_run_completes_it(setup):
    source, backup_dir, vault_dir, vault = setup
    made = backup(source, backup_dir)
    metadata = _catalog.read_metadata(os.path.join(backup_dir, "app", made["id"] + ".json"))
    job_dir = vault_dir / "fleet" / "web1" / "app"
    job_dir.mkdir(parents=True)
    # what a run killed after the artifact and before the sidecar leaves
    with open(os.path.join(backup_dir, "app", metadata["artifact"]), "rb") as handle:
        (job_dir / metadata["artifact"]).write_bytes(handle.read())
    found = copies.read_host(vault.store, "web1", "app")["app"][made["id"]]
    assert not found[0].complete and "did not finish" in found[0].problems[0]
    result = replicate.replicate(backup_dir, "app", [vault])
    assert result["vaults"][0]["sent"] == [made["id"]]
    assert copies.usable(copies.read_host(vault.store, "web1", "app")["app"][made["id"]]).complete


def test_a_vault_that_is_gone_fails_with_its_name_and_leaves_the_catalog_alone(setup, tmp_path):
    source, backup_dir, _vault_dir, _present = setup
    backup(source, backup_dir)
    before = fingerprint(os.path.join(backup_dir, "app"))
    missing = _vault.Vault({"url": "file://%s/nowhere" % tmp_path, "host": "web1", "name": "offsite"})
    with pytest.raises(VaultError) as caught:
        replicate.replicate(backup_dir, "app", [missing])
    assert "vault offsite" in str(caught.value) and "does not exist" in str(caught.value)
    assert caught.value.result["vaults"][0]["failed"]
    assert fingerprint(os.path.join(backup_dir, "app")) == before
    outcome = state.read_state(backup_dir)["app"]["offsite"]
    assert "does not exist" in outcome["failure"] and "last_success" not in outcome


def test_two_hosts_replicating_at_once_each_get_their_own_complete_copies(tmp_path):
    source = tmp_path / "src"
    make_tree(str(source))
    (tmp_path / "vault").mkdir()
    catalogs = {name: str(tmp_path / name) for name in ("web1", "web2")}
    made = {name: [backup(source, directory)["id"] for _number in range(3)] for name, directory in catalogs.items()}
    url = "file://%s/vault" % tmp_path
    errors = []

    def run(name):
        try:
            replicate.replicate(catalogs[name], "app", [_vault.Vault({"url": url, "host": name})])
        except Exception as exc:  # reported below: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in catalogs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name in catalogs:
        found = copies.read_host(_vault.Vault({"url": url, "host": name}).store, name, "app")["app"]
        assert sorted(found) == sorted(made[name])
        assert all(copies.usable(attempts) for attempts in found.values())


def test_a_replication_racing_the_local_prune_loses_no_copy_and_counts_no_partial(setup):
    source, backup_dir, _vault_dir, vault = setup
    made = [backup(source, backup_dir)["id"] for _number in range(6)]
    pruning = threading.Thread(target=prune, args=(backup_dir, build_policy(keep_last=1)),
                               kwargs={"job": "app", "lock_timeout": 60})
    pruning.start()
    result = replicate.replicate(backup_dir, "app", [vault], lock_timeout=60)
    pruning.join()
    report = result["vaults"][0]
    # a backup the prune removed before the replication read the catalog is in neither list
    assert set(report["sent"]) | set(report["pruned"]) <= set(made)
    assert not set(report["sent"]) & set(report["pruned"])
    assert made[-1] in report["sent"]  # the one the prune keeps, newest: sent first
    found = copies.read_host(vault.store, "web1", "app")["app"]
    assert sorted(found) == sorted(report["sent"])
    assert all(copies.usable(attempts) for attempts in found.values())
    kept = _catalog.list_metadata(backup_dir, "app")
    assert [meta["id"] for meta in kept] == [made[-1]] and vault.name in kept[0]["vaults"]
