# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup.yml with backup_incremental: the pre-deploy backup is an incremental on the job's chain, and rollback.yml
restores it with the file key of every artifact of its chain, unwrapped on the controller."""

from __future__ import annotations

import json
import sys

from test_backup_replicate import play_backup
from test_rollback_failed_restore import play_rollback
from testlib import RECIPIENT, make_tree, tree_digest


def test_a_pre_deploy_incremental_backup_rolls_back(tmp_path):
    source = tmp_path / "srv" / "app"
    make_tree(str(source))
    variables = {"backup_dir": str(tmp_path / "backups"), "ansible_python_interpreter": sys.executable,
                 "backup_incremental": True,
                 "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT]}]}
    reports = []
    for deploy in ("v1", "v2"):
        played, report = play_backup(tmp_path, dict(variables, deploy_id=deploy,
                                                    backup_report_file=str(tmp_path / ("report-%s.json" % deploy))))
        assert played.returncode == 0, played.stdout[-4000:]
        reports.append(report)
        (source / ("added-after-%s.txt" % deploy)).write_text("the deploy of %s\n" % deploy)
    assert [report["backups"][0]["level"] for report in reports] == [0, 1]
    assert "files/L1" in played.stdout
    before_v2 = tree_digest(str(source))
    (source / "added-after-v2.txt").unlink()  # the tree as backup v2 saw it
    at_v2 = tree_digest(str(source))
    (source / "added-after-v2.txt").write_text("the deploy of v2\n")
    assert tree_digest(str(source)) == before_v2

    played = play_rollback(tmp_path, dict(variables, deploy_id="v2", rollback_delete_extra=True),
                           ANSIBLE_PIPELINING="0")
    assert played.returncode == 0, played.stdout[-6000:]
    rolled = json.loads((tmp_path / "rollback-report.json").read_text())
    assert rolled["hosts"]["localhost"]["status"] == "rolled_back", rolled
    assert tree_digest(str(source)) == at_v2
