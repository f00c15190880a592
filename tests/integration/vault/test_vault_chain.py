"""An incremental chain on a vault: a lost host's newest backup restores from its copies, the earlier backups of
its chain fetched first; the copy verifies with its chain; a copy of the chain missing from the vault fails the
restore naming it, and nothing is written."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import NotFoundError
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import reading, replicate

from testlib import IDENTITY, backup, fingerprint, make_tree


@pytest.fixture
def lost_host(tmp_path):
    """A chain of three made and replicated to a directory vault, then the host's catalog lost: (source, the
    catalog's path, the vault, the ids, the tree of the newest)."""
    source = make_tree(str(tmp_path / "src"))
    backup_dir = str(tmp_path / "backups")
    os.makedirs(str(tmp_path / "vault"))
    vault = _vault.Vault({"url": "file://%s/vault" % tmp_path, "host": "web1", "name": "offsite"})
    made = []
    for number in range(3):
        with open(os.path.join(source, "changing-%d.txt" % number), "w", encoding="utf-8") as handle:
            handle.write("version %d\n" % number)
        made.append(backup(source, backup_dir, incremental=True)["id"])
    replicate.replicate(backup_dir, "app", [vault])
    newest = fingerprint(source)
    shutil.rmtree(backup_dir)
    os.makedirs(backup_dir)
    return source, backup_dir, vault, made, newest


def _file_keys(vault, request):
    """What the restore's action plugin does on the controller: the file key of every artifact of the chain."""
    found = reading.restore_header(vault, request)
    key = _age.Key(identities=[IDENTITY])
    return " ".join(_age.encode_file_key(_age.unwrap(header.encode("ascii"), key))
                    for header in [found["header"]] + found["chain_headers"])


def test_the_newest_backup_of_a_chain_restores_from_the_vault_with_one_file_key_per_artifact(lost_host, tmp_path):
    source, backup_dir, vault, made, newest = lost_host
    request = _restore.RestoreRequest(backup_dir=backup_dir, backup_id=made[2], dest=str(tmp_path / "dest"))
    file_keys = _file_keys(vault, request)
    assert len(file_keys.split()) == 3
    os.makedirs(request.dest)
    request.key = _age.Key(file_key=file_keys)
    result = reading.restore_copy(vault, request)
    assert result["vault"] == "offsite"
    assert fingerprint(os.path.join(request.dest, source.lstrip("/"))) == newest
    assert reading.verify_copy(vault, made[2], "full", key=request.key)["verified"]
    assert os.listdir(os.path.join(backup_dir, ".tmp")) == []  # the fetched chain is gone


def test_a_copy_of_the_chain_missing_on_the_vault_fails_restore_and_verify_naming_it(lost_host, tmp_path):
    _source, backup_dir, vault, made, _newest = lost_host
    middle = [name for name in os.listdir(str(tmp_path / "vault" / "web1" / "app")) if name.startswith(made[1] + ".")]
    for name in middle:
        os.unlink(str(tmp_path / "vault" / "web1" / "app" / name))
    dest = tmp_path / "dest"
    dest.mkdir()
    request = _restore.RestoreRequest(backup_dir=backup_dir, backup_id=made[2], dest=str(dest),
                                      key=_age.Key(identities=[IDENTITY]))
    with pytest.raises(NotFoundError, match=r"holds no complete copy of %s for host web1" % made[1]):
        reading.restore_copy(vault, request)
    assert os.listdir(str(dest)) == []
    with pytest.raises(NotFoundError, match=r"%s needs %s of its chain on .*, which cannot be used" % (made[2], made[1])):
        reading.verify_copy(vault, made[2], "checksum")
