"""Replication to a real append-only SFTP vault (sshvault.py): copies that check out by hand, an upload cut short
by the vault going away and completed by the next run under a fresh stem, the vault host's upkeep, restores."""

from __future__ import annotations

import glob
import os
import subprocess
import threading
import time

import pytest

from sshvault import ssh_vault  # noqa: F401  pylint: disable=unused-import

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _restore, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import copies, maintain, reading, replicate

from testlib import KEY, backup, fingerprint, make_tree


@pytest.fixture
def host(tmp_path, ssh_vault):  # noqa: F811  pylint: disable=redefined-outer-name
    source = tmp_path / "src"
    make_tree(str(source))
    backup_dir = str(tmp_path / "backups")
    vault = _vault.Vault(dict(ssh_vault.settings, host="web1"))
    yield source, backup_dir, vault, ssh_vault
    vault.store.close()


def test_copies_check_out_by_hand_and_a_second_run_changes_nothing(host):
    source, backup_dir, vault, server = host
    made = [backup(source, backup_dir, job="daily")["id"] for _number in range(2)]
    result = replicate.replicate(backup_dir, "daily", [vault])
    assert result["vaults"][0]["sent"] == made[::-1]
    job_dir = server.path(server.key("daily"))
    for backup_id in made:
        subprocess.run(["sha256sum", "-c", backup_id + ".sha256"], cwd=job_dir, check=True, capture_output=True)
    on_disk = server.files()
    again = replicate.replicate(backup_dir, "daily", [vault])
    assert not again["changed"] and again["vaults"][0]["present"] == made[::-1]
    assert server.files() == on_disk


def test_an_upload_cut_short_never_counts_and_the_next_run_completes_it(host):
    source, backup_dir, vault, server = host
    with open(os.path.join(str(source), "big.bin"), "wb") as handle:
        handle.write(os.urandom(64 << 20))  # incompressible: the upload takes a while
    made = backup(source, backup_dir, job="daily")
    metadata = _catalog.read_metadata(os.path.join(backup_dir, "daily", made["id"] + ".json"))
    partial = server.path(server.key("daily", metadata["artifact"]))
    local = fingerprint(os.path.join(backup_dir, "daily"))

    def stop_midway():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.exists(partial) and os.path.getsize(partial) > 1 << 20):
            time.sleep(0.005)
        server.stop()

    stopper = threading.Thread(target=stop_midway)
    stopper.start()
    with pytest.raises(VaultError) as caught:
        replicate.replicate(backup_dir, "daily", [vault])
    stopper.join()
    assert vault.describe() in str(caught.value)
    assert 0 < os.path.getsize(partial) < metadata["size"]
    assert fingerprint(os.path.join(backup_dir, "daily")) == local
    server.start()
    found = copies.read_host(vault.store, "web1", "daily")["daily"][made["id"]]
    assert [copy.complete for copy in found] == [False]
    result = replicate.replicate(backup_dir, "daily", [vault])
    assert result["vaults"][0]["sent"] == [made["id"]]
    found = copies.read_host(vault.store, "web1", "daily")["daily"][made["id"]]
    assert [(copy.stem, copy.complete) for copy in found] == [(made["id"], False), (made["id"] + "~2", True)]
    subprocess.run(["sha256sum", "-c", made["id"] + "~2.sha256"], cwd=server.path(server.key("daily")), check=True,
                   capture_output=True)
    record = _catalog.read_metadata(os.path.join(backup_dir, "daily", made["id"] + ".json"))["vaults"][vault.name]
    assert record["key"].endswith(made["id"] + "~2." + metadata["artifact"].split(".", 1)[1])
    # the vault host's upkeep sweeps the partial once it is older than the grace period, never the copy
    old = time.time() - 2 * 86400
    os.utime(partial, (old, old))
    directory = _vault.Vault({"url": "file://" + server.chroot + "/" + server.key("daily").rsplit("/", 2)[0],
                              "host": "web1"})
    upkeep = maintain.maintain(directory, build_policy(keep_last=5))
    assert upkeep["hosts"]["web1"]["daily"]["swept"] == [made["id"]]
    assert not os.path.exists(partial)
    assert reading.verify_copy(vault, made["id"], "full", key=KEY)["verified"]


def test_a_copy_that_only_the_vault_has_restores(host, tmp_path):
    source, backup_dir, vault, _server = host
    made = backup(source, backup_dir, job="daily")["id"]
    replicate.replicate(backup_dir, "daily", [vault])
    scratch = str(tmp_path / "fetched")
    fetched = reading.fetch_copy(vault, made, scratch)
    dest = tmp_path / "dest"
    dest.mkdir()
    _restore.restore_backup(_restore.RestoreRequest(path=fetched, key=KEY, dest=str(dest),
                                                    backup_dir=scratch, safety_backup=False))
    assert fingerprint(str(dest / str(source).lstrip("/"))) == fingerprint(str(source))


def test_a_vault_that_goes_away_while_its_copy_is_restored_leaves_the_destination_untouched(host, tmp_path):
    source, backup_dir, vault, server = host
    with open(os.path.join(str(source), "big.bin"), "wb") as handle:
        handle.write(os.urandom(64 << 20))
    made = backup(source, backup_dir, job="daily")["id"]
    replicate.replicate(backup_dir, "daily", [vault])
    catalog = str(tmp_path / "new-host")  # a replacement host: only the vault has the backup
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    before = fingerprint(str(dest))

    def stop_midway():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            arriving = glob.glob(os.path.join(catalog, ".tmp", "*", "daily", made + ".tar*"))
            if arriving and os.path.getsize(arriving[0]) > 4 << 20:
                break
            time.sleep(0.002)
        server.stop()

    stopper = threading.Thread(target=stop_midway)
    stopper.start()
    request = _restore.RestoreRequest(backup_dir=catalog, backup_id=made, key=KEY, dest=str(dest),
                                      safety_backup=False)
    with pytest.raises(VaultError) as caught:
        reading.restore_copy(vault, request)
    stopper.join()
    assert "the copy stopped arriving after" in str(caught.value) and vault.store.describe() in str(caught.value)
    assert "the connection was lost" in str(caught.value)
    assert fingerprint(str(dest)) == before
    assert os.listdir(os.path.join(catalog, ".tmp")) == []
