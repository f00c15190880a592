# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catalog_info on real backups: verification states recorded by verify, leftovers of killed runs, anomalies."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from testlib import KEY, backup, make_tree, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _fileio, _health, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError


def info(backup_dir, **options):
    options.setdefault("disk_usage_threshold", 100.0)
    return _health.catalog_info(str(backup_dir), **options)


def by_code(result):
    found = {}
    for problem in result["health"]["problems"]:
        found.setdefault(problem["code"], []).append(problem)
    return found


def test_a_real_catalog_with_verified_failed_and_leftover_files(tmp_path):
    source = make_tree(tmp_path / "src")
    backups = tmp_path / "backups"
    app = [backup(source, backups, tags=["nightly"])["id"] for _number in range(4)]
    database = backup(source, backups, job="db", deploy_id="v42", read_back=False)["id"]
    for backup_id in app[1:]:
        assert _verify.verify(str(backups), backup_id, level="full",
                              key=KEY)["verified"]
    damaged = _catalog.artifact_path(_catalog.find_backup(str(backups), app[0]))
    with open(damaged, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\0" * 16)
    with pytest.raises(IntegrityError):
        _verify.verify(str(backups), app[0], level="checksum")
    # A run killed while writing leaves its temporary file; here one from two hours ago.
    killed = _fileio.AtomicFile(str(backups / "app" / "app-20200101T000000Z.tar.zst.age"))
    killed.write(b"partial")
    two_hours_ago = _catalog.utc_now().timestamp() - 7200
    os.utime(killed.temp_path, (two_hours_ago, two_hours_ago))

    result = info(backups)
    assert [meta["id"] for meta in result["backups"]] == [database] + app[::-1]
    on_disk = _catalog.read_metadata(os.path.join(str(backups), "app", app[-1] + ".json"))
    assert result["backups"][1] == on_disk
    stats = result["stats"]["jobs"]
    assert (stats["app"]["verified"], stats["app"]["failed"], stats["app"]["unverified"]) == (3, 1, 0)
    assert stats["app"]["total_size"] == sum(os.path.getsize(_catalog.artifact_path(meta))
                                             for meta in _catalog.list_metadata(str(backups), "app"))
    assert stats["app"]["average_ratio"] > 1 and stats["app"]["oldest_id"] == app[0]
    assert (stats["db"]["count"], stats["db"]["unverified"]) == (1, 1)
    problems = by_code(result)
    assert sorted(problems) == ["failed", "temp_file", "unverified"]
    assert problems["failed"][0]["id"] == app[0] and "does not match its checksum" in problems["failed"][0]["message"]
    assert problems["unverified"][0]["job"] == "db"
    (leftover,) = result["leftovers"]
    assert leftover["kind"] == "temp_file" and leftover["paths"] == [killed.temp_path] and leftover["removable"]
    assert result["health"]["jobs"]["app"]["newest_good"] == app[-1]
    assert [meta["id"] for meta in info(backups, tags=["nightly"], since="1h")["backups"]] == app[::-1]
    assert [meta["id"] for meta in info(backups, deploy_id="v42")["backups"]] == [database]


def test_stale_and_shrunken_backups_are_reported(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "random.bin").write_bytes(os.urandom(100_000))
    backups = tmp_path / "backups"
    made = [backup(source, backups, compression="gzip") for _number in range(3)]
    (source / "random.bin").write_bytes(os.urandom(1_000))
    made.append(backup(source, backups, compression="gzip"))
    newest = made[-1]
    for hours_ago, result in zip((60, 50, 40, 30), made):  # a day apart, the newest 30 h ago
        moment = _catalog.utc_now() - timedelta(hours=hours_ago)
        metadata = dict(result["metadata"], created_at=_catalog.iso_utc(moment), local_time=_catalog.local_iso(moment))
        _catalog.write_metadata(result["path"].split(".")[0] + ".json", metadata)
    problems = by_code(info(backups, max_age="1d"))
    assert problems["too_small"][0]["id"] == newest["id"]
    assert problems["too_old"][0]["message"].startswith("job app: newest good backup is 30 h old (limit 24 h)")
    assert "too_old" not in by_code(info(backups, max_age="31h"))


def test_reading_a_real_catalog_changes_nothing(tmp_path):
    source = make_tree(tmp_path / "src")
    backups = tmp_path / "backups"
    for _number in range(2):
        backup(source, backups)
    before = tree_digest(str(backups))
    info(backups, max_age="1h", since="1d", kind="files")
    assert tree_digest(str(backups)) == before
