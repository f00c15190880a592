# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""numeric_owner (the default) restores uids and gids as recorded: ids without a name on the host give one warning."""

from __future__ import annotations

import os

import pytest

from testlib import KEY, RECIPIENT
from ansible_collections.lifeboat.backup.plugins.module_utils import _archive, _restore


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are restored only as root")
def test_ids_without_a_name_on_the_host_give_one_warning_naming_them(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for number in range(3):
        (source / ("orphan%d" % number)).write_text("x")
        os.chown(source / ("orphan%d" % number), 4242, 4343)
    (source / "other").write_text("x")
    os.chown(source / "other", 4244, 0)
    (source / "root-owned").write_text("x")
    made = _archive.run_archive(_archive.ArchiveRequest([str(source)], "app", backup_dir=str(tmp_path / "backups"),
                                                        recipients=[RECIPIENT]))
    request = _restore.RestoreRequest(backup_dir=str(tmp_path / "backups"), backup_id=made["id"],
                                      key=KEY, dest=str(tmp_path / "out"))
    result = _restore.restore_backup(request)
    assert [warning for warning in result["warnings"] if "no name on this host" in warning] == [
        "restored files belong to uid 4242, 4244 and gid 4343, which have no name on this host: a user or group "
        "created later with that id will own them (numeric_owner: false maps the names recorded in the backup "
        "instead)"]
    assert os.lstat(str(tmp_path / "out") + str(source / "orphan0")).st_uid == 4242
