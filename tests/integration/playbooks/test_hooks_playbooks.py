# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jobs' hooks in backup.yml and rollback.yml on localhost: when they run, what a failing one does to the host's
record, and that no secret reaches them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dbservers
from test_backup_replicate import play_backup
from testlib import COLLECTIONS, IDENTITY, RECIPIENT, ROOT, fingerprint, make_tree

# Appends its stage, outcome, backup ids and error to $1, then the content of $2 (a file it sees) when given.
LOGGER = 'echo "$LIFEBOAT_HOOK|$LIFEBOAT_OUTCOME|$LIFEBOAT_BACKUP_IDS|$LIFEBOAT_ERROR" >> "$1"; ' \
         'if [ -n "$2" ]; then cat "$2" >> "$1"; fi'


def logger(tmp_path, *seen):
    return ["sh", "-c", LOGGER, "logger", str(tmp_path / "hooks.log")] + [str(path) for path in seen]


def hook_log(tmp_path):
    return (tmp_path / "hooks.log").read_text().splitlines()


def variables(tmp_path, **job):
    source = tmp_path / "srv" / "app"
    if not source.exists():
        make_tree(str(source))
    return {"backup_dir": str(tmp_path / "backups"), "backup_report_file": str(tmp_path / "report.json"),
            "ansible_python_interpreter": sys.executable,
            "backup_jobs": [dict({"name": "app", "paths": [str(source)], "recipients": [RECIPIENT]}, **job)]}


def test_backup_runs_the_hooks_around_the_jobs_backups(tmp_path):
    played, report = play_backup(tmp_path, variables(tmp_path, hooks={
        "before_backup": [logger(tmp_path)], "after_backup": [logger(tmp_path)], "on_failure": [logger(tmp_path)]}))
    assert played.returncode == 0, played.stdout[-4000:]
    (made,) = [row["id"] for row in report["backups"]]
    assert hook_log(tmp_path) == ["before_backup|||", "after_backup|success|%s|" % made]


def test_a_failing_before_backup_fails_the_host_with_its_message_and_makes_no_backup(tmp_path):
    played, report = play_backup(tmp_path, variables(tmp_path, hooks={
        "before_backup": [{"shell": "echo the queue does not drain; exit 7"}],
        "after_backup": [logger(tmp_path)], "on_failure": [logger(tmp_path)]}))
    assert played.returncode != 0
    assert "Deploy gate closed" in played.stdout
    message = "before_backup hook echo the queue does not drain; exit 7 exited with status 7; its output ends: " \
              "the queue does not drain"
    host = report["hosts"]["localhost"]
    assert host["status"] == "failed" and message in host["reason"], host
    assert report["backups"] == [] and not os.path.exists(tmp_path / "backups" / "app")
    log = hook_log(tmp_path)
    assert [line.split("|")[:2] for line in log] == [["after_backup", "failure"], ["on_failure", "failure"]]
    assert all(message in line for line in log)


def test_an_after_backup_that_fails_keeps_the_backup_and_says_both(tmp_path):
    played, report = play_backup(tmp_path, variables(tmp_path, hooks={"after_backup": [["false"]]}))
    assert played.returncode != 0
    (made,) = [row["id"] for row in report["backups"]]
    assert os.path.exists(tmp_path / "backups" / "app" / (made + ".json"))
    assert "backup %s made and verified; after_backup hook false exited with status 1" % made \
        in report["hosts"]["localhost"]["reason"]


def test_no_secret_reaches_a_hook_of_backup_yml(tmp_path, postgres_server, monkeypatch):
    name = postgres_server.create_database("hooks_playbook_secret")
    recorder = 'env > "$1"; printf "%s\\n" "$0" "$@" >> "$1"; ps -eo args >> "$1"'
    try:
        job = {"paths": [], "databases": [dict(dbservers.login(postgres_server), engine="postgresql", name=name)],
               "hooks": {stage: [["sh", "-c", recorder, "recorder", str(tmp_path / stage)]]
                         for stage in ("before_backup", "after_backup")}}
        monkeypatch.setenv("ANSIBLE_PIPELINING", "0")  # the modules' arguments go through a file on the host
        played, _report = play_backup(tmp_path, variables(tmp_path, **job))
        assert played.returncode == 0, played.stdout[-4000:]
        for stage in ("before_backup", "after_backup"):
            recorded = (tmp_path / stage).read_text()
            assert "LIFEBOAT_JOB=app" in recorded and postgres_server.password not in recorded
        assert postgres_server.password not in played.stdout
    finally:
        postgres_server.drop_database(name)


