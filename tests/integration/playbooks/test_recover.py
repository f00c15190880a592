# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/recover.yml on localhost as the replacement of a lost host: its tree, its SQLite database and its
catalog are backed up and replicated to a file:// vault by backup.yml, then wiped; recover.yml prints the plan and
changes nothing without recover_confirm, brings the data back with it, backs the host up again onto the vault, and
refuses a second run on the healthy host. The agent's systemd parts are left out (recover_install_agent: false)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from test_backup_replicate import play_backup

from testlib import (COLLECTIONS, IDENTITY, RECIPIENT, ROOT, custom_stats, make_tree, sqlite_rows, sqlite_sample,
                     tree_digest)


@pytest.fixture(name="lost")
def lost_host(tmp_path):
    """A host backed up and replicated, then lost: its tree, its two databases and its catalog gone. Returns its
    variables and what the data was."""
    source, database = tmp_path / "srv" / "app", tmp_path / "data" / "app.db"
    second = database.with_name("audit.db")
    make_tree(str(source))
    database.parent.mkdir()
    sqlite_sample(str(database))
    with sqlite3.connect(second) as connection:
        connection.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, line TEXT)")
        connection.executemany("INSERT INTO audit (line) VALUES (?)", [("line %d" % n,) for n in range(50)])
    (tmp_path / "vault").mkdir()
    variables = {"backup_dir": str(tmp_path / "backups"), "ansible_python_interpreter": sys.executable,
                 "backup_vaults": [{"name": "offsite", "url": "file://%s/vault" % tmp_path}],
                 "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT],
                                  "databases": [{"engine": "sqlite", "name": str(database)},
                                                {"engine": "sqlite", "name": str(second)}],
                                  "vaults": ["offsite"]}]}
    played, _report = play_backup(tmp_path, dict(variables, backup_replicate=True, deploy_id="v1",
                                                 backup_report_file=str(tmp_path / "backup-report.json")))
    assert played.returncode == 0, played.stdout[-4000:]
    before = {"tree": tree_digest(str(source)), "rows": sqlite_rows(str(database)), "audit": sqlite_rows(str(second))}
    for gone in (source, database.parent, tmp_path / "backups"):
        shutil.rmtree(gone)
    database.parent.mkdir()  # the database's directory is there, as a fresh host's provisioning makes it
    variables.update(backup_identity=IDENTITY, recover_hosts="localhost", recover_install_agent=False,
                     recover_report_file=str(tmp_path / "recover-report.json"))
    return {"vars": variables, "before": before, "source": source, "database": database, "second": second}


def recover(tmp_path, variables, **extra):
    """ansible-playbook recover.yml on localhost: (run, report)."""
    (tmp_path / "recover-vars.json").write_text(json.dumps(dict(variables, **extra)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_SHOW_CUSTOM_STATS="1")
    report = tmp_path / "recover-report.json"
    if report.exists():
        report.unlink()
    played = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                             "-c", "local", "-e", "@%s" % (tmp_path / "recover-vars.json"),
                             os.path.join(ROOT, "playbooks", "recover.yml")],
                            env=env, capture_output=True, text=True, check=False, cwd=str(tmp_path),
                            stdin=subprocess.DEVNULL)
    return played, json.loads(report.read_text())


def vault_ids(tmp_path):
    return sorted(name[:-len(".sha256")] for name in os.listdir(tmp_path / "vault" / "localhost" / "app")
                  if name.endswith(".sha256"))


def test_without_confirmation_the_plan_is_printed_and_nothing_changes(tmp_path, lost):
    copies = vault_ids(tmp_path)
    played, report = recover(tmp_path, lost["vars"])
    assert played.returncode != 0
    assert "Nothing was changed: the plan above was not confirmed" in played.stdout
    assert "Recovery plan (the newest copies)" in played.stdout
    for backup_id in copies:
        assert backup_id in played.stdout
    host = report["hosts"]["localhost"]
    assert host["status"] == "planned" and host["state"] == "nothing changed"
    assert sorted(row["id"] for row in host["plan"]) == copies
    assert not lost["source"].exists() and os.listdir(lost["database"].parent) == []
    assert not os.path.exists(tmp_path / "backups" / "app")
    assert vault_ids(tmp_path) == copies


