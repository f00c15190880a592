# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus node_exporter textfile metrics of a catalog, written atomically.

node_exporter reads every *.prom file of its textfile directory on each scrape; a file
replaced by rename is never seen half-written.
"""

from __future__ import annotations

import calendar
import os
import time

from ._fileio import write_atomic

PREFIX = "lifeboat_backup_"
FILE_NAME = "lifeboat_backup.prom"
VAULT_FILE_NAME = "lifeboat_vault.prom"

# name -> (type, help)
METRICS = {
    "last_success_timestamp_seconds": ("gauge", "Unix time of the newest backup of the job that is not failed."),
    "last_size_bytes": ("gauge", "Size in bytes of the newest good artifact of the job."),
    "last_duration_seconds": ("gauge", "Seconds the newest good backup of the job took."),
    "last_verified": ("gauge", "1 when the newest good backup of the job passed a verification, else 0."),
    "backups": ("gauge", "Number of backups of the job in the catalog."),
    "failed_backups": ("gauge", "Number of backups of the job whose verification failed."),
    "broken_chain_backups": ("gauge", "Number of incremental backups of the job that cannot be restored: a backup of "
                                      "their chain is missing or failed its verification."),
    "dir_free_bytes": ("gauge", "Free bytes of the filesystem holding the backup directory."),
    "dir_usage_ratio": ("gauge", "Used fraction (0 to 1) of the filesystem holding the backup directory."),
    "problems": ("gauge", "Number of health problems by level."),
    "vault_last_success_timestamp_seconds": ("gauge", "Unix time of the job's last successful replication to the "
                                                      "vault."),
    "vault_failing": ("gauge", "1 when the job's last replication to the vault failed, else 0."),
    "vault_backlog": ("gauge", "Number of the job's backups older than the grace period without a copy on the "
                               "vault."),
    "metrics_timestamp_seconds": ("gauge", "Unix time these metrics were written."),
}
LEVELS = ("warning", "error", "critical")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name, value, labels=None):
    label_text = ""
    if labels:
        label_text = "{%s}" % ",".join('%s="%s"' % (key, _escape(val)) for key, val in sorted(labels.items()))
    return "%s%s%s %s" % (PREFIX, name, label_text, _number(value))


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def _timestamp(created_at):
    return calendar.timegm(time.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ"))


def render(backups, backup_dir, problems, now=None, vaults=()):
    """The text of the metrics file for a catalog: backups newest first, as the catalog lists them; vaults: the
    replication status per job and vault (_vault.state.replication_status)."""
    samples = {name: [] for name in METRICS}
    jobs = {}
    for meta in backups:
        jobs.setdefault(meta["job"], []).append(meta)
    for job, metas in sorted(jobs.items()):
        labels = {"job": job}
        good = [meta for meta in metas if meta.get("verification", {}).get("state") != "failed"]
        samples["backups"].append(_sample("backups", len(metas), labels))
        samples["failed_backups"].append(_sample("failed_backups", len(metas) - len(good), labels))
        samples["broken_chain_backups"].append(_sample("broken_chain_backups", sum(
            1 for problem in problems if problem.get("code") == "broken_chain" and problem.get("job") == job), labels))
        if good:
            newest = good[0]
            samples["last_success_timestamp_seconds"].append(
                _sample("last_success_timestamp_seconds", _timestamp(newest["created_at"]), labels))
            samples["last_size_bytes"].append(_sample("last_size_bytes", newest.get("size", 0), labels))
            samples["last_duration_seconds"].append(
                _sample("last_duration_seconds", float(newest.get("duration_s", 0.0)), labels))
            samples["last_verified"].append(
                _sample("last_verified", newest.get("verification", {}).get("state") == "verified", labels))
    if os.path.isdir(backup_dir):
        stats = os.statvfs(backup_dir)
        total = stats.f_blocks * stats.f_frsize
        free = stats.f_bavail * stats.f_frsize
        samples["dir_free_bytes"].append(_sample("dir_free_bytes", free, {"backup_dir": backup_dir}))
        usage = 1.0 - (free / total) if total else 0.0
        samples["dir_usage_ratio"].append(_sample("dir_usage_ratio", round(usage, 4), {"backup_dir": backup_dir}))
    for entry in vaults:
        labels = {"job": entry["job"], "vault": entry["vault"]}
        if entry["last_success"]:
            samples["vault_last_success_timestamp_seconds"].append(
                _sample("vault_last_success_timestamp_seconds", _timestamp(entry["last_success"]), labels))
        samples["vault_failing"].append(_sample("vault_failing", bool(entry["failure"]), labels))
        samples["vault_backlog"].append(_sample("vault_backlog", len(entry["backlog"]), labels))
    for level in LEVELS:
        count = sum(1 for problem in problems if problem.get("level") == level)
        samples["problems"].append(_sample("problems", count, {"level": level}))
    samples["metrics_timestamp_seconds"].append(_sample("metrics_timestamp_seconds",
                                                        int(now if now is not None else time.time())))
    return _text(METRICS, samples)


# The SFTP vault host's own metrics (lifeboat vault-maintain): name -> (type, help)
VAULT_METRICS = {
    "vault_copies": ("gauge", "Complete copies of the host's job the vault holds after its upkeep."),
    "vault_incomplete": ("gauge", "Copies of the host's job whose upload has not finished (swept after the grace "
                                  "period)."),
    "vault_maintain_failed": ("gauge", "1 when the vault's last upkeep failed for one of its directories, else 0."),
    "vault_maintain_timestamp_seconds": ("gauge", "Unix time of the vault's last upkeep."),
}


def render_vault_host(results, failures, now=None):
    """The text of an SFTP vault host's metrics file from the results of _vault.maintain.maintain."""
    samples = {name: [] for name in VAULT_METRICS}
    for result in results:
        for host, jobs in sorted(result["hosts"].items()):
            for job, entry in sorted(jobs.items()):
                labels = {"host": host, "job": job}
                samples["vault_copies"].append(_sample("vault_copies", len(entry["kept"]), labels))
                samples["vault_incomplete"].append(_sample("vault_incomplete", entry["incomplete"], labels))
    samples["vault_maintain_failed"].append(_sample("vault_maintain_failed", bool(failures)))
    samples["vault_maintain_timestamp_seconds"].append(
        _sample("vault_maintain_timestamp_seconds", int(now if now is not None else time.time())))
    return _text(VAULT_METRICS, samples)


def _text(metrics, samples):
    lines = []
    for name, (kind, text) in metrics.items():
        if samples[name]:
            lines.append("# HELP %s%s %s" % (PREFIX, name, text))
            lines.append("# TYPE %s%s %s" % (PREFIX, name, kind))
            lines.extend(samples[name])
    return "\n".join(lines) + "\n"


def write(textfile_dir, text, file_name=FILE_NAME):
    """Replace the metrics file atomically; node_exporter ignores the temporary name (it does not end in .prom)."""
    os.makedirs(textfile_dir, exist_ok=True)
    path = os.path.join(textfile_dir, file_name)
    write_atomic(path, text.encode("utf-8"), mode=0o644)
    return path
