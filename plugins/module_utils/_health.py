# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A catalog's listing, statistics and health, from the scan of _catalog (which says what each file is).

Health problems and their levels (``health.problems``):

critical   disk_full (the filesystem is fuller than the threshold and than 95 %), interrupted_restore (a restore
           was killed midway, or a database restore failed and could not put the database back: a target may be
           missing or half restored; the message has the command that puts it right)
error      no_backup, too_old, failed, broken_chain (an incremental backup whose chain has a backup that is
           missing or failed its verification: it cannot be restored), bad_metadata, missing_checksum, vault_failed
           (the last replication to a vault failed), vault_backlog (backups older than vault_backlog_after without
           a copy on a vault the job replicates to)
warning    disk_full (over the threshold, up to 95 %), too_small, unverified, orphan, no_metadata, temp_file

too_small compares the newest full backup of a series with the full backups before it: an incremental backup
stores only what changed, so it is expected to be small, is not checked, and does not count in the median.
"""

from __future__ import annotations

import os
import statistics
from datetime import datetime

from . import _catalog
from ._errors import UsageError
from ._retention import broken_chains, parse_duration
from ._vault.state import DEFAULT_BACKLOG_AFTER, replication_problems, replication_status

CRITICAL_DISK_PERCENT = 95.0
LEVELS = ("warning", "error", "critical")


def parse_since(text, now=None):
    """``2024-05-01``, ``2024-05-01T12:00:00+02:00`` (no offset: local time) or a duration back from now."""
    now = now or _catalog.utc_now()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        try:
            moment = parse_duration(text).before(now)
        except UsageError:
            raise UsageError("since %r is neither an ISO date or time (2024-05-01, 2024-05-01T12:00:00+02:00) "
                             "nor a duration back from now (12h, 2d, 1m for a month)" % (text,))
        return moment or datetime.min.replace(tzinfo=now.tzinfo)
    return moment if moment.utcoffset() is not None else moment.astimezone()


def parse_max_age(text, now=None):
    """A duration string such as ``26h`` or ``2d`` as a timedelta, measured back from now."""
    now = now or _catalog.utc_now()
    duration = parse_duration(text)
    if duration.is_zero():
        raise UsageError("max_age %r is zero; give the longest acceptable age of a backup, e.g. 26h" % (text,))
    return now - duration.before(now)


def filter_backups(backups, kind=None, tags=None, deploy_id=None, since=None):
    """Backups of the kind, carrying any of the tags, of the deploy, created at or after since."""
    wanted_tags = set(tags or ())
    return [meta for meta in backups
            if (kind is None or meta.get("kind") == kind)
            and (not wanted_tags or wanted_tags.intersection(meta.get("tags") or ()))
            and (deploy_id is None or meta.get("deploy_id") == deploy_id)
            and (since is None or _catalog.parse_time(meta["created_at"]) >= since)]


def summarize(backups):
    """Count, size, average compression ratio, verification states, oldest and newest of newest-first backups."""
    states = [_catalog.verification_state(meta) for meta in backups]
    ratios = [meta["ratio"] for meta in backups if isinstance(meta.get("ratio"), (int, float))]
    summary = {"count": len(backups), "total_size": sum(int(meta.get("size") or 0) for meta in backups),
               "average_ratio": round(sum(ratios) / len(ratios), 3) if ratios else None,
               "oldest": None, "oldest_id": None, "newest": None, "newest_id": None}
    summary.update((state, states.count(state)) for state in _catalog.STATES)
    if backups:
        summary.update(newest=backups[0]["created_at"], newest_id=backups[0]["id"],
                       oldest=backups[-1]["created_at"], oldest_id=backups[-1]["id"])
    return summary


def compute_stats(backups):
    """``overall`` and per job (``jobs``) summaries of newest-first backups."""
    jobs = {}
    for meta in backups:
        jobs.setdefault(meta["job"], []).append(meta)
    return {"overall": summarize(backups), "jobs": {job: summarize(items) for job, items in sorted(jobs.items())}}


def disk_usage(path):
    """Usage of the filesystem holding path (or its nearest existing parent), computed as df does."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    st = os.statvfs(existing)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize
    percent = round(100.0 * used / (used + free), 1) if used + free else 0.0
    return {"path": existing, "total_bytes": st.f_blocks * st.f_frsize, "free_bytes": free, "used_percent": percent}