def test_rollback_runs_before_and_after_restore_around_the_restore(tmp_path):
    settings = variables(tmp_path)
    played, report = play_backup(tmp_path, dict(settings, deploy_id="v1"))
    assert played.returncode == 0, played.stdout[-4000:]
    (backup_id,) = [row["id"] for row in report["backups"]]
    text = tmp_path / "srv" / "app" / "text.txt"
    original = text.read_text()
    text.write_text("the deploy's version\n")
    # The hooks see the file before and after the restore.
    settings["backup_jobs"][0]["hooks"] = {"before_restore": [logger(tmp_path, text)],
                                           "after_restore": [logger(tmp_path, text)]}
    (tmp_path / "rollback-vars.json").write_text(json.dumps(dict(
        settings, backup_identity=IDENTITY, deploy_id="v1", rollback_confirm=True, rollback_hosts="localhost",
        rollback_report_file=str(tmp_path / "rollback-report.json"))))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")

    def rollback():
        return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                               "-c", "local", "-e", "@%s" % (tmp_path / "rollback-vars.json"),
                               os.path.join(ROOT, "playbooks", "rollback.yml")], env=env, capture_output=True,
                              text=True, check=False, cwd=str(tmp_path), stdin=subprocess.DEVNULL)

    played = rollback()
    assert played.returncode == 0, played.stdout[-6000:]
    assert hook_log(tmp_path) == ["before_restore||%s|" % backup_id, "the deploy's version",
                                  "after_restore|success|%s|" % backup_id] + original.splitlines()

    # A failing before_restore restores nothing, and the after_restore hooks still run.
    (tmp_path / "hooks.log").unlink()
    text.write_text("the next deploy's version\n")
    deployed = fingerprint(str(tmp_path / "srv"))
    settings["backup_jobs"][0]["hooks"]["before_restore"] = [{"shell": "echo no maintenance mode; exit 1"}]
    vars_file = json.loads((tmp_path / "rollback-vars.json").read_text())
    vars_file["backup_jobs"] = settings["backup_jobs"]
    (tmp_path / "rollback-vars.json").write_text(json.dumps(vars_file))
    played = rollback()
    assert played.returncode != 0
    assert "before_restore hook echo no maintenance mode; exit 1 exited with status 1" in played.stdout
    assert fingerprint(str(tmp_path / "srv")) == deployed
    rolled = json.loads((tmp_path / "rollback-report.json").read_text())
    assert rolled["hosts"]["localhost"]["status"] == "failed"
    assert hook_log(tmp_path)[0].startswith("after_restore|failure|%s|" % backup_id)


def test_the_agent_role_refuses_a_bad_hook_before_it_installs_anything(tmp_path):
    playbook = tmp_path / "agent.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - lifeboat.backup.agent\n")
    (tmp_path / "agent-vars.json").write_text(json.dumps({
        "ansible_python_interpreter": sys.executable, "agent_install_packages": False,
        "agent_jobs": [{"name": "app", "paths": ["/srv/app"],
                        "hooks": {"before_restore": ["/usr/local/bin/app-maintenance on"]}}]}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    # In check mode: were the check to let it through, the role would still change nothing on this machine.
    played = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                             "-c", "local", "--check", "-e", "@%s" % (tmp_path / "agent-vars.json"), str(playbook)],
                            env=env, capture_output=True, text=True, check=False, cwd=str(tmp_path))
    assert played.returncode != 0
    assert "Check the jobs' hooks" in played.stdout, played.stderr[-3000:]
    assert "hooks.before_restore[0] is a string ('/usr/local/bin/app-maintenance on'): write an argv list" \
        in played.stdout, played.stdout[-3000:]
    assert "lifeboat.backup.agent : Install" not in played.stdout
