# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores with one artifact's file key, as hosts get them: the safety backup still opens with the operator's key,
and another artifact's key is refused before anything is touched."""

from __future__ import annotations

import sqlite3

import pytest

from testlib import KEY, backup, dump, fingerprint, make_tree, restore, sqlite_rows, sqlite_sample
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import WrongKeyError

PASSPHRASE = "correct horse battery staple"


def _file_key(path, key):
    with open(path, "rb") as handle:
        return _age.Key(file_key=_age.unwrap(_age.read_header_bytes(handle), key))


def test_a_passphrase_backup_restored_with_its_file_key_seals_the_safety_backup_for_the_passphrase(tmp_path):
    source = make_tree(tmp_path / "src")
    made = backup(source, tmp_path / "b", recipients=[], passphrase=PASSPHRASE)
    assert made["metadata"]["encryption"]["method"] == "scrypt"
    (source / "text.txt").write_text("changed after the backup\n")
    before = fingerprint(source)
    result = restore(tmp_path / "b", made["id"], key=_file_key(made["path"], _age.Key(passphrase=PASSPHRASE)))
    assert (source / "text.txt").read_text() == "hello world\n" * 500
    safety = _catalog.find_backup(str(tmp_path / "b"), result["safety_backup_id"])
    assert safety["encryption"] == {"method": "scrypt", "recipients": []}
    # What the passphrase opens, the safety backup's contents are those of the tree before the restore.
    checked = _verify.verify(str(tmp_path / "b"), safety["id"], level="full", key=_age.Key(passphrase=PASSPHRASE))
    assert checked["verified"]
    restore(tmp_path / "b", safety["id"], key=_age.Key(passphrase=PASSPHRASE), safety_backup=False)
    assert fingerprint(source) == before


def test_another_backups_file_key_is_refused_before_a_safety_dump_is_taken(tmp_path):
    database = tmp_path / "app.db"
    sqlite_sample(database)
    first = dump(database, tmp_path / "b")
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM people WHERE id > 3")
    second = dump(database, tmp_path / "b")
    rows = sqlite_rows(database)
    listed = sorted(meta["id"] for meta in _catalog.list_metadata(str(tmp_path / "b")))
    with pytest.raises(WrongKeyError) as refused:
        restore(tmp_path / "b", first["id"], key=_file_key(second["path"], KEY))
    assert "it is the key of another artifact" in str(refused.value)
    assert sorted(meta["id"] for meta in _catalog.list_metadata(str(tmp_path / "b"))) == listed  # no safety dump
    assert sqlite_rows(database) == rows
    restored = restore(tmp_path / "b", first["id"], key=_file_key(first["path"], KEY))
    assert restored["safety_backup_id"] and len(sqlite_rows(database)["people"]) > 3
