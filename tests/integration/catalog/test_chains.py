# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incremental chains in a real catalog: prune keeps them whole, health and catalog_info show them and their breaks."""

from __future__ import annotations

import os

import pytest

from testlib import backup, fingerprint, incremental_chain, restore, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _health, _option_groups, _prune

FILES = (".json", ".sha256", ".tar.zst.age")


def ids_of(made):
    return [result["id"] for result in made]


def files_of(backup_dir, backup_ids):
    return sorted(backup_id + suffix for backup_id in backup_ids for suffix in FILES)


def rewrite(backup_dir, backup_id, **changes):
    metadata = _catalog.find_backup(str(backup_dir), backup_id)
    metadata.update(changes)
    _catalog.write_metadata(metadata.pop("_metadata_path"), metadata)


def info(backup_dir, **options):
    options.setdefault("disk_usage_threshold", 100.0)
    return _health.catalog_info(str(backup_dir), **options)


def problems(result, code):
    return [problem for problem in result["health"]["problems"] if problem["code"] == code]


def test_keep_last_1_keeps_a_chain_of_5_whole_and_its_newest_restores(tmp_path):
    backup_dir = tmp_path / "backups"
    chain = ids_of(incremental_chain(tmp_path / "src", backup_dir, 5))
    policy = _option_groups.build_policy(keep_last=1)
    plan = _prune.prune(str(backup_dir), policy, check_mode=True)
    assert plan["changed"] is False and plan["removed"] == []
    assert plan["kept"] == [{"id": chain[4], "reasons": ["last"]}] + [
        {"id": backup_id, "reasons": ["needed by %s (level 4)" % chain[4]]} for backup_id in chain[3:0:-1]] + [
        {"id": chain[0], "reasons": ["base of %s" % chain[4]]}]
    assert plan["diff"]["before"] == plan["diff"]["after"]
    done = _prune.prune(str(backup_dir), policy)
    assert (done["kept"], done["removed"]) == (plan["kept"], plan["removed"])
    assert sorted(os.listdir(str(backup_dir / "app"))) == files_of(backup_dir, chain)
    dest = tmp_path / "dest"
    restore(backup_dir, chain[4], dest=str(dest), safety_backup=False)
    assert tree_digest(str(dest / str(tmp_path / "src").lstrip("/"))) == tree_digest(str(tmp_path / "src"))


def test_an_older_chain_nothing_kept_needs_is_removed_whole(tmp_path):
    backup_dir = tmp_path / "backups"
    made = ids_of(incremental_chain(tmp_path / "src", backup_dir, 6, max_chain=2))
    old, new = made[:3], made[3:]
    assert [_catalog.find_backup(str(backup_dir), backup_id)["level"] for backup_id in made] == [0, 1, 2, 0, 1, 2]
    policy = _option_groups.build_policy(keep_last=2)
    plan = _prune.prune(str(backup_dir), policy, check_mode=True)
    assert plan["removed"] == old[::-1]  # newest first: a dependant goes before what it needs
    assert plan["diff"]["after"] == "".join(backup_id + "\n" for backup_id in new[::-1])
    assert plan["kept"][-1] == {"id": new[0], "reasons": ["base of %s" % new[2]]}
    done = _prune.prune(str(backup_dir), policy)
    assert done["removed"] == old[::-1]
    assert sorted(os.listdir(str(backup_dir / "app"))) == files_of(backup_dir, new)
    assert info(backup_dir)["health"]["ok"], info(backup_dir)["health"]["problems"]


