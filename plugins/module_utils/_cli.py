# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-host command `lifeboat`: what the systemd timers run, and break-glass restores without a controller.

Exit codes: 0 ok, 1 failed, 2 usage, 3 health problems, 4 locked by another run.
Configuration: <config_dir>/lifeboat.json (the catalog: written by the lifeboat.backup.agent role),
<config_dir>/monitoring.json (monitoring, health, alerts: written by the lifeboat.backup.monitoring role) and
<config_dir>/jobs.d/<job>.json (one per job, written by the agent role), <config_dir>/vaults.json (the vaults
jobs replicate to, credentials included: 0600, written by the agent role) and, on an SFTP vault host,
<config_dir>/vault.json (the directories of its clients and their retention: written by the vault role).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from . import _age, _alerts, _archive, _catalog, _dump, _health, _hooks, _metrics, _option_groups, _prune, _restore, \
    _verify
from ._vault import maintain as _vault_maintain, replicate as _vault_replicate
from ._errors import BackupError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HEALTH, EXIT_LOCKED = 0, 1, 2, 3, 4
DEFAULT_CONFIG_DIR = "/etc/lifeboat"
DEFAULT_LOCK_TIMEOUT = 600
DETAILS_LIMIT = 8000  # characters of details in an alert: the end of a log, not all of it
# Read in this order, each file's top-level sections replacing those of the files before it: two roles
# write the configuration without ever rewriting each other's file.
SETTINGS_FILES = ("lifeboat.json", "monitoring.json")
VAULTS_FILE = "vaults.json"
VAULT_HOST_FILE = "vault.json"


class Progress:
    """One line per step on a terminal (stderr), nothing in a journal: systemd captures stdout for the log."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()

    def step(self, text):
        if self.live:
            self.stream.write("\r\033[K%s ..." % text)
            self.stream.flush()
        return time.monotonic()

    def done(self, text, started):
        line = "%s (%.1f s)" % (text, time.monotonic() - started)
        if self.live:
            self.stream.write("\r\033[K%s\n" % line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def hook(self, record):
        """A hook's output, each line prefixed with its stage, then how it ended: the journal keeps both."""
        prefix = "hook %s: " % record["stage"]
        lines = record["output"].splitlines()
        ended = "timed out" if record["timed_out"] else "could not start" if record["rc"] is None \
            else "exit %d" % record["rc"]
        lines.append("%s (%s, %.1f s)" % (_hooks.describe(record["command"]), ended, record["duration"]))
        self.stream.write("".join(prefix + line + "\n" for line in lines))
        self.stream.flush()


def load_json(path, what):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UsageError("%s %s does not exist" % (what, path))
    except ValueError as exc:
        raise UsageError("%s %s is not valid JSON: %s" % (what, path, exc))


def load_settings(config_dir):
    settings = {}
    for name in SETTINGS_FILES:
        path = os.path.join(config_dir, name)
        if os.path.exists(path):
            settings.update(load_json(path, "the configuration"))
    return settings


def load_job(config_dir, name):
    _catalog.check_job_name(name)
    job = load_json(os.path.join(config_dir, "jobs.d", name + ".json"), "the job file")
    job.setdefault("name", name)
    return job


def load_vaults(config_dir):
    """{name: Vault} of <config_dir>/vaults.json; no file, no vaults."""
    path = os.path.join(config_dir, VAULTS_FILE)
    if not os.path.exists(path):
        return {}
    document = load_json(path, "the vaults file")
    entries = document.get("vaults") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise UsageError("the vaults file %s must hold {\"vaults\": [{\"name\": ..., \"url\": ...}, ...]}" % path)
    vaults = {}
    for entry in entries:
        vault = _option_groups.read_vault(entry)
        if vault.name in vaults:
            raise UsageError("the vaults file %s names vault %s twice" % (path, vault.name))
        vaults[vault.name] = vault
    return vaults


def job_vaults(config_dir, job, only=None):
    """The Vaults a job replicates to (its "vaults": names in vaults.json), or only the one named only."""
    names = job.get("vaults") or []
    if only is not None:
        if only not in names:
            raise UsageError("job %s does not replicate to a vault named %s (it names: %s)"
                             % (job["name"], only, ", ".join(names) or "none"))
        names = [only]
    if not names:
        return []
    known = load_vaults(config_dir)
    missing = [name for name in names if name not in known]
    if missing:
        raise UsageError("job %s names vault(s) %s, which %s not in %s" % (
            job["name"], ", ".join(missing), "is" if len(missing) == 1 else "are",
            os.path.join(config_dir, VAULTS_FILE)))
    return [known[name] for name in names]


