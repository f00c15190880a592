# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The trusted side's upkeep of a vault: retention and the sweep of interrupted uploads. Hosts never run it.

Retention is the local one (_prune.decide: the same restic-identical rules per host, job and series). On a store
with locks a version whose lock still holds is never removed: the store refuses, and it is reported as locked
until then; what the rules keep has its lock extended to the bucket's default retention from now, never
shortened, so a kept copy stays protected however long it is kept. Copies that never completed (no sidecar)
are removed once older than sweep_after, as are the invisible parts of interrupted multipart uploads.

Incremental chains are kept whole from the copies' metadata, as locally: what a kept copy needs is kept, and copies
are removed newest first, so an interrupted upkeep leaves a chain's older part. A copy that stays because its lock
still holds keeps what it needs too (it is listed as kept): a lock set later on a newer copy outlasts its base's.
"""

from __future__ import annotations

import datetime

from .._catalog import chain_needs
from .._prune import decide
from .._retention import parse_duration
from .address import host_directory
from .copies import read_host, usable

DEFAULT_SWEEP_AFTER = "24h"


def hosts_on(vault):
    """The host directories under the vault's prefix."""
    prefix = vault.store.address.prefix
    depth = prefix.count("/") + 1 if prefix else 0
    hosts = set()
    for info in vault.store.list(prefix):
        parts = info.key.split("/")
        if len(parts) == depth + 3:  # PREFIX/HOST/JOB/NAME
            hosts.add(parts[depth])
    return sorted(hosts)


def maintain(vault, policy, hosts=None, jobs=None, sweep_after=DEFAULT_SWEEP_AFTER, check_mode=False, now=None):
    """Apply policy to each host's jobs on the vault and sweep what interrupted uploads left.

    Returns {"changed", "hosts": {host: {job: {"kept", "removed", "locked", "swept", "extended", "incomplete"}}},
    "diff", "msg"}: ids, except swept (stems) and incomplete (how many partial copies are left, within the grace
    period); the diff lists HOST/ID of every complete copy before, and of those left after.
    """
    policy.validate()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    facts = vault.store.check(write=not check_mode)
    extend_to = _lock_end(facts, now)
    swept_before = parse_duration(sweep_after).before(now)
    report = {}
    for host in hosts or hosts_on(vault):
        for job, by_id in sorted(read_host(vault.store, host, None, with_details=True).items()):
            if jobs and job not in jobs:
                continue
            entry = _maintain_job(vault, by_id, policy, now, extend_to, swept_before, check_mode)
            report.setdefault(host, {})[job] = entry
        if not check_mode:
            vault.store.sweep_uploads(host_directory(vault.store.address, host), swept_before)
    changed = any(entry["removed"] or entry["swept"] or entry["extended"]
                  for jobs_of_host in report.values() for entry in jobs_of_host.values())
    return {"changed": changed, "hosts": report, "diff": _diff(vault, report),
            "msg": _message(vault, report, check_mode)}


def _diff(vault, report):
    before, after = [], []
    for host, jobs_of_host in sorted(report.items()):
        for _job, entry in sorted(jobs_of_host.items()):
            left = entry["kept"] + entry["locked"]
            before += ["%s/%s\n" % (host, backup_id) for backup_id in sorted(left + entry["removed"], reverse=True)]
            after += ["%s/%s\n" % (host, backup_id) for backup_id in sorted(left, reverse=True)]
    header = vault.describe()
    return {"before_header": header, "after_header": header, "before": "".join(before), "after": "".join(after)}


def _lock_end(facts, now):
    days = facts.get("retention_days") or 365 * (facts.get("retention_years") or 0)
    return now + datetime.timedelta(days=days) if days else None


def _maintain_job(vault, by_id, policy, now, extend_to, swept_before, check_mode):
    complete = {backup_id: usable(attempts) for backup_id, attempts in by_id.items() if usable(attempts)}
    kept, removed = decide([copy.metadata for copy in complete.values()], policy, now)
    entry = {"kept": [item["id"] for item in kept], "removed": [], "locked": [], "swept": [], "extended": []}
    staying = set(entry["kept"])
    for backup_id in removed:  # newest first: a copy goes before the ones it needs
        if any(backup_id in chain_needs(complete[other].metadata) for other in staying):
            entry["kept"].append(backup_id)  # a locked copy needs it
            staying.add(backup_id)
            continue
        locked = _remove(vault, [info for copy in by_id[backup_id] for info in copy.all_versions()], now, check_mode)
        entry["locked" if locked else "removed"].append(backup_id)
        if locked:
            staying.add(backup_id)
    entry["incomplete"] = 0
    for backup_id, attempts in by_id.items():
        if backup_id in entry["removed"] or backup_id in entry["locked"]:
            continue
        partial = [copy for copy in attempts if not copy.complete]
        stale = [copy for copy in partial if copy.newest < swept_before]
        if stale:
            _remove(vault, [info for copy in stale for info in copy.all_versions()], now, check_mode)
            entry["swept"].extend(copy.stem for copy in stale)
        entry["incomplete"] += len(partial) - len(stale)
    if extend_to is not None:
        for backup_id in entry["kept"]:
            copy = complete[backup_id]
            versions = [copy.artifact, copy.metadata_object, copy.checksum_object]
            if any(_needs_extension(vault, info, extend_to) for info in versions):
                if not check_mode:
                    for info in versions:
                        vault.store.retain(info, extend_to)
                entry["extended"].append(backup_id)
    return entry


def _needs_extension(vault, info, until):
    retain_until = vault.store.details(info).retain_until
    # a day's slack: a daily run does not rewrite every lock every day
    return retain_until is None or retain_until < until - datetime.timedelta(days=1)


def _remove(vault, versions, now, check_mode):
    """Remove versions (artifact first); True when a lock still holds one of them (then nothing after it goes)."""
    for info in sorted(versions, key=lambda info: info.name.endswith((".json", ".sha256"))):
        details = vault.store.details(info)
        if details.retain_until is not None and details.retain_until > now:
            return True
        if not check_mode:
            vault.store.remove(info)
    return False


def _message(vault, report, check_mode):
    totals = {key: sum(len(entry[key]) for jobs in report.values() for entry in jobs.values())
              for key in ("kept", "removed", "locked", "swept", "extended")}
    verb = "would remove" if check_mode else "removed"
    return ("%s: kept %d copies (%d locks extended), %s %d, %d still locked, %d incomplete upload(s) swept"
            % (vault.describe(), totals["kept"], totals["extended"], verb, totals["removed"], totals["locked"],
               totals["swept"]))