def test_a_failed_member_breaks_the_chain_after_it_for_health_and_stays_for_prune(tmp_path):
    backup_dir = tmp_path / "backups"
    chain = ids_of(incremental_chain(tmp_path / "src", backup_dir, 5))
    for backup_id in chain:
        rewrite(backup_dir, backup_id, verification={"state": "verified", "level": "full"})
    rewrite(backup_dir, chain[2], verification={"state": "failed", "level": "full", "problem": "bad member"})
    result = info(backup_dir)
    broken = problems(result, "broken_chain")
    assert [problem["id"] for problem in broken] == [chain[4], chain[3]]
    assert broken[0]["level"] == "error" and broken[0]["member"] == chain[2]
    assert broken[0]["message"].startswith("job app: backup %s cannot be restored: %s of its chain failed its "
                                           "verification" % (chain[4], chain[2]))
    assert result["health"]["level"] == "error"
    (failed,) = problems(result, "failed")
    assert failed["id"] == chain[2] and failed["message"].endswith("(once no kept backup's chain needs it)")
    before = fingerprint(str(backup_dir / "app"))
    plan = _prune.prune(str(backup_dir), _option_groups.build_policy(keep_last=1))
    # keep_last keeps L4 though it cannot be restored, min_keep the newest restorable backup, L1; L4 keeps what it
    # needs, the failed L2 included: nothing is removed
    assert plan["removed"] == [] and fingerprint(str(backup_dir / "app")) == before
    assert {entry["id"]: entry["reasons"] for entry in plan["kept"]}[chain[1]] == ["min_keep"]


def test_a_missing_member_is_a_health_problem_for_every_backup_that_needs_it(tmp_path):
    backup_dir = tmp_path / "backups"
    chain = ids_of(incremental_chain(tmp_path / "src", backup_dir, 4))
    for name in files_of(backup_dir, [chain[1]]):
        os.unlink(str(backup_dir / "app" / name))
    result = info(backup_dir)
    broken = problems(result, "broken_chain")
    assert [problem["id"] for problem in broken] == [chain[3], chain[2]]
    assert "%s of its chain is missing from %s" % (chain[1], backup_dir / "app") in broken[0]["message"]
    # the next backup does not build on the broken chain: a full one, whole again
    fresh = incremental_chain(tmp_path / "src", backup_dir, 1)[0]["metadata"]
    assert fresh["level"] == 0 and chain[1] in fresh["full_reason"]


def test_listing_shows_level_base_and_chain(tmp_path):
    backup_dir = tmp_path / "backups"
    chain = ids_of(incremental_chain(tmp_path / "src", backup_dir, 3))
    plain = backup(tmp_path / "src", backup_dir, job="other")["id"]
    listed = {meta["id"]: meta for meta in info(backup_dir)["backups"]}
    assert [(listed[backup_id]["level"], listed[backup_id]["base"], listed[backup_id]["chain"])
            for backup_id in chain] == [(level, chain[0], chain[:level + 1]) for level in range(3)]
    assert "level" not in listed[plain] and "chain" not in listed[plain]


def test_small_incrementals_are_not_too_small_and_a_full_one_is_compared_with_full_ones(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(400_000))
    backup_dir = tmp_path / "backups"
    for _number in range(3):
        backup(source, backup_dir)
    made = incremental_chain(source, backup_dir, 3)
    assert made[-1]["size"] * 10 < made[0]["size"]  # an incremental stores only the small change
    assert problems(info(backup_dir), "too_small") == []
    # a full backup of an emptied tree: the small incrementals before it do not hide it
    (source / "big.bin").unlink()
    emptied = backup(source, backup_dir)["id"]
    (warning,) = problems(info(backup_dir), "too_small")
    assert warning["id"] == emptied and "median of the 4 before it" in warning["message"]


@pytest.mark.parametrize("chain_value", ["app-x", [], ["app-20200101T000000Z"], [1, 2]])
def test_metadata_with_a_chain_that_is_not_a_list_of_ids_ending_with_its_own_is_not_trusted(tmp_path, chain_value):
    backup_dir = tmp_path / "backups"
    chain = ids_of(incremental_chain(tmp_path / "src", backup_dir, 2))
    rewrite(backup_dir, chain[1], chain=chain_value)
    before = fingerprint(str(backup_dir / "app"))
    result = info(backup_dir)
    (bad,) = [leftover for leftover in result["leftovers"] if leftover["kind"] == "bad_metadata"]
    assert bad["id"] == chain[1] and "its chain is not a list of backup ids ending with its own" in bad["problem"]
    _prune.prune(str(backup_dir), _option_groups.build_policy(keep_last=1))
    assert fingerprint(str(backup_dir / "app")) == before  # prune never removes what it cannot trust