def replicate_job(config_dir, job, backup_dir, progress, lock_timeout, only=None):
    """Copy what the job's vaults lack; one line per vault."""
    vaults = job_vaults(config_dir, job, only)
    if not vaults:
        return None
    started = progress.step("replicate %s" % job["name"])
    try:
        result = _vault_replicate.replicate(backup_dir, job["name"], vaults, lock_timeout=lock_timeout)
    finally:
        progress.done("replicate %s" % job["name"], started)
    for report in result["vaults"]:
        progress.stream.write("replicate %s to %s: %d sent, %d already there\n"
                              % (job["name"], report["vault"], len(report["sent"]), len(report["present"])))
    return result


def _backup_dir(settings, job=None):
    return (job or {}).get("backup_dir") or settings.get("backup_dir") or _catalog.DEFAULT_BACKUP_DIR


def ping(job, state, progress, body=None):
    """The job's healthchecks-style ping; a failed one is a warning in the log (its URL redacted), never a failure."""
    answer = _alerts.ping(job.get("ping_url"), state, body)
    if isinstance(answer, str):
        progress.stream.write("warning: %s\n" % answer)


def run_job(config_dir, name, progress, lock_timeout=None):
    """Every step of a job between its hooks: dumps, archive, checksum verify, replicate, retention, metrics; pings
    around it.

    By default a run waits up to 10 minutes for another one holding the catalog lock (a pre-deploy
    backup, a prune): a timer that fires meanwhile should back up late rather than alert.
    """
    settings = load_settings(config_dir)
    job = load_job(config_dir, name)
    if lock_timeout is None:
        lock_timeout = job.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    backup_dir = _backup_dir(settings, job)
    hooks = _hooks.Hooks(job.get("hooks"), name, backup_dir, log=progress.hook)
    # A job's keys are the options of the archive and dump modules, read through the same groups with the
    # same defaults; a database's name is the dump's database.
    options = dict(job, job=name, backup_dir=backup_dir, lock_timeout=lock_timeout)
    ping(job, "start", progress)
    made = []

    def work():
        for database in job.get("databases") or []:
            engine, database_name = database.get("engine"), database.get("name")
            started = progress.step("dump %s %s" % (engine, database_name))
            request = _option_groups.DUMP_OPTIONS.read(dict(options, **dict(database, database=database_name)))
            result = _dump.run_dump(_dump.DumpRequest(**request))
            made.append(result)
            progress.done("dump %s %s: %s, %d bytes" % (engine, database_name, result["id"], result["size"]), started)
        if job.get("paths"):
            started = progress.step("archive %s" % ", ".join(job["paths"]))
            result = _archive.run_archive(_archive.ArchiveRequest(**_option_groups.ARCHIVE_OPTIONS.read(options)))
            made.append(result)
            for warning in result.get("warnings", []):
                progress.stream.write("warning: %s\n" % warning)
            progress.done("archive: %s, %d files, %d bytes" % (result["id"], result["files"], result["size"]),
                          started)
        for result in made:
            if result["metadata"]["verification"]["state"] == "verified":
                continue  # read back and checked in full as it was written (read_back): a checksum adds nothing
            started = progress.step("verify %s" % result["id"])
            _verify.verify(backup_dir=backup_dir, backup_id=result["id"], level="checksum")
            progress.done("verify %s: checksum ok" % result["id"], started)
        # A replication that fails raises before the local prune: a backup without its copy is never pruned.
        replicated = replicate_job(config_dir, job, backup_dir, progress, lock_timeout)
        if job.get("retention"):
            started = progress.step("prune %s" % name)
            pruned = _prune.prune(backup_dir, _option_groups.build_policy(**job["retention"]), job=name,
                                  lock_timeout=lock_timeout)
            progress.done("prune %s: %d kept, %d removed" % (name, len(pruned["kept"]), len(pruned["removed"])),
                          started)
        return replicated, [result["id"] for result in made]

    def summary():
        return {"job": name, "backups": [{"id": r["id"], "path": r["path"], "size": r["size"]} for r in made],
                "hooks": hooks.records}

    try:
        replicated = hooks.around("backup", work)
    except BackupError as exc:
        exc.result.update(summary())
        ping(job, "fail", progress, str(exc))
        raise
    write_metrics(settings, backup_dir)
    ping(job, "success", progress, "%d backup(s) made" % len(made))
    return dict(summary(), vaults=replicated["vaults"] if replicated else [])


