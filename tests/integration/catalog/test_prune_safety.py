# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nightly prune keeps the safety backup a restore just took: it is the way back from that restore."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from testlib import KEY, backup, make_tree, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _option_groups, _prune, _restore, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError


@pytest.fixture(name="restored")
def restored_fixture(tmp_path):
    """A verified backup of a tree, the tree changed, restored in place, then the night's backup, verified, as
    `lifeboat run` makes it: returns (backup_dir, the night's backup id, safety backup id, digest of the tree as
    the safety backup holds it)."""
    source = make_tree(str(tmp_path / "src"))
    backup_dir = str(tmp_path / "backups")

    def verified_backup():
        made = backup(source, backup_dir)
        _verify.verify(backup_dir=backup_dir, backup_id=made["id"])
        return made["id"]

    restored = verified_backup()
    with open(os.path.join(source, "text.txt"), "a", encoding="utf-8") as handle:
        handle.write("changed after the backup\n")
    changed = tree_digest(source)
    result = _restore.restore_backup(_restore.RestoreRequest(backup_dir=backup_dir, backup_id=restored,
                                                             key=KEY))
    assert result["safety_backup_id"]
    return backup_dir, verified_backup(), result["safety_backup_id"], changed


def prune(backup_dir, now=None, **options):
    return _prune.prune(backup_dir, _option_groups.build_policy(**options), now=now)


def test_the_nightly_prune_keeps_a_fresh_safety_backup(restored, tmp_path):
    backup_dir, nightly, safety_id, changed = restored
    result = prune(backup_dir, keep_last=1)
    kept = {entry["id"]: entry["reasons"] for entry in result["kept"]}
    assert kept == {nightly: ["last"], safety_id: ["safety"]} and len(result["removed"]) == 1
    # It is still the way back from the restore.
    _restore.restore_backup(_restore.RestoreRequest(backup_dir=backup_dir, backup_id=safety_id, key=KEY,
                                                    dest=str(tmp_path / "undo"), safety_backup=False))
    assert tree_digest(str(tmp_path / "undo" / os.path.relpath(str(tmp_path / "src"), "/"))) == changed


def test_a_safety_backup_older_than_keep_safety_within_follows_the_rules(restored):
    backup_dir, nightly, safety_id, _changed = restored
    made = _catalog.backup_time(_catalog.find_backup(backup_dir, safety_id))
    kept = prune(backup_dir, now=made + timedelta(days=2), keep_last=1, keep_safety_within="3d")["kept"]
    assert {entry["id"]: entry["reasons"] for entry in kept} == {nightly: ["last"], safety_id: ["safety"]}
    result = prune(backup_dir, now=made + timedelta(days=8), keep_last=1)
    assert safety_id in result["removed"] and [entry["id"] for entry in result["kept"]] == [nightly]
    assert [meta["id"] for meta in _catalog.list_metadata(backup_dir)] == [nightly]


def test_keep_safety_within_is_checked():
    with pytest.raises(UsageError, match="duration '7 days': unknown unit ' '"):
        _option_groups.build_policy(keep_last=1, keep_safety_within="7 days")
