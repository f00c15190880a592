# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hooks of a job run by the on-host command: `lifeboat run` and `lifeboat restore`, as the timers and an
operator run them."""

from __future__ import annotations

import json
import os

import dbservers
from test_cli import make_host
from testlib import IDENTITY, fingerprint

# Appends its stage, outcome, backup ids and error to $1, one line a run.
LOGGER = 'echo "$LIFEBOAT_HOOK|$LIFEBOAT_OUTCOME|$LIFEBOAT_BACKUP_IDS|$LIFEBOAT_ERROR" >> "$1"'
# Writes its environment to $1 and its argv, one a line, to $1.argv.
RECORDER = 'env > "$1"; printf "%s\\n" "$0" "$@" > "$1.argv"'


def set_job(host, **changes):
    path = host.tmp / "etc" / "jobs.d" / "app.json"
    job = json.loads(path.read_text())
    job.update(changes)
    path.write_text(json.dumps(job))
    return job


def logger(host):
    return ["sh", "-c", LOGGER, "logger", str(host.tmp / "hooks.log")]


def hook_log(host):
    return [line.split("|") for line in (host.tmp / "hooks.log").read_text().splitlines()]


def test_a_failing_before_backup_makes_no_backup_and_says_why(tmp_path):
    host = make_host(tmp_path)
    assert host("run", "app").returncode == 0
    before = fingerprint(str(tmp_path / "backups"))
    set_job(host, hooks={"before_backup": [logger(host), {"shell": "echo app is busy; exit 3"}, logger(host)],
                         "after_backup": [logger(host)], "on_failure": [logger(host)]})
    failed = host("run", "app")
    assert failed.returncode == 1
    assert fingerprint(str(tmp_path / "backups")) == before  # nothing made, nothing pruned
    assert "hook before_backup: app is busy\n" in failed.stderr
    assert "hook before_backup: echo app is busy; exit 3 (exit 3, " in failed.stderr
    message = "before_backup hook echo app is busy; exit 3 exited with status 3; its output ends: app is busy"
    assert failed.stderr.endswith("lifeboat: %s\n" % message)
    # The stage stopped at its failing command; after_backup and on_failure ran, knowing why.
    assert hook_log(host) == [["before_backup", "", "", ""], ["after_backup", "failure", "", message],
                              ["on_failure", "failure", "", message]]


def test_after_backup_runs_after_a_failed_backup_whose_error_stays_the_message(tmp_path):
    host = make_host(tmp_path)
    set_job(host, paths=[str(tmp_path / "no-such-dir")], databases=[],
            hooks={"after_backup": [logger(host), ["false"]], "on_failure": [logger(host)]})
    failed = host("run", "app", "--json")
    assert failed.returncode == 1
    error = failed.stderr.rsplit("lifeboat: ", 1)[1].strip()
    assert error == "source path %s does not exist; after_backup hook false exited with status 1" \
        % (tmp_path / "no-such-dir")
    log = hook_log(host)
    assert [(row[0], row[1]) for row in log] == [("after_backup", "failure"), ("on_failure", "failure")]
    assert log[0][3] == error.split("; after_backup")[0] and log[1][3] == error
    result = json.loads(failed.stdout)
    assert result["failed"] and result["msg"] == error and result["backups"] == []
    assert [(record["stage"], record["rc"]) for record in result["hooks"]] == \
        [("after_backup", 0), ("after_backup", 1), ("on_failure", 0)]


def test_after_backup_failing_after_a_good_backup_keeps_the_backups_and_says_both(tmp_path):
    host = make_host(tmp_path)
    set_job(host, hooks={"after_backup": [logger(host), {"shell": "echo still in maintenance >&2; exit 5"}],
                         "on_failure": [logger(host)]})
    failed = host("run", "app", "--json")
    assert failed.returncode == 1
    made = [backup["id"] for backup in json.loads(failed.stdout)["backups"]]
    assert len(made) == 2
    assert "lifeboat: backup %s made and verified; after_backup hook echo still in maintenance >&2; exit 5 exited " \
           "with status 5; its output ends: still in maintenance\n" % ", ".join(made) in failed.stderr
    assert sorted(meta["id"] for meta in json.loads(host("list", "--json").stdout)) == sorted(made)
    for backup_id in made:
        assert host("verify", backup_id, "--full", "--identity-file", "-", stdin=IDENTITY + "\n").returncode == 0
    log = hook_log(host)
    assert log[0] == ["after_backup", "success", " ".join(made), ""]
    assert log[1][0:3] == ["on_failure", "failure", " ".join(made)] and "made and verified" in log[1][3]


def test_on_failure_gets_the_error(tmp_path):
    host = make_host(tmp_path)
    os.unlink(host.app / "data" / "app.db")
    set_job(host, hooks={"on_failure": [logger(host)]})
    failed = host("run", "app")
    assert failed.returncode == 1
    (stage, outcome, _ids, error), = hook_log(host)
    assert (stage, outcome) == ("on_failure", "failure")
    assert error == failed.stderr.rsplit("lifeboat: ", 1)[1].strip() and "app.db" in error


def test_no_secret_reaches_a_hook(tmp_path, postgres_server):
    host = make_host(tmp_path)
    name = postgres_server.create_database("hooks_secret")
    try:
        passphrase = "correct horse battery staple hooks"
        recorded = {stage: tmp_path / stage for stage in ("before_backup", "after_backup")}
        set_job(host, recipients=[], passphrase=passphrase, paths=[], retention={},
                databases=[dict(dbservers.login(postgres_server), engine="postgresql", name=name)],
                hooks={stage: [["sh", "-c", RECORDER, "recorder", str(path)]] for stage, path in recorded.items()})
        caller = {"PGPASSWORD": postgres_server.password, "AWS_SECRET_ACCESS_KEY": "aws-" + passphrase}
        run = host("run", "app", "--json", env=caller)
        assert run.returncode == 0, run.stderr
        texts = [path.read_text() + (tmp_path / (stage + ".argv")).read_text() for stage, path in recorded.items()]
        assert all("LIFEBOAT_JOB=app" in text for text in texts)
        for text in texts + [run.stdout, run.stderr]:
            assert postgres_server.password not in text and passphrase not in text
        assert "PGPASSWORD" not in texts[0] and "AWS_SECRET_ACCESS_KEY" not in texts[0]
    finally:
        postgres_server.drop_database(name)


def test_restore_runs_the_hooks_of_the_backups_job_unless_no_hooks(tmp_path):
    host = make_host(tmp_path)
    assert host("run", "app").returncode == 0
    archive = [meta for meta in json.loads(host("list", "--json").stdout) if meta["kind"] == "files"][0]
    set_job(host, hooks={"before_restore": [logger(host)], "after_restore": [logger(host)],
                         "before_backup": [logger(host)]})
    restored = host("restore", archive["id"], "--to", str(tmp_path / "restored"), "--identity-file", "-", "--json",
                    stdin=IDENTITY + "\n")
    assert restored.returncode == 0, restored.stderr
    assert hook_log(host) == [["before_restore", "", archive["id"], ""],
                              ["after_restore", "success", archive["id"], ""]]
    stages = [record["stage"] for record in json.loads(restored.stdout)["hooks"]]
    assert stages == ["before_restore", "after_restore"]
    assert "hook after_restore: sh -c " in restored.stderr
    again = host("restore", archive["id"], "--to", str(tmp_path / "again"), "--identity-file", "-", "--no-hooks",
                 stdin=IDENTITY + "\n")
    assert again.returncode == 0, again.stderr
    assert len(hook_log(host)) == 2 and "hook " not in again.stderr
    assert (tmp_path / "again" / str(host.app).lstrip("/") / "index.html").exists()


def test_a_failing_before_restore_restores_nothing(tmp_path):
    host = make_host(tmp_path)
    assert host("run", "app").returncode == 0
    archive = [meta for meta in json.loads(host("list", "--json").stdout) if meta["kind"] == "files"][0]
    (host.app / "index.html").write_text("<h1>the deploy's version</h1>\n")
    deployed = fingerprint(str(host.app))
    set_job(host, hooks={"before_restore": [{"shell": "echo cannot enter maintenance mode; exit 1"}],
                         "after_restore": [logger(host)]})
    failed = host("restore", archive["id"], "--identity-file", "-", stdin=IDENTITY + "\n")
    assert failed.returncode == 1
    message = "before_restore hook echo cannot enter maintenance mode; exit 1 exited with status 1; its output " \
              "ends: cannot enter maintenance mode"
    assert failed.stderr.endswith("lifeboat: %s\n" % message)
    assert fingerprint(str(host.app)) == deployed
    assert hook_log(host) == [["after_restore", "failure", archive["id"], message]]