def job_names(config_dir):
    directory = os.path.join(config_dir, "jobs.d")
    names = sorted(name[:-5] for name in os.listdir(directory) if name.endswith(".json")) \
        if os.path.isdir(directory) else []
    return names


def cmd_replicate(args, progress):
    settings = load_settings(args.config_dir)
    jobs = [load_job(args.config_dir, name) for name in ([args.job] if args.job else job_names(args.config_dir))]
    jobs = [job for job in jobs if job.get("vaults") or args.job]
    if not jobs:
        raise UsageError("no job replicates to a vault: give a job \"vaults\" (the agent role's agent_jobs[].vaults)")
    results, failures = [], []
    for job in jobs:
        try:
            result = replicate_job(args.config_dir, job, _backup_dir(settings, job), progress,
                                   args.lock_timeout, args.vault)
            if result is None:
                raise UsageError("job %s replicates to no vault" % job["name"])
            results.append(result)
        except BackupError as exc:
            failures.append(exc)
            results.append(exc.result or {"msg": str(exc)})
    write_metrics(settings, _backup_dir(settings))
    _print(args, results, [result["msg"] for result in results])
    if failures:
        raise failures[0] if len(failures) == 1 else BackupError("; ".join(str(exc) for exc in failures))
    return EXIT_OK


def cmd_vault_maintain(args, _progress):
    """On an SFTP vault host: retention and the sweep of interrupted uploads over its clients' directories."""
    document = load_json(os.path.join(args.config_dir, VAULT_HOST_FILE), "the vault host's configuration")
    policy = _option_groups.build_policy(**(document.get("retention") or {}))
    results, failures = [], []
    for entry in document.get("directories") or []:
        vault = _option_groups.read_vault({"url": entry["url"], "host": entry["host"]})
        try:
            results.append(_vault_maintain.maintain(vault, policy, hosts=[vault.host], jobs=entry.get("jobs"),
                                                    sweep_after=document.get("sweep_after", "24h"),
                                                    check_mode=args.check))
        except BackupError as exc:
            failures.append("%s: %s" % (vault.describe(), exc.msg))
    textfile_dir = document.get("textfile_dir")
    if textfile_dir and not args.check:
        _metrics.write(textfile_dir, _metrics.render_vault_host(results, failures), _metrics.VAULT_FILE_NAME)
    _print(args, {"results": results, "failures": failures}, [result["msg"] for result in results] + failures)
    if failures:
        raise BackupError("; ".join(failures), stage="vault")
    return EXIT_OK


def health_report(settings):
    options = settings.get("health") or {}
    return _health.catalog_info(backup_dir=_backup_dir(settings), max_age=options.get("max_age", "26h"),
                                min_size_ratio=options.get("min_size_ratio", 0.5),
                                disk_usage_threshold=options.get("disk_usage_threshold", 85.0),
                                vault_backlog_after=options.get("vault_backlog_after", _health.DEFAULT_BACKLOG_AFTER))


def write_metrics(settings, backup_dir, report=None):
    """Refresh the textfile metrics when monitoring is configured; returns the file written or None."""
    textfile_dir = (settings.get("monitoring") or {}).get("textfile_dir")
    if not textfile_dir:
        return None
    report = report or health_report(settings)
    text = _metrics.render(report["backups"], backup_dir, report["health"]["problems"],
                           vaults=report["health"]["vaults"])
    return _metrics.write(textfile_dir, text)


def _read_secret(source):
    """The text of a file, or of standard input with '-': secrets never come from argv and are never written."""
    if source == "-":
        return sys.stdin.read()
    with open(source, "r", encoding="utf-8") as handle:
        return handle.read()


