# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job's hooks: commands run on the host before and after its backups and restores, and when it fails.

A job's hooks map a stage to a list of commands; a command is an argv list (no shell) or a mapping with exactly one
of argv and shell (run as /bin/sh -c) and an optional timeout. The whole mapping is checked before any work.
Each command runs with stdin /dev/null, in / and in a session of its own, with a small environment of its own
(never the caller's, which may hold PGPASSWORD or cloud keys); its output (stdout and stderr together) is kept,
its end only; at its timeout its whole process group is terminated, then killed. A stage stops at its first
failing command. around() is a job's run between its hooks: before, the work, after (always), on_failure.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import time

from ._errors import BackupError, UsageError
from ._tools import describe_exit

STAGES = ("before_backup", "after_backup", "on_failure", "before_restore", "after_restore")
# operation -> its before and after stages, and what its success says
OPERATIONS = {"backup": ("before_backup", "after_backup", "backup %s made and verified"),
              "restore": ("before_restore", "after_restore", "backup %s restored")}
DEFAULT_TIMEOUT = 300.0
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a hook's process group
OUTPUT_LIMIT = 64 * 1024  # bytes of a hook's output kept: its end
MESSAGE_OUTPUT = 1000  # characters of that output in a failure's message
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a hook gets of the caller's environment: nothing that could hold a secret.
PASSED_ENVIRONMENT = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")
COMMAND_KEYS = ("argv", "shell", "timeout")


class HookError(BackupError):
    """A hook that failed; its message names the stage itself, and stage is that of the hook. hook: the sentence
    about the hook alone, which the message may follow the operation's outcome with."""

    def __init__(self, msg, stage, hook, result=None):
        super().__init__(msg, stage=stage, result=result)
        self.hook = hook

    def __str__(self):
        return self.msg


class Command:
    """One command of a stage: argv (list) or shell (string run by /bin/sh -c), and its timeout in seconds."""

    def __init__(self, argv=None, shell=None, timeout=DEFAULT_TIMEOUT):
        self.argv = list(argv) if argv is not None else ["/bin/sh", "-c", shell]
        self.shell = shell
        self.timeout = float(timeout)

    @property
    def given(self):
        """The command as the job gives it: its argv, or its shell string."""
        return self.shell if self.shell is not None else list(self.argv)

    def describe(self):
        return describe(self.given)


def describe(given):
    """A command as a record gives it (argv list or shell string), as one line."""
    return given if isinstance(given, str) else shlex.join(given)


def _usage(where, text):
    return UsageError("hooks.%s %s" % (where, text), stage="hooks")


def _command(where, entry):
    example = "write an argv list such as [\"/usr/local/bin/app-maintenance\", \"on\"], or {shell: \"...\"} for a " \
              "shell command"
    if isinstance(entry, str):
        raise _usage(where, "is a string (%r): %s" % (entry, example))
    if isinstance(entry, list):
        entry = {"argv": entry}
    if not isinstance(entry, dict):
        raise _usage(where, "is neither an argv list nor a mapping: %s" % example)
    unknown = sorted(str(key) for key in set(entry) - set(COMMAND_KEYS))
    if unknown:
        raise _usage(where, "has unknown key(s) %s: a command takes %s" % (", ".join(unknown), ", ".join(COMMAND_KEYS)))
    if ("argv" in entry) == ("shell" in entry):
        raise _usage(where, "needs exactly one of argv (a list) and shell (a string)")
    argv, shell = entry.get("argv"), entry.get("shell")
    if argv is not None and (not isinstance(argv, list) or not argv
                             or not all(isinstance(part, str) for part in argv) or not argv[0]):
        raise _usage(where, "argv must be a non-empty list of strings, the program first")
    if "shell" in entry and (not isinstance(shell, str) or not shell.strip()):
        raise _usage(where, "shell must be a non-empty string")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise _usage(where, "timeout must be a positive number of seconds, not %r" % (timeout,))
    return Command(argv=argv, shell=shell, timeout=timeout)


def parse_hooks(hooks):
    """{stage: [Command]} of a job's hooks (None: no hooks); anything wrong raises UsageError naming it."""
    if hooks is None:
        return {}
    if not isinstance(hooks, dict):
        raise UsageError("hooks must be a mapping of stage to a list of commands (stages: %s)" % ", ".join(STAGES),
                         stage="hooks")
    parsed = {}
    for stage, commands in hooks.items():
        if stage not in STAGES:
            raise UsageError("unknown hook stage %r: the stages are %s" % (stage, ", ".join(STAGES)), stage="hooks")
        if commands is None:
            continue
        if not isinstance(commands, list):
            raise _usage(stage, "must be a list of commands")
        parsed[stage] = [_command("%s[%d]" % (stage, index), entry) for index, entry in enumerate(commands)]
    return parsed


def environment(stage, job, backup_dir=None, backup_ids=(), outcome=None, error=None):
    """A hook's whole environment: the caller's PATH and locale, never the rest of it, and what it is run for."""
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if os.environ.get(name)}
    env["PATH"] = os.environ.get("PATH") or DEFAULT_PATH
    env.setdefault("HOME", "/")
    env.update(LIFEBOAT_HOOK=stage, LIFEBOAT_JOB=job or "")
    if backup_dir:
        env["LIFEBOAT_BACKUP_DIR"] = backup_dir
    if backup_ids:
        env["LIFEBOAT_BACKUP_IDS"] = " ".join(backup_ids)
        env["LIFEBOAT_BACKUP_ID"] = backup_ids[-1]
    if outcome:
        env["LIFEBOAT_OUTCOME"] = outcome
    if error:
        env["LIFEBOAT_ERROR"] = error
    return env


