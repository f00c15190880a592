# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a catalog without changing it: backups, leftovers, statistics and health.

The scan looks only at regular files in <backup_dir>/<job>/ whose names look like catalog files:
``<job>-<YYYYMMDDTHHMMSSZ>[-N].<suffix>`` (artifact, ``.sha256``, ``.json``) and the temporary files
of _fileio (``.<name>.tmp-*``). Anything else is neither reported nor ever removed. Each id is then:

backup          a readable ``.json`` whose artifact exists (a missing ``.sha256`` is reported as damage)
orphan          sidecars without their artifact: a prune or a removal was interrupted; holds no data
no_metadata     an artifact without ``.json``: a run was killed before it wrote its metadata
bad_metadata    a ``.json`` that cannot be read or names an impossible artifact; never removed
temp_file       a temporary file of a killed run

Health problems and their levels (``health.problems``):

critical   disk_full (the filesystem is fuller than the threshold and than 95 %)
error      no_backup, too_old, failed, bad_metadata, missing_checksum
warning    disk_full (over the threshold, up to 95 %), too_small, unverified, orphan, no_metadata, temp_file
"""

from __future__ import annotations

import os
import re
import stat
import statistics
from datetime import datetime

from . import _catalog
from ._fileio import TEMP_MARKER
from ._errors import BackupError, IntegrityError, UsageError
from ._retention import parse_duration

LEFTOVER_AGE = 3600  # seconds: younger artifacts without metadata and temporary files may belong to a live writer
CRITICAL_DISK_PERCENT = 95.0
LEVELS = ("warning", "error", "critical")
STATES = ("verified", "unverified", "failed")
_ID_PATTERN = r"%s-[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?"
_SUFFIX_PATTERN = r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*"
_SIDECAR_SUFFIXES = (_catalog.CHECKSUM_SUFFIX, _catalog.METADATA_SUFFIX)


def _name_patterns(job):
    catalog = r"(?P<id>%s)\.(?P<suffix>%s)" % (_ID_PATTERN % re.escape(job), _SUFFIX_PATTERN)
    return re.compile(r"^%s$" % catalog), re.compile(r"^\.%s%s[A-Za-z0-9_]+$" % (catalog, re.escape(TEMP_MARKER)))


def is_catalog_file(job, name):
    """True for the names a catalog holds in the directory of job: sidecars, artifacts, temporary files."""
    return any(pattern.match(name) for pattern in _name_patterns(job))


def parse_time(text):
    """An aware datetime from ISO 8601; ``Z`` is UTC (fromisoformat accepts it only from Python 3.11)."""
    if not isinstance(text, str):
        raise ValueError("not a time: %r" % (text,))
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.utcoffset() is None:
        raise ValueError("%s has no UTC offset" % text)
    return moment


def backup_time(metadata):
    """The local wall time with its offset (what retention periods use); created_at for older metadata."""
    return parse_time(metadata.get("local_time") or metadata["created_at"])


def verification_state(metadata):
    state = (metadata.get("verification") or {}).get("state")
    return state if state in STATES else "unverified"


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


class JobScan:
    """One job directory: its backups (metadata, newest first), leftovers and backups without checksum."""

    def __init__(self, job, directory):
        self.job = job
        self.directory = directory
        self.backups = []
        self.leftovers = []
        self.missing_checksum = []


def scan_catalog(backup_dir, job=None, now=None):
    """JobScan of every job directory (or of one job), sorted by job name; reads, never writes."""
    now = now or _catalog.utc_now()
    if job is not None:
        names = [_catalog.check_job_name(job)]
    elif os.path.isdir(backup_dir):
        names = sorted(name for name in os.listdir(backup_dir) if _is_job_dir(backup_dir, name))
    else:
        names = []
    return [_scan_job(name, os.path.join(backup_dir, name), now) for name in names]


def _is_job_dir(backup_dir, name):
    try:
        _catalog.check_job_name(name)
    except UsageError:
        return False
    return os.path.isdir(os.path.join(backup_dir, name))


def _regular_files(directory):
    """Name -> stat of the regular files of a directory (symbolic links are not catalog files)."""
    found = {}
    if not os.path.isdir(directory):
        return found
    for name in os.listdir(directory):
        try:
            st = os.lstat(os.path.join(directory, name))
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            found[name] = st
    return found


def _scan_job(job, directory, now):
    scan = JobScan(job, directory)
    catalog_re, temp_re = _name_patterns(job)
    files = _regular_files(directory)
    groups = {}
    for name in sorted(files):
        if temp_re.match(name):
            scan.leftovers.append(_leftover(scan, "temp_file", None, [name], files, now))
            continue
        match = catalog_re.match(name)
        if match:
            groups.setdefault(match.group("id"), []).append(name)
    for backup_id, names in groups.items():
        _classify(scan, backup_id, names, files, now)
    scan.backups.sort(key=lambda meta: (parse_time(meta["created_at"]), meta["id"]), reverse=True)
    scan.leftovers.sort(key=lambda leftover: leftover["files"][0])
    return scan


def _classify(scan, backup_id, names, files, now):
    json_name = backup_id + _catalog.METADATA_SUFFIX
    sha_name = backup_id + _catalog.CHECKSUM_SUFFIX
    artifacts = [name for name in names if name not in (json_name, sha_name)]
    sidecars = [name for name in (sha_name, json_name) if name in names]
    if json_name not in names:
        if artifacts:
            scan.leftovers.append(_leftover(scan, "no_metadata", backup_id, artifacts + sidecars, files, now))
        else:
            scan.leftovers.append(_leftover(scan, "orphan", backup_id, sidecars, files, now))
        return
    try:
        metadata = _read_valid_metadata(os.path.join(scan.directory, json_name), scan.job, backup_id)
    except BackupError as exc:
        leftover = _leftover(scan, "bad_metadata", backup_id, artifacts + sidecars, files, now)
        leftover["problem"] = exc.msg
        scan.leftovers.append(leftover)
        return
    strays = [name for name in artifacts if name != metadata["artifact"]]
    if strays:
        scan.leftovers.append(_leftover(scan, "no_metadata", backup_id, strays, files, now))
    if metadata["artifact"] not in artifacts:
        scan.leftovers.append(_leftover(scan, "orphan", backup_id, sidecars, files, now))
        return
    metadata["_metadata_path"] = os.path.join(scan.directory, json_name)
    scan.backups.append(metadata)
    if sha_name not in names:
        scan.missing_checksum.append(backup_id)


def _read_valid_metadata(path, job, backup_id):
    """Metadata that retention and prune can trust: its id, times and artifact name are checked."""
    metadata = _catalog.read_metadata(path)
    if not isinstance(metadata, dict) or metadata.get("id") != backup_id:
        raise IntegrityError("its id is not %s" % backup_id)
    artifact = metadata.get("artifact")
    catalog_re = _name_patterns(job)[0]
    match = catalog_re.match(artifact) if isinstance(artifact, str) else None
    if not match or match.group("id") != backup_id or "." + match.group("suffix") in _SIDECAR_SUFFIXES:
        raise IntegrityError("it names an artifact that cannot belong to %s: %r" % (backup_id, artifact))
    try:
        parse_time(metadata.get("created_at"))
        backup_time(metadata)
    except ValueError as exc:
        raise IntegrityError("its created_at or local_time is not an ISO time with offset (%s)" % exc)
    return metadata


def _leftover(scan, kind, backup_id, names, files, now):
    """A set of files that is not a backup; age is that of its youngest file, removable says if prune may clean it."""
    age = int(min(now.timestamp() - files[name].st_mtime for name in names))
    if kind == "orphan":
        removable = True  # sidecars without their artifact hold no data that could be restored
    elif kind in ("no_metadata", "temp_file"):
        removable = age >= LEFTOVER_AGE
    else:
        removable = False
    return {"job": scan.job, "kind": kind, "id": backup_id, "files": names,
            "paths": [os.path.join(scan.directory, name) for name in names], "age_s": age, "removable": removable}


def filter_backups(backups, kind=None, tags=None, deploy_id=None, since=None):
    """Backups of the kind, carrying any of the tags, of the deploy, created at or after since."""
    wanted_tags = set(tags or ())
    return [meta for meta in backups
            if (kind is None or meta.get("kind") == kind)
            and (not wanted_tags or wanted_tags.intersection(meta.get("tags") or ()))
            and (deploy_id is None or meta.get("deploy_id") == deploy_id)
            and (since is None or parse_time(meta["created_at"]) >= since)]


def summarize(backups):
    """Count, size, average compression ratio, verification states, oldest and newest of newest-first backups."""
    states = [verification_state(meta) for meta in backups]
    ratios = [meta["ratio"] for meta in backups if isinstance(meta.get("ratio"), (int, float))]
    summary = {"count": len(backups), "total_size": sum(int(meta.get("size") or 0) for meta in backups),
               "average_ratio": round(sum(ratios) / len(ratios), 3) if ratios else None,
               "oldest": None, "oldest_id": None, "newest": None, "newest_id": None}
    summary.update((state, states.count(state)) for state in STATES)
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
    good = [meta for meta in scan.backups if verification_state(meta) != "failed"]
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
                       age_s=int((now - parse_time(newest["created_at"])).total_seconds()))
        series = {}
        for meta in good:
            series.setdefault(_catalog.series_key(meta), []).append(meta)
        for key, members in sorted(series.items()):
            name = scan.job if len(series) == 1 else "%s (%s)" % (scan.job, key)
            problems.extend(_too_old(scan.job, name, members[0], max_age, now))
            problems.extend(_size_anomaly(scan.job, name, members, min_size_ratio))
    problems.extend(_verification_problems(scan))
    problems.extend(_leftover_problems(scan))
    summary["ok"] = not problems
    return summary, problems


def _too_old(job, name, newest, max_age, now):
    age = (now - parse_time(newest["created_at"])).total_seconds()
    if age <= max_age.total_seconds():
        return []
    return [_problem("error", "too_old", "job %s: newest good backup is %s old (limit %s); %s"
                     % (name, human_age(age), human_age(max_age.total_seconds()), _timer_hint(job)), job,
                     id=newest["id"])]


def _size_anomaly(job, name, good, min_size_ratio):
    previous = good[1:]
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
        if verification_state(meta) == "failed":
            verification = meta.get("verification") or {}
            problems.append(_problem("error", "failed", "job %s: backup %s failed its %s verification (%s); do not "
                                     "restore from it: run lifeboat.backup.verify on the others and let prune remove it"
                                     % (scan.job, meta["id"], verification.get("level", "last"),
                                        verification.get("problem", "no detail recorded")), scan.job, id=meta["id"]))
    unverified = [meta["id"] for meta in scan.backups if verification_state(meta) == "unverified"]
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
                   else "a prune removes it once it is %s old" % human_age(LEFTOVER_AGE))
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


def check_health(backup_dir, scans, max_age, min_size_ratio, disk_usage_threshold, now):
    """Health of the scanned jobs and of the filesystem holding backup_dir."""
    jobs, problems = {}, []
    if not scans:
        problems.append(_problem("error", "no_backup", "no backup job in %s; run a first backup (lifeboat.backup."
                                 "archive or lifeboat run JOB) and check the timers with systemctl list-timers "
                                 "'lifeboat-backup@*'" % backup_dir))
    for scan in scans:
        jobs[scan.job], job_problems = job_health(scan, max_age, min_size_ratio, now)
        problems.extend(job_problems)
    usage = disk_usage(backup_dir)
    usage["threshold"] = disk_usage_threshold
    problems.extend(disk_problems(usage, disk_usage_threshold))
    worst = max((LEVELS.index(problem["level"]) for problem in problems), default=None)
    return {"ok": not problems, "level": "ok" if worst is None else LEVELS[worst], "problems": problems,
            "jobs": jobs, "disk": usage}


def _check_options(min_size_ratio, disk_usage_threshold):
    if not 0 <= min_size_ratio <= 1:
        raise UsageError("min_size_ratio must be between 0 and 1 (a fraction of the median size), not %r"
                         % (min_size_ratio,))
    if not 0 <= disk_usage_threshold <= 100:
        raise UsageError("disk_usage_threshold must be a percentage between 0 and 100, not %r"
                         % (disk_usage_threshold,))


def catalog_info(backup_dir=_catalog.DEFAULT_BACKUP_DIR, job=None, kind=None, tags=None, deploy_id=None, since=None,
                 max_age="26h", min_size_ratio=0.5, disk_usage_threshold=85.0, now=None):
    """Backups (filtered, newest first), their statistics, leftovers and the health of the jobs.

    Only ``job`` narrows the health report; the other filters narrow ``backups`` and ``stats``.
    """
    now = now or _catalog.utc_now()
    _check_options(min_size_ratio, disk_usage_threshold)
    limit = parse_max_age(max_age, now)
    since_time = parse_since(since, now) if since else None
    scans = scan_catalog(backup_dir, job, now)
    every = sorted((meta for scan in scans for meta in scan.backups),
                   key=lambda meta: (parse_time(meta["created_at"]), meta["id"]), reverse=True)
    backups = filter_backups(every, kind=kind, tags=tags, deploy_id=deploy_id, since=since_time)
    health = check_health(backup_dir, scans, limit, min_size_ratio, disk_usage_threshold, now)
    leftovers = [leftover for scan in scans for leftover in scan.leftovers]
    summary = "%d backup(s) listed of %d in %s" % (len(backups), len(every), backup_dir)
    verdict = "healthy" if health["ok"] else "%d problem(s), worst %s" % (len(health["problems"]), health["level"])
    return {"changed": False, "backups": [_catalog.public(meta) for meta in backups], "stats": compute_stats(backups),
            "health": health, "leftovers": leftovers, "msg": "%s; %s" % (summary, verdict)}