def read_key(args):
    """The Key of --identity-file, --passphrase-file or --file-key (each a file, or - for standard input)."""
    given = [(name, getattr(args, name, None)) for name in ("identity_file", "passphrase_file", "file_key")]
    given = [(name, source) for name, source in given if source]
    if len(given) > 1:
        raise UsageError("give one of --identity-file, --passphrase-file and --file-key")
    if not given:
        return None
    name, source = given[0]
    text = _read_secret(source)
    if name == "identity_file":
        return _age.Key(identities=_age.parse_identities(text))
    if name == "passphrase_file":
        return _age.Key(passphrase=text.rstrip("\n"))
    return _age.Key(file_key=text)


def _print(args, document, lines):
    if args.json:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))


def _failure_as_json(args, exc):
    """With --json, a failed run or restore still prints its result (the backups made, the hooks' records)."""
    if args.json:
        _print(args, dict(exc.result, msg=str(exc), failed=True), [])


def cmd_run(args, progress):
    try:
        result = run_job(args.config_dir, args.job, progress, args.lock_timeout)
    except BackupError as exc:
        _failure_as_json(args, exc)
        raise
    _print(args, result, ["%s: %s" % (args.job, ", ".join(b["id"] for b in result["backups"]) or "nothing to do")])
    return EXIT_OK


def cmd_list(args, _progress):
    settings = load_settings(args.config_dir)
    backups = [_catalog.public(meta) for meta in _catalog.list_metadata(_backup_dir(settings), args.job)]
    lines = ["%-40s %-9s %5s %20s %12s  %s" % ("ID", "KIND", "LEVEL", "CREATED", "SIZE", "VERIFICATION")]
    lines += ["%-40s %-9s %5s %20s %12d  %s" % (meta["id"], meta.get("kind"), meta.get("level", "-"),
                                                meta.get("created_at"), meta.get("size", 0),
                                                _catalog.verification_label(meta)) for meta in backups]
    _print(args, backups, lines)
    return EXIT_OK


def cmd_stats(args, _progress):
    report = health_report(load_settings(args.config_dir))
    stats = report["stats"]
    _print(args, stats, ["%s: %s" % (key, json.dumps(value, sort_keys=True, default=str))
                         for key, value in sorted(stats.items())])
    return EXIT_OK


def cmd_verify(args, _progress):
    settings = load_settings(args.config_dir)
    level = "full" if args.full else "checksum"
    result = _verify.verify(backup_dir=_backup_dir(settings), backup_id=args.id, level=level, key=read_key(args))
    _print(args, result, [result["msg"]])
    return EXIT_OK


def cmd_restore(args, progress):
    settings = load_settings(args.config_dir)
    if args.repair:
        if args.id:
            raise UsageError("restore --repair takes no id: it puts right what killed restores left")
        result = _restore.repair_restores(_backup_dir(settings), args.lock_timeout)
        _print(args, result, [result["msg"]])
        return EXIT_OK
    if not args.id:
        raise UsageError("restore needs the id of a backup (lifeboat list shows them), or --repair")
    key = read_key(args)
    if key is None:
        raise UsageError("restore needs a key: --file-key FILE (this backup's file key, which lifeboat unwrap prints "
                         "where the identity is), or --identity-file FILE; - reads it from standard input")
    backup_dir = _backup_dir(settings)
    request = _restore.RestoreRequest(backup_dir=backup_dir, backup_id=args.id, key=key, dest=args.to,
                                      safety_backup=not args.no_safety_backup, lock_timeout=args.lock_timeout,
                                      allow_unencrypted=args.allow_unencrypted,
                                      allow_foreign_owner=args.allow_foreign_owner)
    hooks = restore_hooks(args, backup_dir, progress)
    try:
        result = dict(hooks.around("restore", lambda: (_restore.restore_backup(request), [args.id]), [args.id]),
                      hooks=hooks.records)
    except BackupError as exc:
        exc.result["hooks"] = hooks.records
        _failure_as_json(args, exc)
        raise
    _print(args, result, ["warning: %s" % warning for warning in result.get("warnings", [])] +
           [result.get("msg", "restored %s" % args.id)])
    return EXIT_OK


