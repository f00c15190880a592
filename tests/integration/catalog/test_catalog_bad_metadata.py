# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Broken metadata files in a real catalog: health lists them, every lookup steps over them, none is used."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from testlib import KEY, backup, make_tree, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _health, _restore, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError


# What each broken metadata file holds, from the backup's own metadata.
DAMAGE = {
    "empty_list": lambda text, meta: "[]",
    "truncated": lambda text, meta: text[:len(text) // 2],
    "escaping": lambda text, meta: json.dumps(dict(meta, artifact="../../etc/passwd")),
}


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def catalog_files(backup_dir):
    """Every file of the catalog with its content digest: what a failed lookup must leave alone."""
    found = {}
    for directory, _dirs, files in os.walk(backup_dir):
        for name in files:
            if name != _catalog.LOCK_NAME:
                path = os.path.join(directory, name)
                found[os.path.relpath(path, backup_dir)] = digest(path)
    return found


@pytest.fixture(name="catalog")
def catalog_fixture(tmp_path):
    """A good backup, then one backup per kind of damage (newer, so a latest lookup must step over them)."""
    source = make_tree(str(tmp_path / "src"))
    backup_dir = str(tmp_path / "backups")

    good = backup(source, backup_dir)["id"]
    broken = {}
    for kind, damage in DAMAGE.items():
        broken[kind] = backup(source, backup_dir)["id"]
        path = os.path.join(backup_dir, "app", broken[kind] + ".json")
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(damage(text, json.loads(text)))
    return source, backup_dir, good, broken


def test_good_backups_stay_usable_beside_broken_metadata(catalog, tmp_path):
    source, backup_dir, good, broken = catalog
    assert [meta["id"] for meta in _catalog.list_metadata(backup_dir)] == [good]
    assert _verify.verify(backup_dir=backup_dir, backup_id=good, level="full", key=KEY)["id"] == good
    before, passwd = catalog_files(backup_dir), digest("/etc/passwd")  # verify recorded its outcome: from here on
    request = _restore.RestoreRequest(backup_dir=backup_dir, job="app", latest=True, key=KEY,
                                      dest=str(tmp_path / "out"))
    result = _restore.restore_backup(request)
    assert result["id"] == good
    assert tree_digest(str(tmp_path / "out" / os.path.relpath(source, "/"))) == tree_digest(source)
    by_id = _restore.restore_backup(_restore.RestoreRequest(backup_dir=backup_dir, backup_id=good,
                                                            key=KEY, dest=str(tmp_path / "again")))
    assert by_id["id"] == good and by_id["changed"]
    assert digest("/etc/passwd") == passwd
    after = catalog_files(backup_dir)
    assert {name: value for name, value in after.items() if name in before} == before  # nothing removed or changed


@pytest.mark.parametrize("kind,reason", [
    ("empty_list", "its id is not"),
    ("truncated", "is not valid JSON"),
    ("escaping", "names an artifact that cannot belong to"),
])
def test_a_backup_with_broken_metadata_is_refused_by_id_and_listed_by_health(catalog, tmp_path, kind, reason):
    _source, backup_dir, good, broken = catalog
    before, passwd = catalog_files(backup_dir), digest("/etc/passwd")
    backup_id = broken[kind]
    with pytest.raises(IntegrityError) as restore_error:
        _restore.restore_backup(_restore.RestoreRequest(backup_dir=backup_dir, backup_id=backup_id,
                                                        key=KEY, dest=str(tmp_path / "out")))
    with pytest.raises(IntegrityError) as verify_error:
        _verify.verify(backup_dir=backup_dir, backup_id=backup_id)
    for error in (restore_error.value, verify_error.value):
        assert error.msg.startswith("backup %s cannot be used: its metadata cannot be trusted (" % backup_id)
        assert reason in error.msg and "lifeboat health lists it" in error.msg
    assert not os.path.exists(str(tmp_path / "out"))
    health = _health.catalog_info(backup_dir, disk_usage_threshold=100.0)
    bad = {problem["paths"][-1]: problem for problem in health["health"]["problems"]
           if problem["code"] == "bad_metadata"}
    assert set(bad) == {os.path.join(backup_dir, "app", broken[name] + ".json") for name in DAMAGE}
    assert reason in bad[os.path.join(backup_dir, "app", backup_id + ".json")]["message"]
    assert [meta["id"] for meta in health["backups"]] == [good]
    assert catalog_files(backup_dir) == before and digest("/etc/passwd") == passwd


def test_a_path_built_from_escaping_metadata_is_refused(catalog):
    _source, backup_dir, _good, broken = catalog
    path = os.path.join(backup_dir, "app", broken["escaping"] + ".json")
    metadata = dict(_catalog.read_metadata(path), _metadata_path=path)
    with pytest.raises(IntegrityError, match=r"cannot be trusted: it names an artifact that cannot belong to "
                                             r"app-[0-9TZ-]+: '\.\./\.\./etc/passwd'; refusing to use it"):
        _catalog.artifact_path(metadata)


def test_metadata_beside_an_artifact_restored_by_path_is_checked(catalog, tmp_path):
    _source, backup_dir, _good, broken = catalog
    artifact = os.path.join(backup_dir, "app", broken["escaping"] + ".tar.zst.age")
    with pytest.raises(IntegrityError, match="beside the artifact cannot be trusted: it names an artifact"):
        _restore.restore_backup(_restore.RestoreRequest(path=artifact, key=KEY,
                                                        dest=str(tmp_path / "out")))
    assert not os.path.exists(str(tmp_path / "out"))
