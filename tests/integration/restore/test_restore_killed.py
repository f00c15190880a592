# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore SIGKILLed at each step of its swap: health reports it, the repair puts the target back exactly, the
catalog stays intact; a second restore never touches what a running one moved aside."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

import testlib
from test_restore_files import listing, rich_tree, spoil
from testlib import IDENTITY, KEY, backup, fingerprint
from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _cli, _health, _restore, _verify

# The restore in a child process that SIGKILLs itself at one point of the swap: os.rename and the swap's tree
# removal are wrapped in this process only, the engine has no hook.
KILLED_AT = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore
from ansible_collections.lifeboat.backup.plugins.module_utils._restore import swap
point = sys.argv[2]
rename, remove_tree = os.rename, swap.remove_tree

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def killing_rename(src, dst, **kwargs):
    # The swap renames relative to directory descriptors: the live tree aside within its parent, then the
    # staged tree from its staging directory into the parent.
    moves_aside = swap.OLD_MARKER in str(dst)
    swaps_in = kwargs.get("src_dir_fd") is not None and kwargs.get("src_dir_fd") != kwargs.get("dst_dir_fd") \
        and swap.STAGING_MARKER in os.readlink("/proc/self/fd/%d" % kwargs["src_dir_fd"])
    if (point == "before_first" and moves_aside) or (point == "between" and swaps_in):
        die()
    rename(src, dst, **kwargs)
    if point == "after_second" and swaps_in:
        die()

def killing_remove_tree(parent_fd, name):
    if point == "removing_old" and swap.OLD_MARKER in name:
        path = os.path.join(os.readlink("/proc/self/fd/%d" % parent_fd), name)
        for directory, _dirs, files in os.walk(path):
            if files:
                os.unlink(os.path.join(directory, files[0]))  # part of the old tree is gone
                die()
    remove_tree(parent_fd, name)

os.rename, swap.remove_tree = killing_rename, killing_remove_tree
_restore.restore_backup(_restore.RestoreRequest(backup_dir=sys.argv[3], backup_id=sys.argv[4],
                                                key=_age.Key(identities=[sys.argv[5]]), delete_extra=True))
sys.exit("the restore ended before it was killed")
"""


def killed_restore(point, backup_dir, backup_id):
    process = subprocess.run([sys.executable, "-c", KILLED_AT, testlib.TESTS, point, str(backup_dir), backup_id, IDENTITY],
                             check=False, capture_output=True, text=True, timeout=120)
    assert process.returncode == -9, process.stderr


def cli(tmp_path, *argv):
    """The on-host command in this process: (exit code, what it printed)."""
    config = tmp_path / "etc"
    config.mkdir(exist_ok=True)
    (config / "lifeboat.json").write_text(json.dumps({"backup_dir": str(tmp_path / "backups")}))
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = _cli.main(["--config-dir", str(config)] + list(argv))
    return code, printed.getvalue()


def catalog_intact(backup_dir, ids):
    """Every backup is there and matches its checksum; no leftover, no journal."""
    assert {meta["id"] for meta in _catalog.list_metadata(str(backup_dir))} == set(ids)
    for backup_id in ids:
        _verify.verify(backup_dir=str(backup_dir), backup_id=backup_id)
    assert all(not scan.leftovers for scan in _catalog.scan_catalog(str(backup_dir)))
    assert _catalog.restore_journals(str(backup_dir)) == []


@pytest.fixture(name="spoiled")
def spoiled_fixture(tmp_path):
    source = rich_tree(str(tmp_path / "data" / "src"))
    made = backup([source], tmp_path / "backups")
    restored = fingerprint(source)
    spoil(source)
    return source, tmp_path / "backups", made["id"], restored, fingerprint(source)


@pytest.mark.parametrize("point,committed", [
    ("before_first", False), ("between", False), ("after_second", False), ("removing_old", True)])
def test_a_restore_killed_in_its_swap_is_reported_and_repaired_exactly(spoiled, tmp_path, point, committed):
    source, backups, backup_id, restored, before = spoiled
    killed_restore(point, backups, backup_id)
    safety = [meta["id"] for meta in _catalog.list_metadata(str(backups)) if meta["id"] != backup_id]
    assert len(safety) == 1  # the killed restore took its safety backup first

    report = _health.catalog_info(str(backups), disk_usage_threshold=100.0)["health"]
    (problem,) = [problem for problem in report["problems"] if problem["code"] == "interrupted_restore"]
    assert problem["level"] == "critical" and "lifeboat restore --repair" in problem["message"]
    assert "a restore of %s into %s was killed" % (backup_id, source) in problem["message"]
    code, printed = cli(tmp_path, "health", "--no-alerts")
    assert code == _cli.EXIT_HEALTH and "lifeboat restore --repair" in printed

    code, printed = cli(tmp_path, "restore", "--repair")
    assert code == _cli.EXIT_OK
    if committed:
        assert "kept the restored %s" % source in printed
        assert fingerprint(source) == restored
    else:
        assert "put %s back as it was before that restore" % source in printed
        assert fingerprint(source) == before
    assert listing(os.path.dirname(source)) == ["src"]
    catalog_intact(backups, [backup_id] + safety)
    assert not any(p["code"] == "interrupted_restore"
                   for p in _health.catalog_info(str(backups), disk_usage_threshold=100.0)["health"]["problems"])


def test_the_next_restore_puts_the_target_back_first_and_says_so(spoiled):
    source, backups, backup_id, restored, _before = spoiled
    killed_restore("between", backups, backup_id)
    assert not os.path.lexists(source)  # killed between the renames: the live tree is only aside
    result = _restore.restore_backup(_restore.RestoreRequest(backup_dir=str(backups), backup_id=backup_id,
                                                             key=KEY, delete_extra=True))
    (repaired,) = result["repaired"]
    assert repaired["targets"] == [source] and repaired["state"] == "started"
    assert "put %s back as it was before that restore" % source in result["warnings"][0]
    assert fingerprint(source) == restored and listing(os.path.dirname(source)) == ["src"]
    safety = [meta["id"] for meta in _catalog.list_metadata(str(backups)) if meta["id"] != backup_id]
    catalog_intact(backups, [backup_id] + safety)


def test_a_second_restore_waits_for_the_running_one_and_touches_nothing(spoiled):
    source, backups, backup_id, _restored, before = spoiled
    with _catalog.CatalogLock(str(backups)):
        holder = subprocess.run(  # the lock is held by this process, as a running restore would hold it
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import conftest\n"
             "from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _restore\n"
             "from ansible_collections.lifeboat.backup.plugins.module_utils._errors import LockedError\n"
             "try:\n    _restore.restore_backup(_restore.RestoreRequest(backup_dir=sys.argv[2], backup_id=sys.argv[3],"
             " key=_age.Key(identities=[sys.argv[4]]), safety_backup=False))\nexcept LockedError as exc:\n    print(exc)\n",
             testlib.TESTS, str(backups), backup_id, IDENTITY],
            check=True, capture_output=True, text=True, timeout=120)
    assert "is locked by another run (pid %d on " % os.getpid() in holder.stdout
    assert fingerprint(source) == before and listing(os.path.dirname(source)) == ["src"]
