# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore of a tree that holds the catalog (/var with /var/backups/lifeboat in it) never removes, replaces or
hides the catalog, the backups of any job in it, or the safety backup it just made."""

from __future__ import annotations

import os

import pytest

from testlib import KEY, backup, fingerprint, restore

from ansible_collections.lifeboat.backup.plugins.module_utils import _restore, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def outside_catalog(host):
    """The fingerprint of /var but the catalog."""
    inside = os.path.relpath(host["catalog"], host["var"])
    return {name: entry for name, entry in fingerprint(host["var"]).items()
            if name != inside and not name.startswith(inside + "/")}


@pytest.fixture(name="host")
def host_fixture(tmp_path):
    """A host's /var with the default catalog in it, holding the backups of three jobs, /var's own among them."""
    root = str(tmp_path / "host")
    var = os.path.join(root, "var")
    catalog = os.path.join(var, "backups", "lifeboat")
    write(os.path.join(var, "lib", "app", "data.txt"), "data v1\n")
    write(os.path.join(var, "log", "app.log"), "log v1\n")
    write(os.path.join(var, "backups", "dpkg.status.0"), "dpkg v1\n")
    write(os.path.join(root, "etc", "app.conf"), "conf\n")
    write(os.path.join(root, "home", "alice", "notes"), "notes\n")
    backup([os.path.join(root, "etc")], catalog, "etc")
    backup([os.path.join(root, "home")], catalog, "home")
    made = backup([var], catalog, "var")
    return {"root": root, "var": var, "catalog": catalog, "id": made["id"]}


def catalog_files(host):
    """What the catalog holds: its files' content, modes and owners (the lock's and the job directories' mtimes
    change with every backup and restore)."""
    found = fingerprint(host["catalog"], seconds=True, dir_mtimes=False)
    found.pop(".lock", None)
    return found


def spoil(host):
    var = host["var"]
    write(os.path.join(var, "lib", "app", "data.txt"), "data v2\n")
    write(os.path.join(var, "lib", "app", "extra.txt"), "extra\n")
    write(os.path.join(var, "new", "file"), "new\n")
    os.unlink(os.path.join(var, "log", "app.log"))
    write(os.path.join(var, "backups", "dpkg.status.0"), "dpkg v2\n")
    write(os.path.join(var, "backups", "extra.1"), "extra\n")


def assert_catalog_kept(host, before, safety_id):
    """Every file the catalog held is there with its content; the safety backup is complete and verifies."""
    now = catalog_files(host)
    assert {name: now.get(name) for name in before} == before
    for backup_id in [safety_id] + [os.path.basename(name)[:-5] for name in before if name.endswith(".json")]:
        result = _verify.verify(backup_dir=host["catalog"], backup_id=backup_id, level="full", key=KEY)
        assert result["verified"], result


@pytest.mark.parametrize("delete_extra", [False, True], ids=["keep-extras", "delete-extra"])
def test_a_whole_tree_restore_keeps_the_catalog_and_its_safety_backup(host, delete_extra):
    spoil(host)
    spoiled = outside_catalog(host)
    catalog = catalog_files(host)
    assert len([name for name in catalog if name.endswith(".json")]) == 3
    result = restore(host["catalog"], host["id"], delete_extra=delete_extra)
    assert result["changed"] and result["safety_backup_id"]
    assert_catalog_kept(host, catalog, result["safety_backup_id"])
    var = host["var"]
    assert read(os.path.join(var, "lib", "app", "data.txt")) == "data v1\n"
    assert read(os.path.join(var, "log", "app.log")) == "log v1\n"
    assert read(os.path.join(var, "backups", "dpkg.status.0")) == "dpkg v1\n"
    extras = [os.path.join(var, "lib", "app", "extra.txt"), os.path.join(var, "new", "file"),
              os.path.join(var, "backups", "extra.1")]
    assert [os.path.exists(path) for path in extras] == [not delete_extra] * 3
    assert all(".lifeboat-" not in name for name in outside_catalog(host))
    # The undo, as the rollback playbook reverts: the safety backup with delete_extra.
    after = catalog_files(host)
    undo = restore(host["catalog"], result["safety_backup_id"], delete_extra=True, safety_backup=False)
    assert undo["changed"]
    assert outside_catalog(host) == spoiled
    assert catalog_files(host) == after


@pytest.mark.parametrize("delete_extra", [False, True], ids=["keep-extras", "delete-extra"])
def test_an_include_restore_of_the_directory_holding_the_catalog_keeps_it(host, delete_extra):
    spoil(host)
    catalog = catalog_files(host)
    backups = os.path.join(host["var"], "backups")
    result = restore(host["catalog"], host["id"], delete_extra=delete_extra, include=[backups])
    assert result["changed"]
    assert_catalog_kept(host, catalog, result["safety_backup_id"])
    assert read(os.path.join(backups, "dpkg.status.0")) == "dpkg v1\n"
    assert os.path.exists(os.path.join(backups, "extra.1")) is not delete_extra
    assert read(os.path.join(host["var"], "lib", "app", "data.txt")) == "data v2\n"  # not included: untouched
    assert result["differences"]["removed"] == ([os.path.join(backups, "extra.1").lstrip("/")] if delete_extra
                                                else [])


def test_paths_of_the_backup_inside_the_catalog_are_left_out_with_a_warning(host, tmp_path):
    """A backup of /var made into another catalog holds what /var/backups/lifeboat held then: never restored."""
    elsewhere = str(tmp_path / "elsewhere")
    made = backup([host["var"]], elsewhere, "var")
    spoil(host)
    catalog = catalog_files(host)
    request = _restore.RestoreRequest(path=made["path"], backup_dir=host["catalog"], key=KEY,
                                      delete_extra=True, safety_backup=False)
    result = _restore.restore_backup(request)
    assert "%d path(s) of the backup lie in the catalog and were not restored, first %s: a restore never writes into " \
        "the catalog" % (len(fingerprint(host["catalog"])) + 1, host["catalog"]) in result["warnings"]
    assert catalog_files(host) == catalog
    assert read(os.path.join(host["var"], "lib", "app", "data.txt")) == "data v1\n"


def test_a_dest_inside_the_catalog_is_refused(host):
    catalog = catalog_files(host)
    with pytest.raises(UsageError) as refused:
        restore(host["catalog"], host["id"], dest=os.path.join(host["catalog"], "etc"))
    assert "lies in the catalog %s, which a restore never writes into" % host["catalog"] in str(refused.value)
    assert catalog_files(host) == catalog
