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
  - Removes under the lock of O(backup_dir) the artifact first, then its C(.sha256) and C(.json); a kill at any
    moment leaves a complete backup or sidecars without artifact, which the next prune removes.
  - Also removes leftovers of interrupted runs and reports them in RV(cleaned) - sidecars without their artifact at
    once, artifacts without metadata and temporary files once they are an hour old. Metadata that cannot be read is
    left alone (M(lifeboat.backup.catalog_info) reports it).
  - Only regular files in O(backup_dir)/<job>/ whose names look like catalog files are ever removed.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.retention
attributes:
  check_mode:
    support: full
    details: Reports what would be kept, removed and cleaned, without the lock and without removing anything.
  diff_mode:
    support: full
    details: Before, the ids of every backup; after, the ids kept.
options:
  backup_dir:
    description:
      - The catalog directory on the managed host.
    type: path
    default: /var/backups/lifeboat
  job:
    description:
      - Prune only this job. By default every job of O(backup_dir), each judged on its own.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for another run holding the lock of O(backup_dir) before failing.
    type: float
    default: 0
requirements:
  - python >= 3.9 on the managed host
seealso:
  - module: lifeboat.backup.catalog_info
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
"""

RETURN = r"""
kept:
  description: The backups kept, newest first, each with C(id) and C(reasons) (V(last), V(hourly), V(daily),
    V(weekly), V(monthly), V(yearly), V(oldest daily) and the like, V(within), V(tag), V(min_keep), V(safety),
    V(empty_policy)).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "app-20261122T021500Z", "reasons": ["daily", "weekly"]}]
removed:
  description: Ids of the backups removed (in check mode, that would be removed), newest first.
  returned: always
  type: list
  elements: str
cleaned:
  description: Leftovers of interrupted runs removed (in check mode, that would be removed), each with C(job),
    C(kind) (V(orphan), V(no_metadata), V(temp_file)), C(id), C(paths) and C(age_s).
  returned: always
  type: list
  elements: dict
jobs:
  description: C(kept), C(removed) and C(cleaned) of each job, by job name.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._option_groups import RETENTION, OptionGroup, run_module
from ..module_utils._prune import prune

OPTIONS = OptionGroup(dict(
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    job=dict(type="str"),
    lock_timeout=dict(type="float", default=0),
)) + RETENTION


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        result = prune(check_mode=module.check_mode, **arguments)
        diff = result.pop("diff")
        if module._diff:
            result["diff"] = diff
        return result

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
