#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prune
short_description: Remove the backups a retention policy does not keep, with restic's rules
version_added: 0.1.0
description:
  - Decides for each job on its own which backups to keep with the rules of C(restic forget), applied to each
    backup's local time (with the UTC offset it was made in); see C(docs/retention.md) for worked examples.
  - Within a period, a verified backup is preferred to an unverified one and an unverified one to a failed one,
    so a failed backup never takes a period's slot from a good one.
  - An empty policy (no C(keep_*) option) keeps everything and says so.
  - Incremental chains are kept whole - every backup that a kept backup needs to be restored is kept too - and
    removed newest first, so an interrupted prune never leaves a backup without one it needs. A backup whose chain has
    a missing or failed backup counts as failed for the rules. The same holds for the copies on a vault.
  - Removes under the lock of O(backup_dir) the artifact first, then its C(.sha256) and C(.json); a kill at any
    moment leaves a complete backup or sidecars without artifact, which the next prune removes.
  - Also removes leftovers of interrupted runs and reports them in RV(cleaned) - sidecars without their artifact at
    once, artifacts without metadata and temporary files once they are an hour old. Metadata that cannot be read is
    left alone (M(lifeboat.backup.catalog_info) reports it).
  - Only regular files in O(backup_dir)/<job>/ whose names look like catalog files are ever removed.
  - "With O(vault), the same rules are applied to the complete copies on the vault instead, for each host and job
    on its own, and the local catalog is left alone. This is the trusted side's upkeep: run it from the controller
    (C(delegate_to: localhost), C(run_once)) with credentials that may delete, which hosts never hold. A copy whose
    lock (S3 Object Lock) still holds is never removed and is reported in C(locked) until it expires; on a store
    with locks, what the rules keep has its lock extended to the bucket's default retention from now, never
    shortened. Copies whose upload never finished are swept once older than O(sweep_after), as are the invisible
    parts of interrupted S3 multipart uploads."
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.retention
  - lifeboat.backup.vault
attributes:
  check_mode:
    support: full
    details: Reports what would be kept, removed and cleaned, without the lock and without removing anything; with
      O(vault), what would be removed, swept and extended, without changing a lock.
  diff_mode:
    support: full
    details: Before, the ids of every backup; after, the ids kept. With O(vault), C(HOST/ID) of each complete copy.
options:
  backup_dir:
    description:
      - The catalog directory on the managed host.
    type: path
    default: /var/backups/lifeboat
  job:
    description:
      - Prune only this job. By default every job of O(backup_dir) (with O(vault), of each host on it), each judged
        on its own.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for another run holding the lock of O(backup_dir) before failing. Not used with O(vault).
    type: float
    default: 0
  all_hosts:
    description:
      - With O(vault), apply the policy to every host's copies under the vault's prefix, not only those of
        O(vault.host).
    type: bool
    default: false
  sweep_after:
    description:
      - With O(vault), how old the last object of an unfinished upload must be before it is swept, a duration such
        as V(24h) or V(2d). A host may still be uploading a younger one.
    type: str
    default: 24h
requirements:
  - python >= 3.9 on the managed host
  - boto3 for an S3 vault, the OpenSSH client (C(sftp)) for an SFTP vault
seealso:
  - module: lifeboat.backup.catalog_info
  - module: lifeboat.backup.replicate
  - name: restic forget
    description: The retention rules this module follows.
    link: https://restic.readthedocs.io/en/stable/060_forget.html
"""

EXAMPLES = r"""
- name: A week of dailies, a month of weeklies, a year of monthlies
  lifeboat.backup.prune:
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12

- name: Everything of the last two days, and every backup made before a deploy
  lifeboat.backup.prune:
    job: app
    keep_within: 2d
    keep_tags: [pre-deploy]

- name: Show what would go
  lifeboat.backup.prune:
    keep_last: 3
  check_mode: true
  diff: true
  register: plan

- name: The vault's retention, from the controller with credentials that may delete
  lifeboat.backup.prune:
    keep_daily: 14
    keep_monthly: 12
    all_hosts: true
    vault:
      url: s3://backups-example/fleet
      access_key: "{{ vaulted_s3_admin_access_key }}"
      secret_key: "{{ vaulted_s3_admin_secret_key }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
kept:
  description: The backups kept, newest first, each with C(id) and C(reasons) (V(last), V(hourly), V(daily),
    V(weekly), V(monthly), V(yearly), V(oldest daily) and the like, V(within), V(tag), V(min_keep), V(safety),
    V(empty_policy)); a backup kept only because a kept incremental backup needs it has one reason, which starts
    with C(base of) (the full backup of its chain) or C(needed by) and names the newest kept backup that needs it.
  returned: without O(vault)
  type: list
  elements: dict
  sample: [{"id": "app-20261122T021500Z", "reasons": ["daily", "weekly"]}]
removed:
  description: Ids of the backups removed (in check mode, that would be removed), newest first.
  returned: without O(vault)
  type: list
  elements: str
cleaned:
  description: Leftovers of interrupted runs removed (in check mode, that would be removed), each with C(job),
    C(kind) (V(orphan), V(no_metadata), V(temp_file)), C(id), C(paths) and C(age_s).
  returned: without O(vault)
  type: list
  elements: dict
jobs:
  description: C(kept), C(removed) and C(cleaned) of each job, by job name.
  returned: without O(vault)
  type: dict
hosts:
  description: By host, then by job, the ids of the copies C(kept), C(removed) (in check mode, that would be
    removed), C(locked) (that the rules drop but whose lock still holds; the copies of its chain it needs stay in
    C(kept)), C(extended) (whose lock was extended) and
    the stems of unfinished uploads C(swept).
  returned: with O(vault)
  type: dict
  sample: {"web1": {"app": {"kept": ["app-20261122T021500Z"], "removed": ["app-20261121T021500Z"], "locked": [],
    "swept": ["app-20261120T021500Z~2"], "extended": []}}}
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._errors import UsageError
from ..module_utils._option_groups import RETENTION, VAULT, OptionGroup, run_module
from ..module_utils._prune import prune
from ..module_utils._vault.maintain import DEFAULT_SWEEP_AFTER, maintain

OPTIONS = OptionGroup(dict(
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    job=dict(type="str"),
    lock_timeout=dict(type="float", default=0),
    all_hosts=dict(type="bool", default=False),
    sweep_after=dict(type="str", default=DEFAULT_SWEEP_AFTER),
)) + RETENTION + VAULT


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        vault, all_hosts, sweep_after = arguments.pop("vault"), arguments.pop("all_hosts"), arguments.pop("sweep_after")
        if vault is not None:
            result = maintain(vault, arguments["policy"], hosts=None if all_hosts else [vault.host],
                              jobs=[arguments["job"]] if arguments["job"] else None, sweep_after=sweep_after,
                              check_mode=module.check_mode)
        elif all_hosts:
            raise UsageError("all_hosts prunes the copies on a vault: give the vault")
        else:
            result = prune(check_mode=module.check_mode, **arguments)
        diff = result.pop("diff")
        if module._diff:
            result["diff"] = diff
        return result

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