def _group_alive(pgid):
    """Whether a process of the group still runs; the zombies of orphans wait for init to reap them, dead already."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name, "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
    return False


def _stop_group(process):
    """SIGTERM to the hook's process group, SIGKILL to what is left of it after KILL_GRACE seconds."""
    pgid = process.pid  # the leader of its own session and group
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reap the leader: a zombie still counts as a member of its group
            if not _group_alive(pgid):
                return
            time.sleep(0.05)
    process.wait()


def _read_until(fd, deadline, kept):
    """Read the hook's output into kept (its end only) until EOF (True) or the deadline (False)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not select.select([fd], [], [], remaining)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return True
        kept["size"] += len(chunk)
        kept["data"] = (kept["data"] + chunk)[-OUTPUT_LIMIT:]


def run_command(command, env):
    """Run one command; its record: command, rc (None when it could not start), duration, timed_out, output."""
    started = time.monotonic()
    record = {"command": command.given, "rc": None, "duration": 0.0, "timed_out": False, "output": ""}
    try:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            command.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/",
            env=env, close_fds=True, start_new_session=True)
    except OSError as exc:
        record["output"] = "could not be started: %s" % (exc.strerror or exc)
        return record
    kept = {"data": b"", "size": 0}
    deadline = started + command.timeout
    # Done when it has exited and its output is closed: what it left running with the output open is still it.
    with process:
        finished = _read_until(process.stdout.fileno(), deadline, kept)
        if finished:
            try:
                process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                finished = False
        if not finished:
            record["timed_out"] = True
            _stop_group(process)
    record["rc"] = process.returncode
    record["duration"] = round(time.monotonic() - started, 3)
    output = kept["data"].decode("utf-8", errors="replace")
    if kept["size"] > len(kept["data"]):
        output = "[the first %d bytes of the output are left out]\n%s" % (kept["size"] - len(kept["data"]), output)
    record["output"] = output
    return record


def failure_of(command, record):
    """Why a record is a failure (None when it succeeded)."""
    if record["timed_out"]:
        why = "timed out after %g s and was killed" % command.timeout
    elif record["rc"] is None:
        return record["output"]
    elif record["rc"] != 0:
        why = describe_exit(record["rc"])
    else:
        return None
    output = record["output"].strip()
    if output:
        why += "; its output ends: %s" % output[-MESSAGE_OUTPUT:]
    return why


class Hooks:
    """A job's hooks, checked when made, and the records of every command they ran (records).

    log: called with each record as its command ends (the on-host command writes its output to the journal).
    """

    def __init__(self, hooks, job, backup_dir=None, log=None):
        self.stages = parse_hooks(hooks)
        self.job = job
        self.backup_dir = backup_dir
        self.log = log
        self.records = []

    def commands(self, stage):
        if stage not in STAGES:
            raise UsageError("unknown hook stage %r: the stages are %s" % (stage, ", ".join(STAGES)), stage="hooks")
        return self.stages.get(stage, [])

    def run(self, stage, backup_ids=(), outcome=None, error=None):
        """Run a stage's commands in order, up to the first that fails, which raises HookError.

        For an after_* stage, outcome and error say how the operation went; the message of its failure then says
        that too: the error first, or that the operation succeeded (its backup ids).
        """
        env = environment(stage, self.job, self.backup_dir, backup_ids, outcome, error)
        for command in self.commands(stage):
            record = dict(stage=stage, **run_command(command, env))
            self.records.append(record)
            if self.log:
                self.log(record)
            why = failure_of(command, record)
            if why is not None:
                hook = "%s hook %s %s" % (stage, command.describe(), why)
                raise HookError(self._message(stage, hook, backup_ids, error), stage=stage, hook=hook,
                                result={"hooks": list(self.records)})
        return self.records

    @staticmethod
    def _message(stage, hook, backup_ids, error):
        if error:
            return "%s; %s" % (error, hook)
        done = [done for _before, after, done in OPERATIONS.values() if after == stage]
        if done and backup_ids:
            return "%s; %s" % (done[0] % ", ".join(backup_ids), hook)
        return hook

    def around(self, operation, work, backup_ids=()):
        """work() between the operation's hooks: before (its failure skips the work), after (always), then
        on_failure when anything failed. work returns (result, the ids of the backups made or restored).

        A failure of the work stays the error raised (its type, stage and exit code), a hook's failure appended;
        the records are in the error's result["hooks"].
        """
        before, after, _done = OPERATIONS[operation]
        result, failure, ids = None, None, list(backup_ids)
        try:
            self.run(before, ids)
            result, ids = work()
        except BackupError as exc:
            failure = exc
        except BaseException as exc:  # an interrupt: what a before hook switched on is still switched off
            with contextlib.suppress(HookError):
                self.run(after, ids, "failure", str(exc) or type(exc).__name__)
            raise
        try:
            self.run(after, ids, "failure" if failure else "success", str(failure) if failure else None)
        except HookError as exc:
            failure = exc if failure is None else self._append(failure, exc)
        if failure is None:
            return result
        try:
            self.run("on_failure", ids, "failure", str(failure))
        except HookError as exc:
            self._append(failure, exc)
        failure.result["hooks"] = list(self.records)
        raise failure

    @staticmethod
    def _append(failure, hook_error):
        failure.msg = "%s; %s" % (failure.msg, hook_error.hook)
        return failure


def run_stage(hooks, stage, job, backup_dir=None, backup_ids=(), outcome=None, error=None, check_mode=False):
    """The hook module: one stage of a job's hooks (the whole mapping checked first); in check mode, what would
    run. A failure raises HookError, its records in result["hooks"]."""
    runner = Hooks(hooks, job, backup_dir)
    commands = [command.given for command in runner.commands(stage)]
    if check_mode or not commands:
        return {"changed": bool(commands), "hooks": [], "commands": commands,
                "msg": "%s: %s" % (stage, ("would run " + "; ".join(describe(command) for command in commands))
                                   if commands else "no hook to run")}
    records = runner.run(stage, list(backup_ids), outcome, error)
    return {"changed": True, "hooks": records, "commands": commands,
            "msg": "%s: ran %s" % (stage, "; ".join(describe(command) for command in commands))}
