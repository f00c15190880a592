# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How replication to each vault went, per job, kept in the catalog (<backup_dir>/.replication.json), and what
monitoring makes of it: the last success, a failing vault, and the backlog of backups without a copy.

A job counts as replicated to a vault from its first replication on; from then on every backup of the job older
than the grace period must have a copy there (recorded in its metadata), or it is backlog.
"""

from __future__ import annotations

import json
import os

from .. import _catalog

STATE_NAME = ".replication.json"
DEFAULT_BACKLOG_AFTER = "6h"


def _path(backup_dir):
    return os.path.join(backup_dir, STATE_NAME)


def read_state(backup_dir):
    """{job: {vault name: {"last_attempt", "last_success", "failure"}}}; an unreadable file reads as empty."""
    try:
        with open(_path(backup_dir), "r", encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def record_outcome(backup_dir, job, vault_name, failure, lock_timeout):
    """Record one replication's outcome, under the catalog lock."""
    now = _catalog.iso_utc(_catalog.utc_now())
    with _catalog.CatalogLock(backup_dir, timeout=lock_timeout):
        state = read_state(backup_dir)
        entry = state.setdefault(job, {}).setdefault(vault_name, {})
        entry["last_attempt"] = now
        entry["failure"] = failure
        if failure is None:
            entry["last_success"] = now
        _catalog.write_metadata(_path(backup_dir), state)


def replication_status(backup_dir, scans, backlog_before):
    """Per job and vault: last_success, failure and the ids of the backlog (backups made before backlog_before
    without a copy), newest first."""
    state = read_state(backup_dir)
    status = []
    for scan in scans:
        for vault_name, entry in sorted((state.get(scan.job) or {}).items()):
            backlog = [meta["id"] for meta in sorted(scan.backups, key=lambda meta: meta["created_at"], reverse=True)
                       if vault_name not in (meta.get("vaults") or {})
                       and _catalog.backup_time(meta) < backlog_before]
            status.append({"job": scan.job, "vault": vault_name, "last_success": entry.get("last_success"),
                           "failure": entry.get("failure"), "backlog": backlog})
    return status


def replication_problems(status):
    """Health problems of replication_status: a failing vault (error), a backlog (error)."""
    problems = []
    for entry in status:
        where = "job %s: vault %s" % (entry["job"], entry["vault"])
        if entry["failure"]:
            problems.append({"level": "error", "code": "vault_failed", "job": entry["job"], "vault": entry["vault"],
                             "message": "%s: the last replication failed (%s); the local backups are kept until "
                                        "they have a copy: fix the vault and run lifeboat replicate %s"
                                        % (where, entry["failure"], entry["job"])})
        if entry["backlog"]:
            problems.append({"level": "error", "code": "vault_backlog", "job": entry["job"], "vault": entry["vault"],
                             "ids": entry["backlog"],
                             "message": "%s: %d backup(s) have no copy there yet (oldest %s, last success %s)"
                                        % (where, len(entry["backlog"]), entry["backlog"][-1],
                                           entry["last_success"] or "never")})
    return problems
