# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job's hooks, with real processes: what a hook may be, what it gets, how it ends and what around() makes of it."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _hooks
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import SourceError, UsageError

# Writes its environment to $1 and its argv, one a line, to $1.argv.
RECORDER = 'env > "$1"; printf "%s\\n" "$0" "$@" > "$1.argv"'


@pytest.mark.parametrize("hooks, message", [
    (["a"], "hooks must be a mapping of stage to a list of commands (stages: before_backup, after_backup, "
            "on_failure, before_restore, after_restore)"),
    ({"before_deploy": []}, "unknown hook stage 'before_deploy': the stages are before_backup, after_backup, "
                            "on_failure, before_restore, after_restore"),
    ({"before_backup": "app-maintenance on"}, "hooks.before_backup must be a list of commands"),
    ({"before_backup": ["app-maintenance on"]},
     "hooks.before_backup[0] is a string ('app-maintenance on'): write an argv list such as "
     "[\"/usr/local/bin/app-maintenance\", \"on\"], or {shell: \"...\"} for a shell command"),
    ({"after_backup": [["true"], []]}, "hooks.after_backup[1] argv must be a non-empty list of strings"),
    ({"after_backup": [["true", 1]]}, "hooks.after_backup[0] argv must be a non-empty list of strings"),
    ({"on_failure": [{"argv": ["true"], "shell": "true"}]},
     "hooks.on_failure[0] needs exactly one of argv (a list) and shell (a string)"),
    ({"on_failure": [{"timeout": 5}]}, "hooks.on_failure[0] needs exactly one of argv (a list) and shell"),
    ({"before_restore": [{"shell": " "}]}, "hooks.before_restore[0] shell must be a non-empty string"),
    ({"before_restore": [{"shell": "true", "timeout": 0}]},
     "hooks.before_restore[0] timeout must be a positive number of seconds, not 0"),
    ({"before_restore": [{"shell": "true", "timeout": "5m"}]}, "timeout must be a positive number of seconds"),
    ({"after_restore": [{"shell": "true", "user": "app"}]},
     "hooks.after_restore[0] has unknown key(s) user: a command takes argv, shell, timeout"),
    ({"after_restore": [7]}, "hooks.after_restore[0] is neither an argv list nor a mapping"),
])
def test_a_bad_hook_is_refused_before_anything_runs(tmp_path, hooks, message):
    marker = tmp_path / "ran"
    if isinstance(hooks, dict):  # a good command beside the bad one: none runs
        hooks = dict(hooks, before_backup=hooks.get("before_backup")
                     if "before_backup" in hooks else [["touch", str(marker)]])
    with pytest.raises(UsageError) as caught:
        _hooks.Hooks(hooks, "app").run("before_backup")
    assert message in str(caught.value)
    assert caught.value.stage == "hooks"
    assert not marker.exists()


def test_argv_runs_without_a_shell_and_shell_with_one(tmp_path):
    hooks = _hooks.Hooks({"before_backup": [["echo", "$HOME", "a;b"], {"shell": "echo $LIFEBOAT_JOB; echo two"}]},
                         "app")
    records = hooks.run("before_backup")
    assert [record["output"] for record in records] == ["$HOME a;b\n", "app\ntwo\n"]
    assert [record["command"] for record in records] == [["echo", "$HOME", "a;b"], "echo $LIFEBOAT_JOB; echo two"]
    assert [(record["stage"], record["rc"], record["timed_out"]) for record in records] == \
        [("before_backup", 0, False)] * 2


def test_a_hook_gets_its_context_and_none_of_the_callers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "pg-secret-value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    monkeypatch.setenv("LANG", "C.UTF-8")
    out = tmp_path / "env"
    hooks = _hooks.Hooks({"after_backup": [{"argv": ["sh", "-c", RECORDER + '; pwd >> "$1"; cat >> "$1"',
                                                     "recorder", str(out)]}]}, "app", "/var/backups/x")
    hooks.run("after_backup", ["app-1", "app-2"], "failure", "dump: pg_dump exited with status 1")
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["LIFEBOAT_HOOK"] == "after_backup" and env["LIFEBOAT_JOB"] == "app"
    assert env["LIFEBOAT_BACKUP_DIR"] == "/var/backups/x"
    assert (env["LIFEBOAT_BACKUP_IDS"], env["LIFEBOAT_BACKUP_ID"]) == ("app-1 app-2", "app-2")
    assert (env["LIFEBOAT_OUTCOME"], env["LIFEBOAT_ERROR"]) == ("failure", "dump: pg_dump exited with status 1")
    assert env["PATH"] == os.environ["PATH"] and env["LANG"] == "C.UTF-8"
    assert "PGPASSWORD" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "secret-value" not in out.read_text()
    assert out.read_text().splitlines()[-1] == "/"  # cwd /; stdin is /dev/null: cat added nothing
    assert (tmp_path / "env.argv").read_text().splitlines() == ["recorder", str(out)]