def restore_hooks(args, backup_dir, progress):
    """The hooks of the job that made the backup (its metadata names it; its job file, if this host has one), or
    none with --no-hooks."""
    job = _catalog.find_backup(backup_dir, args.id)["job"]
    path = os.path.join(args.config_dir, "jobs.d", job + ".json")
    hooks = None if args.no_hooks or not os.path.exists(path) else load_job(args.config_dir, job).get("hooks")
    return _hooks.Hooks(hooks, job, backup_dir, log=progress.hook)


def cmd_header(args, _progress):
    """The age header of a backup, then those of the backups before it in its incremental chain: public, all that
    lifeboat unwrap needs where the identity is."""
    result = _verify.artifact_header(backup_dir=_backup_dir(load_settings(args.config_dir)), backup_id=args.id)
    if result["header"] is None:
        raise UsageError("%s is not encrypted: it needs no key" % args.id)
    sys.stdout.write("".join([result["header"]] + result["chain_headers"]))
    return EXIT_OK


def cmd_unwrap(args, _progress):
    """The file key of one artifact, from its header (or the artifact itself) and the identity or passphrase."""
    if args.header == "-" and "-" in (args.identity_file, args.passphrase_file):
        raise UsageError("the header and the key cannot both come from standard input: give one of them as a file")
    key = read_key(args)
    if key is None:
        raise UsageError("unwrap needs the identity (--identity-file FILE) or the passphrase (--passphrase-file FILE)")
    if args.header == "-":
        headers = _age.read_headers(sys.stdin.buffer)
    else:
        with open(args.header, "rb") as handle:
            headers = _age.read_headers(handle)
    sys.stdout.write("".join(_age.encode_file_key(_age.unwrap(header, key)) + "\n" for header in headers))
    return EXIT_OK


def cmd_health(args, _progress):
    settings = load_settings(args.config_dir)
    report = health_report(settings)
    write_metrics(settings, _backup_dir(settings), report)
    problems = report["health"]["problems"]
    if problems and not args.no_alerts and settings.get("alerts"):
        _alerts.send_alert(settings["alerts"], {"event": "health", "key": "health:" + ",".join(
            sorted("%s:%s" % (p.get("code"), p.get("job")) for p in problems)),
            "message": "%d backup health problem(s)" % len(problems), "problems": problems})
    _print(args, report["health"], ["ok" if not problems else "%d problem(s)" % len(problems)] +
           ["[%s] %s" % (p["level"], p["message"]) for p in problems])
    return EXIT_HEALTH if problems else EXIT_OK


