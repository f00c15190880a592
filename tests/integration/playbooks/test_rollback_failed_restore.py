# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollback.yml on localhost when a restore fails: the host is put back as it was and never reported rolled back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_backup_replicate import play_backup
from testlib import COLLECTIONS, IDENTITY, RECIPIENT, ROOT, custom_stats, make_tree, tree_digest


def play_rollback(tmp_path, variables, **env):
    """ansible-playbook rollback.yml on localhost, confirmed, with the identity, without standard input; its report
    in rollback-report.json, custom stats shown as AWX records them; env: more of Ansible's settings."""
    (tmp_path / "rollback-vars.json").write_text(json.dumps(dict(
        variables, backup_identity=IDENTITY, rollback_confirm=True, rollback_hosts="localhost",
        rollback_report_file=str(tmp_path / "rollback-report.json"))))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_SHOW_CUSTOM_STATS="1", **env)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "@%s" % (tmp_path / "rollback-vars.json"),
                           os.path.join(ROOT, "playbooks", "rollback.yml")], env=env, capture_output=True,
                          text=True, check=False, cwd=str(tmp_path), stdin=subprocess.DEVNULL)


def test_a_restore_that_fails_reverts_the_host_and_fails_the_rollback(tmp_path):
    source = tmp_path / "srv" / "app"
    make_tree(str(source))
    variables = {"backup_dir": str(tmp_path / "backups"), "ansible_python_interpreter": sys.executable,
                 "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT]}]}
    played, report = play_backup(tmp_path, dict(variables, deploy_id="v1",
                                                backup_report_file=str(tmp_path / "backup-report.json")))
    assert played.returncode == 0, played.stdout[-4000:]
    artifact = report["backups"][0]["path"]
    (source / "text.txt").write_text("the deploy's version\n")
    deployed = tree_digest(str(source))
    data = bytearray(open(artifact, "rb").read())
    data[len(data) // 2] ^= 0x01  # the backup is damaged: its restore fails when it reaches that chunk
    with open(artifact, "wb") as handle:
        handle.write(bytes(data))

    played = play_rollback(tmp_path, dict(variables, deploy_id="v1"))
    assert played.returncode != 0
    assert "was not rolled back" in played.stdout, played.stdout[-6000:]
    assert "failed authentication" in played.stdout
    rolled = json.loads((tmp_path / "rollback-report.json").read_text())
    statuses = {name: host["status"] for name, host in rolled["hosts"].items()}
    assert statuses["localhost"] != "rolled_back", statuses
    assert tree_digest(str(source)) == deployed  # put back as it was before the rollback
    stats = custom_stats(played.stdout)
    assert stats["lifeboat_rollback"]["hosts"] == statuses  # what a workflow's next job gets
    assert stats["lifeboat_rollback"]["report"] == str(tmp_path / "rollback-report.json")