def human_size(size):
    if size < 1024:
        return "%d B" % size
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024.0
        if size < 1024:
            return "%.1f %s" % (size, unit)
    return "%.1f TiB" % (size / 1024.0)


def human_age(seconds):
    if seconds < 3600:
        return "%d min" % (seconds // 60)
    return "%d h" % (seconds // 3600)


def _problem(level, code, message, job=None, **details):
    problem = {"level": level, "code": code, "message": message}
    if job is not None:
        problem["job"] = job
    problem.update(details)
    return problem


def _timer_hint(job):
    return "check the timer with systemctl status lifeboat-backup@%s.timer" % job


def job_health(scan, max_age, min_size_ratio, now):
    """Summary and problems of one job: newest good backup's age, size anomaly, failed and unverified backups."""
    good = [meta for meta in scan.backups if _catalog.verification_state(meta) != "failed"]
    summary = {"backups": len(scan.backups), "newest_good": None, "newest_good_at": None, "age_s": None}
    problems = []
    if not good:
        failed = len(scan.backups)
        problems.append(_problem("error", "no_backup", "job %s: no good backup in %s%s; run one now with lifeboat "
                                 "run %s and %s" % (scan.job, scan.directory, " (%d failed)" % failed if failed else "",
                                                    scan.job, _timer_hint(scan.job)), scan.job))
    else:
        newest = good[0]
        summary.update(newest_good=newest["id"], newest_good_at=newest["created_at"],
                       age_s=int((now - _catalog.parse_time(newest["created_at"])).total_seconds()))
        series = {}
        for meta in good:
            series.setdefault(_catalog.series_key(meta), []).append(meta)
        for key, members in sorted(series.items()):
            name = scan.job if len(series) == 1 else "%s (%s)" % (scan.job, key)
            problems.extend(_too_old(scan.job, name, members[0], max_age, now))
            problems.extend(_size_anomaly(scan.job, name, members, min_size_ratio))
    problems.extend(_verification_problems(scan))
    problems.extend(_chain_problems(scan))
    problems.extend(_leftover_problems(scan))
    summary["ok"] = not problems
    return summary, problems


def _too_old(job, name, newest, max_age, now):
    age = (now - _catalog.parse_time(newest["created_at"])).total_seconds()
    if age <= max_age.total_seconds():
        return []
    return [_problem("error", "too_old", "job %s: newest good backup is %s old (limit %s); %s"
                     % (name, human_age(age), human_age(max_age.total_seconds()), _timer_hint(job)), job,
                     id=newest["id"])]


def _size_anomaly(job, name, good, min_size_ratio):
    if good[0].get("level"):
        return []  # an incremental backup holds what changed: small is what it should be
    previous = [meta for meta in good[1:] if not meta.get("level")]
    if len(previous) < 3:
        return []
    median = statistics.median(int(meta.get("size") or 0) for meta in previous)
    size = int(good[0].get("size") or 0)
    if not median or size >= min_size_ratio * median:
        return []
    return [_problem("warning", "too_small", "job %s: newest backup %s is %s, %d%% of the median of the %d before it "
                     "(%s; limit %d%%); check its warnings and whether a source went missing or was emptied"
                     % (name, good[0]["id"], human_size(size), 100 * size // median, len(previous), human_size(median),
                        round(100 * min_size_ratio)), job, id=good[0]["id"])]


def _verification_problems(scan):
    problems = []
    for meta in scan.backups:
        if _catalog.verification_state(meta) == "failed":
            verification = meta.get("verification") or {}
            problems.append(_problem("error", "failed", "job %s: backup %s failed its %s verification (%s); do not "
                                     "restore from it: run lifeboat.backup.verify on the others and let prune remove "
                                     "it (once no kept backup's chain needs it)"
                                     % (scan.job, meta["id"], verification.get("level", "last"),
                                        verification.get("problem", "no detail recorded")), scan.job, id=meta["id"]))
    unverified = [meta["id"] for meta in scan.backups if _catalog.verification_state(meta) == "unverified"]
    if unverified:
        problems.append(_problem("warning", "unverified", "job %s: %d backup(s) never verified (newest %s); run "
                                 "lifeboat.backup.verify on them" % (scan.job, len(unverified), unverified[0]),
                                 scan.job, ids=unverified))
    for backup_id in scan.missing_checksum:
        problems.append(_problem("error", "missing_checksum", "job %s: backup %s has no %s%s sidecar; verify it with "
                                 "level full, then write the sidecar with sha256sum in %s, or remove the backup"
                                 % (scan.job, backup_id, backup_id, _catalog.CHECKSUM_SUFFIX, scan.directory),
                                 scan.job, id=backup_id))
    return problems


def _chain_problems(scan):
    broken = broken_chains({meta["id"]: _catalog.chain_needs(meta) for meta in scan.backups},
                           {meta["id"] for meta in scan.backups if _catalog.verification_state(meta) == "failed"})
    problems = []
    for meta in scan.backups:
        if meta["id"] in broken:
            member, why = broken[meta["id"]]
            what = "is missing from %s" % scan.directory if why == "missing" else "failed its verification"
            problems.append(_problem("error", "broken_chain", "job %s: backup %s cannot be restored: %s of its "
                                     "chain %s; restore an older backup whose chain is whole (a new backup never "
                                     "builds on a broken chain)" % (scan.job, meta["id"], member, what), scan.job,
                                     id=meta["id"], member=member))
    return problems


_LEFTOVER_MESSAGES = {
    "orphan": ("warning", "%(files)s: sidecar(s) without their artifact, left by an interrupted removal; "
                          "%(cleanup)s"),
    "no_metadata": ("warning", "%(files)s: artifact without metadata, left by a run killed %(age)s ago before it "
                               "finished; %(cleanup)s"),
    "temp_file": ("warning", "%(files)s: temporary file left by a run killed %(age)s ago; %(cleanup)s"),
    "bad_metadata": ("error", "%(files)s: the metadata cannot be trusted (%(problem)s); prune leaves these files "
                              "alone: repair the metadata or remove the files by hand"),
}


def _leftover_problems(scan):
    problems = []
    for leftover in scan.leftovers:
        level, template = _LEFTOVER_MESSAGES[leftover["kind"]]
        cleanup = ("the next prune removes it" if leftover["removable"]
                   else "a prune removes it once it is %s old" % human_age(_catalog.LEFTOVER_AGE))
        message = template % {"files": ", ".join(leftover["files"]), "age": human_age(leftover["age_s"]),
                              "cleanup": cleanup, "problem": leftover.get("problem")}
        problems.append(_problem(level, leftover["kind"], "job %s: %s" % (scan.job, message), scan.job,
                                 paths=leftover["paths"]))
    return problems


def disk_problems(usage, threshold):
    if usage["used_percent"] <= threshold:
        return []
    level = "critical" if usage["used_percent"] > CRITICAL_DISK_PERCENT else "warning"
    return [_problem(level, "disk_full", "the filesystem holding %s is %s%% full (threshold %s%%, %s free); remove "
                     "old backups with lifeboat.backup.prune or grow the filesystem"
                     % (usage["path"], usage["used_percent"], threshold, human_size(usage["free_bytes"])))]


def restore_problems(backup_dir):
    """A restore from this catalog that was killed may have left a target missing or a database half loaded: never
    silent. File restores leave a journal, database restores a record (_catalog/journal.py)."""
    problems = []
    for found in _catalog.restore_journals(backup_dir):
        journal = found.get("journal")
        if journal is None:
            what = "a restore journal that cannot be read (%s): check the paths of the restores run from %s by hand" \
                % (found["problem"], backup_dir)
        else:
            targets = ", ".join(str(unit.get("target")) for unit in journal["units"] if isinstance(unit, dict))
            what = ("a restore of %s into %s was killed (%s, started %s): %s; put it right with: lifeboat restore "
                    "--repair (any restore from this catalog does it first)"
                    % (journal.get("backup"), targets, journal.get("owner"), journal.get("started_at"),
                       "the restored trees are in place, the trees they replaced are still beside them"
                       if journal.get("state") == "committed" else
                       "a target may be missing or half restored, what it replaced is kept beside it"))
        problems.append(_problem("critical", "interrupted_restore", what, paths=[found["path"]]))
    problems.extend(_problem("critical", "interrupted_restore", record["problem"], paths=[record["path"]])
                    for record in _catalog.interrupted_restores(backup_dir))
    return problems


def check_health(backup_dir, scans, max_age, min_size_ratio, disk_usage_threshold, now,
                 vault_backlog_after=DEFAULT_BACKLOG_AFTER):
    """Health of the scanned jobs, of their replication to vaults and of the filesystem holding backup_dir."""
    jobs, problems = {}, []
    if not scans:
        problems.append(_problem("error", "no_backup", "no backup job in %s; run a first backup (lifeboat.backup."
                                 "archive or lifeboat run JOB) and check the timers with systemctl list-timers "
                                 "'lifeboat-backup@*'" % backup_dir))
    for scan in scans:
        jobs[scan.job], job_problems = job_health(scan, max_age, min_size_ratio, now)
        problems.extend(job_problems)
    problems.extend(restore_problems(backup_dir))
    vaults = replication_status(backup_dir, scans, parse_duration(vault_backlog_after).before(now))
    problems.extend(replication_problems(vaults))
    usage = disk_usage(backup_dir)
    usage["threshold"] = disk_usage_threshold
    problems.extend(disk_problems(usage, disk_usage_threshold))
    return dict(verdict(problems), jobs=jobs, vaults=vaults, disk=usage)


def verdict(problems):
    """ok, the worst level (or ok) and the problems themselves: the head of every health report."""
    worst = max((LEVELS.index(problem["level"]) for problem in problems), default=None)
    return {"ok": not problems, "level": "ok" if worst is None else LEVELS[worst], "problems": problems}


def _check_options(min_size_ratio, disk_usage_threshold):
    if not 0 <= min_size_ratio <= 1:
        raise UsageError("min_size_ratio must be between 0 and 1 (a fraction of the median size), not %r"
                         % (min_size_ratio,))
    if not 0 <= disk_usage_threshold <= 100:
        raise UsageError("disk_usage_threshold must be a percentage between 0 and 100, not %r"
                         % (disk_usage_threshold,))


def catalog_info(backup_dir=_catalog.DEFAULT_BACKUP_DIR, job=None, kind=None, tags=None, deploy_id=None, since=None,
                 max_age="26h", min_size_ratio=0.5, disk_usage_threshold=85.0, now=None,
                 vault_backlog_after=DEFAULT_BACKLOG_AFTER):
    """Backups (filtered, newest first), their statistics, leftovers and the health of the jobs.

    Only ``job`` narrows the health report; the other filters narrow ``backups`` and ``stats``.
    """
    now = now or _catalog.utc_now()
    _check_options(min_size_ratio, disk_usage_threshold)
    limit = parse_max_age(max_age, now)
    since_time = parse_since(since, now) if since else None
    scans = _catalog.scan_catalog(backup_dir, job, now)
    every = sorted((meta for scan in scans for meta in scan.backups),
                   key=lambda meta: (_catalog.parse_time(meta["created_at"]), meta["id"]), reverse=True)
    backups = filter_backups(every, kind=kind, tags=tags, deploy_id=deploy_id, since=since_time)
    health = check_health(backup_dir, scans, limit, min_size_ratio, disk_usage_threshold, now, vault_backlog_after)
    leftovers = [leftover for scan in scans for leftover in scan.leftovers]
    summary = "%d backup(s) listed of %d in %s" % (len(backups), len(every), backup_dir)
    verdict = "healthy" if health["ok"] else "%d problem(s), worst %s" % (len(health["problems"]), health["level"])
    return {"changed": False, "backups": [_catalog.public(meta) for meta in backups], "stats": compute_stats(backups),
            "health": health, "leftovers": leftovers, "msg": "%s; %s" % (summary, verdict)}
