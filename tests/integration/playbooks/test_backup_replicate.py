# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/backup.yml with backup_replicate: the pre-deploy backups are on the job's vaults before the gate opens,
the summary and the report name them, and a vault that fails closes the gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from testlib import COLLECTIONS, RECIPIENT, ROOT, custom_stats, make_tree


def back_up(tmp_path, vault_url):
    source = tmp_path / "src"
    if not source.exists():
        make_tree(str(source))
    variables = {"backup_dir": str(tmp_path / "backups"), "backup_replicate": True,
                 "backup_report_file": str(tmp_path / "report.json"), "ansible_python_interpreter": sys.executable,
                 "backup_vaults": [{"name": "offsite", "url": vault_url},
                                   {"name": "unused", "url": "file:///nowhere"}],
                 "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT],
                                  "vaults": ["offsite"]}]}
    return play_backup(tmp_path, variables)


def play_backup(tmp_path, variables):
    """ansible-playbook backup.yml on localhost with variables (backup_report_file among them), custom stats shown
    as AWX records them: (run, report)."""
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_SHOW_CUSTOM_STATS="1")
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    played = subprocess.run([binary, "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
                             os.path.join(ROOT, "playbooks", "backup.yml")], env=env, capture_output=True, text=True,
                            check=False, cwd=str(tmp_path))
    return played, json.loads((tmp_path / variables["backup_report_file"]).read_text())


def test_the_backups_are_on_the_vault_before_the_gate_opens(tmp_path):
    (tmp_path / "vault").mkdir()
    played, report = back_up(tmp_path, "file://%s/vault" % tmp_path)
    assert played.returncode == 0, played.stdout[-4000:]
    assert "Deploy gate open" in played.stdout
    backup_id = report["backups"][0]["id"]
    assert report["backups"][0]["vaults"] == ["offsite"]
    assert os.path.exists(tmp_path / "vault" / "localhost" / "app" / (backup_id + ".sha256"))
    assert "VAULTS" in played.stdout and "offsite" in played.stdout
    # What a workflow's next job gets (set_stats): the deploy id, the report, each host's status.
    stats = custom_stats(played.stdout)
    assert stats["lifeboat_backup"] == {"deploy_id": report["deploy_id"], "hosts": {"localhost": "ok"},
                                        "report": str(tmp_path / "report.json")}


def test_a_vault_that_fails_closes_the_gate_and_names_it(tmp_path):
    played, report = back_up(tmp_path, "file://%s/missing" % tmp_path)
    assert played.returncode != 0
    assert report["hosts"]["localhost"]["status"] == "failed"
    assert "vault offsite" in report["hosts"]["localhost"]["reason"]
    assert "does not exist" in report["hosts"]["localhost"]["reason"]
    assert "Deploy gate closed" in played.stdout
    assert len(os.listdir(tmp_path / "backups" / "app")) == 3  # the backup itself is made and kept
