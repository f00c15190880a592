# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What prune keeps; twin of _option_groups.RETENTION.
    DOCUMENTATION = r"""
options:
  keep_last:
    description:
      - Keep the newest N backups. V(-1) keeps all.
    type: int
    default: 0
  keep_hourly:
    description:
      - Keep the newest backup of each of the last N hours that have one. V(-1) for every hour.
    type: int
    default: 0
  keep_daily:
    description:
      - Keep the newest backup of each of the last N days that have one. V(-1) for every day.
    type: int
    default: 0
  keep_weekly:
    description:
      - Keep the newest backup of each of the last N ISO weeks (Monday to Sunday) that have one. V(-1) for every week.
    type: int
    default: 0
  keep_monthly:
    description:
      - Keep the newest backup of each of the last N months that have one. V(-1) for every month.
    type: int
    default: 0
  keep_yearly:
    description:
      - Keep the newest backup of each of the last N years that have one. V(-1) for every year.
    type: int
    default: 0
  keep_within:
    description:
      - Keep every backup made within this duration before the job's newest backup (not before now, so a job that
        stopped running keeps its last backups). Units V(y), V(m) (months), V(d), V(h), for example V(2d12h) or
        V(1y6m).
    type: str
  keep_tags:
    description:
      - Keep every backup carrying any of these tags.
    type: list
    elements: str
    default: []
  min_keep:
    description:
      - Whatever the rules say, keep at least the newest N good (not failed) backups of each job.
    type: int
    default: 1
  keep_safety_within:
    description:
      - Whatever the rules say, keep every backup tagged C(safety) for this long after it was made, measured back
        from now. A restore takes such a backup of what it replaces, the way back from that restore; the rules
        alone would soon remove it, since it is never verified and the verified backup of the same day takes the
        day's slot. Units as O(keep_within); V(0d) turns it off.
    type: str
    default: 7d
"""