def test_the_host_comes_back_is_protected_again_and_a_second_run_refuses(tmp_path, lost):
    copies = vault_ids(tmp_path)
    played, report = recover(tmp_path, lost["vars"], recover_confirm=True)
    assert played.returncode == 0, played.stdout[-6000:]
    assert tree_digest(str(lost["source"])) == lost["before"]["tree"]
    assert sqlite_rows(str(lost["database"])) == lost["before"]["rows"]
    assert sqlite_rows(str(lost["second"])) == lost["before"]["audit"]  # each dump into its own database
    host = report["hosts"]["localhost"]
    assert host["status"] == "recovered", host
    assert sorted((row["id"], row["vault"]) for row in host["restored"]) == [(i, "offsite") for i in copies]
    assert set(host["steps_s"]) == {"plan", "restore", "gate", "first_backup"}
    # The first backups are in the new catalog and on the vault.
    first = sorted(row["id"] for row in host["first_backups"])
    assert len(first) == 3 and all(row["vaults"] == ["offsite"] for row in host["first_backups"])
    assert set(first) <= set(os.path.splitext(name)[0] for name in os.listdir(tmp_path / "backups" / "app"))
    assert vault_ids(tmp_path) == sorted(copies + first)
    assert "localhost: restored files of job app" in played.stdout
    assert "first backup %s" % first[0] in played.stdout
    stats = custom_stats(played.stdout)
    assert stats["lifeboat_recover"]["hosts"] == {"localhost": "recovered"}  # what a workflow's next job gets

    # A second run on the now healthy host refuses it, and says what is there.
    played, report = recover(tmp_path, lost["vars"], recover_confirm=True)
    assert played.returncode != 0
    host = report["hosts"]["localhost"]
    assert host["status"] == "refused" and host["state"] == "nothing changed"
    assert "it is not empty: the catalog %s holds" % lost["vars"]["backup_dir"] in host["reason"]
    assert "%s holds files" % lost["source"] in host["reason"]
    assert "recover_overwrite=yes" in host["reason"]
    assert tree_digest(str(lost["source"])) == lost["before"]["tree"]
    assert vault_ids(tmp_path) == sorted(copies + first)


def test_a_vault_without_copies_of_the_host_fails_it_and_changes_nothing(tmp_path, lost):
    (tmp_path / "empty-vault").mkdir()
    variables = dict(lost["vars"], backup_vaults=[{"name": "offsite", "url": "file://%s/empty-vault" % tmp_path}])
    played, report = recover(tmp_path, variables, recover_confirm=True)
    assert played.returncode != 0
    host = report["hosts"]["localhost"]
    assert host["status"] == "failed" and host["state"] == "nothing changed"
    assert ("no complete copy for host localhost of the files of job app on offsite, the database %s of job app on "
            "offsite" % lost["database"]) in host["reason"]
    assert not lost["source"].exists() and os.listdir(lost["database"].parent) == []
    assert os.listdir(tmp_path / "empty-vault") == []


def test_a_failed_health_gate_leaves_the_host_failed_and_says_in_what_state(tmp_path, lost):
    played, report = recover(tmp_path, lost["vars"], recover_confirm=True, rollback_health_command="/bin/false",
                             rollback_health_retries=0)
    assert played.returncode != 0
    host = report["hosts"]["localhost"]
    assert host["status"] == "failed", host
    assert "health gate FAILED" in host["state"] and "timers not started" in host["state"]
    assert "data restored: 3 of 3 copies" in host["state"]
    assert host["first_backups"] == []  # never protected as if it were recovered
    assert tree_digest(str(lost["source"])) == lost["before"]["tree"]  # the data it has is the backup's


def test_a_copy_that_fails_on_the_first_vault_is_restored_from_the_next(tmp_path, lost):
    shutil.copytree(tmp_path / "vault", tmp_path / "second")
    artifact = next(path for path in (tmp_path / "vault" / "localhost" / "app").iterdir()
                    if path.name.endswith(".tar.zst.age"))
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    os.chmod(artifact, 0o600)
    artifact.write_bytes(bytes(data))
    variables = dict(lost["vars"], backup_vaults=lost["vars"]["backup_vaults"] + [
        {"name": "second", "url": "file://%s/second" % tmp_path}])
    variables["backup_jobs"] = [dict(variables["backup_jobs"][0], vaults=["offsite", "second"])]
    played, report = recover(tmp_path, variables, recover_confirm=True)
    assert played.returncode == 0, played.stdout[-6000:]
    host = report["hosts"]["localhost"]
    assert host["status"] == "recovered", host
    restored = {row["id"]: row["vault"] for row in host["restored"]}
    assert restored[artifact.name.split(".", 1)[0]] == "second"
    assert sorted(set(restored.values())) == ["offsite", "second"]
    assert tree_digest(str(lost["source"])) == lost["before"]["tree"]
