# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/backup.yml without any identity: the modules read their artifacts back, and the summary and the report
say which kind of check each backup had."""

from __future__ import annotations

import sys

from test_backup_replicate import play_backup
from testlib import RECIPIENT, make_tree, sqlite_sample

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog


def test_the_summary_names_the_check_each_backup_had(tmp_path):
    make_tree(str(tmp_path / "src"))
    sqlite_sample(str(tmp_path / "app.db"))
    variables = {"backup_dir": str(tmp_path / "backups"), "backup_report_file": str(tmp_path / "report.json"),
                 "ansible_python_interpreter": sys.executable,
                 "backup_jobs": [{"name": "app", "paths": [str(tmp_path / "src")], "recipients": [RECIPIENT]},
                                 {"name": "db", "databases": [{"engine": "sqlite", "name": str(tmp_path / "app.db")}],
                                  "recipients": [RECIPIENT], "read_back": False}]}
    played, report = play_backup(tmp_path, variables)
    assert played.returncode == 0, played.stdout[-4000:]
    assert {row["job"]: row["verified"] for row in report["backups"]} == {"app": "full (read-back)", "db": "checksum"}
    rows = {line.split()[1]: line for line in played.stdout.splitlines() if line.strip(' "').startswith("localhost ")}
    assert "full (read-back)" in rows["app"] and " checksum " in rows["db"]
    # The backup not read back had its checksum verified by the playbook; the other keeps its read-back record.
    recorded = {row["job"]: _catalog.find_backup(variables["backup_dir"], row["id"])["verification"]
                for row in report["backups"]}
    assert (recorded["app"]["level"], recorded["app"]["method"]) == ("full", "read-back")
    assert (recorded["db"]["state"], recorded["db"]["level"], recorded["db"]["method"]) == \
        ("verified", "checksum", "verify")