def journal_tail(unit, lines):
    """The last lines of a unit's journal, or why they could not be read: the alert goes out either way."""
    command = ["journalctl", "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "short-iso"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "(the journal could not be read: %s)" % exc
    if result.returncode != 0:
        return "(journalctl exited %d: %s)" % (result.returncode, result.stderr.strip())
    return result.stdout


def cmd_alert(args, _progress):
    """Called by the OnFailure= unit: tell the operator a unit failed, with the end of its journal."""
    settings = load_settings(args.config_dir)
    job = args.unit.split("@", 1)[1].rsplit(".", 1)[0] if "@" in args.unit else None
    message = "%s failed on this host" % args.unit
    if args.details_file:
        with open(args.details_file, "r", encoding="utf-8", errors="replace") as handle:
            message += "\n\n" + handle.read()[-DETAILS_LIMIT:]
    if args.journal_lines:
        message += "\n\nThe end of its journal:\n" + journal_tail(args.unit, args.journal_lines)[-DETAILS_LIMIT:]
    outcome = _alerts.send_alert(settings.get("alerts") or {}, {"event": "failure", "job": job,
                                                                "message": message, "unit": args.unit})
    _print(args, outcome, ["alert %s: sent via %s%s" % (
        outcome["key"], ", ".join(outcome["sent"]) or "nothing",
        " (suppressed by the cooldown)" if outcome["suppressed"] else "")] +
        ["alert %s: %s" % (outcome["key"], problem) for _channel, problem in sorted(outcome["failed"].items())])
    return EXIT_FAILED if outcome["failed"] and not outcome["sent"] else EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(prog="lifeboat", description="Backups of this host (lifeboat.backup).",
                                     epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 health problems, "
                                            "4 locked by another run.")
    parser.add_argument("--config-dir", default=os.environ.get("LIFEBOAT_CONFIG_DIR", DEFAULT_CONFIG_DIR))
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, handler, text, json_flag=True):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="print JSON")
        return sub

    run = command("run", cmd_run, "run every step of a job")
    run.add_argument("job")
    run.add_argument("--lock-timeout", type=float, help="seconds to wait for another run's lock (default %d)"
                     % DEFAULT_LOCK_TIMEOUT)
    command("list", cmd_list, "list the backups, newest first").add_argument("--job")
    command("stats", cmd_stats, "statistics of the catalog")
    verify = command("verify", cmd_verify, "verify a backup (checksum, or --full with the identity)")
    verify.add_argument("id")
    verify.add_argument("--full", action="store_true")
    verify.add_argument("--identity-file", help="age identity file, or - for standard input")
    verify.add_argument("--file-key", help="this backup's file key (lifeboat unwrap prints it) in a file, or - for "
                                           "standard input")
    restore = command("restore", cmd_restore, "restore a backup (to its original paths, or --to DIR), or --repair "
                                              "what a killed restore left")
    restore.add_argument("id", nargs="?")
    restore.add_argument("--repair", action="store_true",
                         help="only put back the targets of a restore that was killed (lifeboat health reports one)")
    restore.add_argument("--lock-timeout", type=float, default=0.0,
                         help="seconds to wait for another run's lock (default 0)")
    restore.add_argument("--to", help="restore files under this directory instead of their original paths")
    restore.add_argument("--file-key", help="this backup's file key (lifeboat unwrap prints it) in a file, or - for "
                                            "standard input")
    restore.add_argument("--identity-file", help="age identity file, or - for standard input")
    restore.add_argument("--no-safety-backup", action="store_true")
    restore.add_argument("--allow-unencrypted", action="store_true",
                         help="restore a backup that is not encrypted although an identity is given")
    restore.add_argument("--allow-foreign-owner", action="store_true",
                         help="restore into or below a directory another user than root owns")
    restore.add_argument("--no-hooks", action="store_true",
                         help="do not run the before_restore and after_restore hooks of the backup's job")
    header = command("header", cmd_header, "print a backup's age header (public), for lifeboat unwrap",
                     json_flag=False)
    header.add_argument("id")
    unwrap = command("unwrap", cmd_unwrap, "where the identity is: print the file key of one artifact, which opens "
                                           "it and nothing else, from its header (lifeboat header) or the artifact",
                     json_flag=False)
    unwrap.add_argument("header", nargs="?", default="-", help="the header or the artifact (default -: standard "
                                                               "input)")
    unwrap.add_argument("--identity-file", help="age identity file, or - for standard input")
    unwrap.add_argument("--passphrase-file", help="a file holding the passphrase, or - for standard input")
    replicate = command("replicate", cmd_replicate, "copy the backups a job's vaults lack (every job with vaults, "
                                                    "or one)")
    replicate.add_argument("job", nargs="?")
    replicate.add_argument("--vault", help="only this vault of the job's")
    replicate.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                           help="seconds to wait for the catalog lock when recording a copy (default %d)"
                           % DEFAULT_LOCK_TIMEOUT)
    maintain = command("vault-maintain", cmd_vault_maintain, "on an SFTP vault host: apply retention to its "
                                                             "clients' copies and sweep interrupted uploads")
    maintain.add_argument("--check", action="store_true", help="say what would be removed, remove nothing")
    health = command("health", cmd_health, "check the catalog's health, write metrics, alert on problems")
    health.add_argument("--no-alerts", action="store_true")
    alert = command("alert", cmd_alert, "send a failure alert for a systemd unit (used by OnFailure=)")
    alert.add_argument("unit")
    alert.add_argument("--details-file", help="text to include, e.g. the end of the unit's journal")
    alert.add_argument("--journal-lines", type=int, default=0, metavar="N",
                       help="include the last N lines of the unit's journal (journalctl)")
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    try:
        if args.command == "verify" and args.full and not (args.identity_file or args.file_key):
            raise UsageError("verify --full decrypts the backup: give --file-key FILE or --identity-file FILE (- for "
                             "standard input)")
        return args.handler(args, Progress())
    except BackupError as exc:
        sys.stderr.write("lifeboat: %s\n" % exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("lifeboat: interrupted\n")
        return EXIT_FAILED


if __name__ == "__main__":  # where the collection is installed, e.g. the controller: python3 -m ...module_utils._cli
    raise SystemExit(main())