def test_before_backup_has_no_backup_id_nor_outcome(tmp_path):
    out = tmp_path / "env"
    _hooks.Hooks({"before_backup": [["sh", "-c", RECORDER, "r", str(out)]]}, "app").run("before_backup")
    names = {line.split("=", 1)[0] for line in out.read_text().splitlines()}
    assert {"LIFEBOAT_HOOK", "LIFEBOAT_JOB"} <= names
    assert not names & {"LIFEBOAT_BACKUP_ID", "LIFEBOAT_BACKUP_IDS", "LIFEBOAT_OUTCOME", "LIFEBOAT_ERROR"}


def _running(pid):
    """Whether pid runs: a zombie waiting for init is dead already."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


def test_a_hook_that_hangs_is_killed_with_its_children_at_its_timeout(tmp_path):
    pids = tmp_path / "pids"
    hooks = _hooks.Hooks({"before_backup": [
        {"shell": "echo started; sleep 1000 & echo $! >> %s; echo $$ >> %s; sleep 1000" % (pids, pids),
         "timeout": 1}, ["touch", str(tmp_path / "next")]]}, "app")
    started = time.monotonic()
    with pytest.raises(_hooks.HookError) as caught:
        hooks.run("before_backup")
    assert time.monotonic() - started < 1 + _hooks.KILL_GRACE
    assert str(caught.value) == "before_backup hook %s timed out after 1 s and was killed; its output ends: " \
                                "started" % hooks.stages["before_backup"][0].shell
    assert caught.value.stage == "before_backup"
    record = caught.value.result["hooks"][0]
    assert record["timed_out"] and record["output"] == "started\n"
    killed = [int(pid) for pid in pids.read_text().split()]
    assert len(killed) == 2 and not any(_running(pid) for pid in killed)
    assert not (tmp_path / "next").exists()  # the stage stops at its first failure


def test_a_hook_that_ignores_sigterm_gets_sigkill(tmp_path, monkeypatch):
    monkeypatch.setattr(_hooks, "KILL_GRACE", 0.5)
    hooks = _hooks.Hooks({"on_failure": [{"shell": "trap '' TERM; sleep 1000", "timeout": 0.5}]}, "app")
    started = time.monotonic()
    with pytest.raises(_hooks.HookError):
        hooks.run("on_failure")
    assert time.monotonic() - started < 3
    assert hooks.records[0]["rc"] == -9


def test_the_output_keeps_its_end(tmp_path):
    hooks = _hooks.Hooks({"after_restore": [{"shell": "head -c 100000 /dev/zero | tr '\\0' a; echo; echo END"}]},
                         "app")
    output = hooks.run("after_restore")[0]["output"]
    marker, kept = output.split("\n", 1)
    assert marker == "[the first %d bytes of the output are left out]" % (100005 - _hooks.OUTPUT_LIMIT)
    assert kept == "a" * (_hooks.OUTPUT_LIMIT - 5) + "\nEND\n"


def test_a_failing_hook_says_its_status_and_the_end_of_its_output():
    hooks = _hooks.Hooks({"before_restore": [{"shell": "echo maintenance mode unavailable >&2; exit 3"}]}, "app")
    with pytest.raises(_hooks.HookError) as caught:
        hooks.run("before_restore", ["app-1"])
    assert str(caught.value) == ("before_restore hook echo maintenance mode unavailable >&2; exit 3 exited with "
                                 "status 3; its output ends: maintenance mode unavailable")


def test_a_missing_binary_is_a_clear_failure(tmp_path):
    hooks = _hooks.Hooks({"before_backup": [["/nonexistent/app-maintenance", "on"], ["touch", str(tmp_path / "n")]]},
                         "app")
    with pytest.raises(_hooks.HookError) as caught:
        hooks.run("before_backup")
    assert str(caught.value) == "before_backup hook /nonexistent/app-maintenance on could not be started: " \
                                "No such file or directory"
    assert hooks.records[0]["rc"] is None and not (tmp_path / "n").exists()


def _stages(tmp_path, before="true", after="true"):
    """Hooks that append their stage, outcome and error to a file, the before and after ones ending as told."""
    log = tmp_path / "log"
    record = 'echo $LIFEBOAT_HOOK $LIFEBOAT_OUTCOME $LIFEBOAT_ERROR >> %s' % log
    return log, _hooks.Hooks({"before_backup": [{"shell": record + "; " + before}],
                              "after_backup": [{"shell": record + "; " + after}],
                              "on_failure": [{"shell": record}]}, "app")


def test_around_runs_after_and_on_failure_when_before_fails(tmp_path):
    log, hooks = _stages(tmp_path, before="echo busy; exit 1")
    worked = []
    with pytest.raises(_hooks.HookError) as caught:
        hooks.around("backup", lambda: worked.append(1))
    message = "before_backup hook %s exited with status 1; its output ends: busy" \
        % hooks.stages["before_backup"][0].shell
    assert str(caught.value) == message and not worked
    assert log.read_text().splitlines() == ["before_backup", "after_backup failure " + message,
                                            "on_failure failure " + message]
    stages = [record["stage"] for record in caught.value.result["hooks"]]
    assert stages == ["before_backup", "after_backup", "on_failure"]


def test_the_works_failure_stays_the_error_with_the_after_hooks_appended(tmp_path):
    log, hooks = _stages(tmp_path, after="exit 4")

    def work():
        raise SourceError("/srv/app does not exist", stage="archive")

    with pytest.raises(SourceError) as caught:
        hooks.around("backup", work)
    assert str(caught.value) == "archive: /srv/app does not exist; after_backup hook %s exited with status 4" \
        % hooks.stages["after_backup"][0].shell
    assert log.read_text().splitlines() == ["before_backup", "after_backup failure archive: /srv/app does not exist",
                                            "on_failure failure " + str(caught.value)]


def test_an_after_hook_failing_after_a_good_backup_says_both(tmp_path):
    log, hooks = _stages(tmp_path, after="exit 2")
    with pytest.raises(_hooks.HookError) as caught:
        hooks.around("backup", lambda: ("result", ["app-1", "app-2"]))
    assert str(caught.value) == "backup app-1, app-2 made and verified; after_backup hook %s exited with status 2" \
        % hooks.stages["after_backup"][0].shell
    assert caught.value.stage == "after_backup"
    assert log.read_text().splitlines() == ["before_backup", "after_backup success", "on_failure failure "
                                            + str(caught.value)]


def test_around_returns_the_works_result_and_skips_on_failure(tmp_path):
    log, hooks = _stages(tmp_path)
    assert hooks.around("backup", lambda: ("result", ["app-1"])) == "result"
    assert log.read_text().splitlines() == ["before_backup", "after_backup success"]
    assert _hooks.Hooks(None, "app").around("restore", lambda: ("done", ["app-1"]), ["app-1"]) == "done"


def test_the_module_in_check_mode_runs_nothing_and_says_what_would_run(tmp_path):
    hooks = {"before_restore": [["touch", str(tmp_path / "ran")], {"shell": "echo on"}], "after_restore": []}
    planned = _hooks.run_stage(hooks, "before_restore", "app", check_mode=True)
    assert planned == {"changed": True, "hooks": [], "commands": [["touch", str(tmp_path / "ran")], "echo on"],
                       "msg": "before_restore: would run touch %s; echo on" % (tmp_path / "ran")}
    assert not (tmp_path / "ran").exists()
    assert _hooks.run_stage(hooks, "after_restore", "app")["changed"] is False
    ran = _hooks.run_stage(hooks, "before_restore", "app", backup_ids=["app-1"])
    assert ran["changed"] and [record["rc"] for record in ran["hooks"]] == [0, 0] and (tmp_path / "ran").exists()
    with pytest.raises(UsageError, match="is a string"):
        _hooks.run_stage({"before_restore": ["on"]}, "after_restore", "app", check_mode=True)
