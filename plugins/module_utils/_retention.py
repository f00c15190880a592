# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention policy: which backups of one job ``prune`` keeps.

The decisions are those of ``restic forget`` (restic 0.16 and later, which keeps the oldest backup
as below; its reason labels as of 0.18) for the same times and policy; the only departures are the
backup states, ``min_keep`` and ``safety_within`` described at the end, and stricter duration parsing.

Order
    Backups are sorted newest first by absolute time; equal times are ordered by id, the greater id
    first (ids sort by time, a suffix makes two in the same second unique).

Bucket rules (``last``, ``hourly``, ``daily``, ``weekly``, ``monthly``, ``yearly``)
    Each rule has a period key, computed from the backup's time in the UTC offset recorded with it:
    hourly = year-month-day-hour, daily = year-month-day, weekly = ISO year + ISO week (so
    2020-12-31 and 2021-01-01 share 2020-W53), monthly = year-month, yearly = year; for ``last``
    every backup is a period of its own. As in restic, a period is a run of backups that are
    neighbours in the sorted order and share the key: a backup starts a new period when its key
    differs from the key of the next newer backup. With one UTC offset per job that is simply the
    calendar period; if the recorded offset changes (host moved to another time zone) a calendar
    period can appear as two runs, and restic counts it twice, and so do we.
    Walking the periods newest first, each period takes one of the rule's slots until the count is
    used up (-1: unlimited). The rule keeps one backup per period taken, the *keeper* (see states).
    When every period was walked and slots remain, the oldest backup is kept as well, to keep the
    longest history: restic's "oldest daily snapshot", here reason ``oldest daily`` (``oldest
    hourly``, ...). ``last`` never needs it. Rules overlap: a backup lists every rule that keeps it.

``within``
    A duration in restic's grammar (see :func:`parse_duration`). Every backup strictly newer than
    the newest backup's time minus the duration is kept (reason ``within``): relative to the newest
    backup, not to now, so a job that stopped running does not lose its last backups. When the
    caller passes ``now``, backups dated in the future (a wrong clock) do not count as the newest,
    as in restic. A zero duration (``0d``) sets no rule, as in restic.

``tags``
    A backup carrying any of these tags is kept (reason ``tag``); it takes no rule's slot.

Empty policy
    restic removes nothing when no rule is given; we keep everything, each with reason
    ``empty_policy``, and set ``Decision.empty_policy``. ``min_keep`` is not a rule.

Backup states (our addition)
    Each backup is ``verified`` (its checksum was verified), ``unverified`` or ``failed``. The
    keeper of a period is its newest ``verified`` backup; if the period has none, its newest
    ``unverified`` one; if it has neither, its newest (failed) one. So a failed or unverified
    backup never takes a period's slot from a better one of the same period. Which periods exist
    and how many slots they take do not depend on states, so when all backups share one state the
    decisions are exactly restic's. ``last`` has one backup per period, so states do not change
    what it keeps, and neither do they change ``within``, ``tags`` or the oldest backup.

``min_keep`` (our addition, default 1)
    The newest ``min_keep`` *good* backups are kept, with reason ``min_keep`` when no rule kept
    them. Good means not failed (verified or unverified). Failed backups are never kept by this
    reason: when every backup is failed only the rules keep something.

``safety_within`` (our addition, default ``7d``)
    A backup tagged ``safety`` (what a restore took of what it replaced, the way back from that
    restore) is kept while it is younger than this duration, measured back from now, with reason
    ``safety``, whatever the other rules say. The rules alone would remove it soon: it is
    unverified, so a verified backup of the same period takes the period's slot. Like ``tags`` it
    takes no slot; like ``min_keep`` it is not a rule, so a policy with only it is an empty policy.
    A zero duration (``0d``) turns it off.

Chains (our addition)
    An incremental backup needs every backup before it in its chain (``Candidate.needs``, the full backup
    first) to be restored. A backup whose chain has a member that is missing or ``failed`` cannot be
    restored: the rules see it as ``failed`` (so it takes no period's slot from a restorable backup and is
    not ``min_keep``'s newest good one) but still see it. After every rule decided, each backup that a
    kept backup needs is kept too, if nothing else keeps it, with reason ``base of ID`` (the chain's full
    backup) or ``needed by ID (level N)`` (a backup between), ID being the newest kept backup that needs
    it and N its level: a kept backup never loses a backup it needs, a failed one included. Without chains
    every decision is as above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from itertools import groupby
from typing import List, Optional, Tuple

from ._errors import UsageError

UNLIMITED = -1
SAFETY_TAG = "safety"  # the tag of the backup a restore takes of what it replaces
STATES = ("verified", "unverified", "failed")
_PREFERENCE = {state: rank for rank, state in enumerate(STATES)}
_DURATION_UNITS = {"y": "years", "m": "months", "d": "days", "h": "hours"}
_DURATION_TOKEN = re.compile(r"(-?)([0-9]*)(.?)", re.DOTALL)

# The period key of each bucket rule, in restic's order (which is also the order of reasons).
_PERIOD_KEYS = (
    ("last", lambda backup: backup.id),
    ("hourly", lambda backup: (backup.time.year, backup.time.month, backup.time.day, backup.time.hour)),
    ("daily", lambda backup: (backup.time.year, backup.time.month, backup.time.day)),
    ("weekly", lambda backup: tuple(backup.time.isocalendar())[:2]),
    ("monthly", lambda backup: (backup.time.year, backup.time.month)),
    ("yearly", lambda backup: backup.time.year),
)
BUCKET_RULES = tuple(rule for rule, _key in _PERIOD_KEYS)


@dataclass(frozen=True)
class Duration:
    """A calendar duration as restic's ``--keep-within`` takes it."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def is_zero(self):
        """True for a duration that sets no rule, like restic's ``0d``."""
        return not (self.years or self.months or self.days or self.hours)

    def __str__(self):
        return "".join("%d%s" % (getattr(self, name), unit)
                       for unit, name in _DURATION_UNITS.items() if getattr(self, name))

    def before(self, moment):
        """Return ``moment`` minus this duration, or None when that is before year 1.

        Like Go's ``AddDate(-y, -m, -d)`` followed by ``Add(-h hours)``: years, months and days
        move the wall clock in the moment's own offset, overflowing days roll into the next month
        (March 31 minus one month is March 2 or 3), and hours are absolute.
        """
        year, month_index = divmod(moment.year * 12 + moment.month - 1 - self.years * 12 - self.months, 12)
        try:
            day = date(year, month_index + 1, 1) + timedelta(days=moment.day - 1 - self.days)
            wall_clock = datetime.combine(day, moment.timetz())
            return wall_clock.astimezone(timezone.utc) - timedelta(hours=self.hours)
        except (ValueError, OverflowError):
            return None


def parse_duration(text):
    """Parse restic's duration grammar: numbers with units y, m (months, not minutes), d, h.

    Examples: ``2d12h``, ``1y6m``, ``90d``. Every string accepted means what it means to restic;
    restic's silent cases are refused: negative numbers (restic refuses them for
    ``--keep-within`` too) and a unit given twice (restic keeps the last one).
    """
    if not isinstance(text, str):
        raise UsageError("a duration must be a string like 2d12h, not %r" % (text,))
    rest = text.strip()
    if not rest:
        raise UsageError("empty duration: give numbers with units y, m (months), d or h, e.g. 7d or 1y6m")
    values = {}
    while rest:
        sign, digits, unit = _DURATION_TOKEN.match(rest).groups()
        if sign:
            raise UsageError("duration %r is negative; retention durations must be positive" % text)
        if not digits:
            raise UsageError("duration %r: expected a number at %r" % (text, rest))
        if not unit:
            raise UsageError("duration %r: number %s has no unit; use y, m (months), d or h" % (text, digits))
        if unit not in _DURATION_UNITS:
            hint = " (weeks are not a unit: use 7d per week)" if unit in "wW" else ""
            raise UsageError("duration %r: unknown unit %r; use y (years), m (months), d (days) or h (hours)%s"
                             % (text, unit, hint))
        name = _DURATION_UNITS[unit]
        if name in values:
            raise UsageError("duration %r gives %s twice" % (text, name))
        values[name] = int(digits)
        rest = rest[len(sign) + len(digits) + 1:]
    return Duration(**values)


@dataclass
class Policy:
    """What to keep; counts are numbers of periods, 0 for none, -1 for all."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Optional[str] = None
    tags: Tuple[str, ...] = ()
    min_keep: int = 1
    safety_within: Optional[str] = "7d"

    def within_duration(self):
        """The ``within`` rule as a Duration, None when not set or zero."""
        return _optional_duration(self.within)

    def safety_duration(self):
        """How long safety backups are kept, None when not set or zero."""
        return _optional_duration(self.safety_within)

    def is_empty(self):
        """True when no rule is set (``min_keep`` is not a rule); such a policy keeps everything."""
        return (not any(getattr(self, rule) for rule in BUCKET_RULES)
                and self.within_duration() is None and not self.tags)

    def validate(self):
        """Raise UsageError for a count, ``min_keep``, ``within`` or tag list that makes no sense."""
        for rule in BUCKET_RULES:
            count = getattr(self, rule)
            if not _is_int(count) or count < UNLIMITED:
                raise UsageError("keep %s must be a whole number >= 0, or -1 for unlimited, not %r" % (rule, count))
        if not _is_int(self.min_keep) or self.min_keep < 0:
            raise UsageError("min_keep must be a whole number >= 0, not %r" % (self.min_keep,))
        if isinstance(self.tags, str) or not all(isinstance(tag, str) for tag in self.tags):
            raise UsageError("keep tags must be a list of strings, not %r" % (self.tags,))
        self.within_duration()
        self.safety_duration()


def _optional_duration(text):
    if text is None:
        return None
    duration = parse_duration(text)
    return None if duration.is_zero() else duration


@dataclass
class Candidate:
    """One backup of the job: its id, its time with the UTC offset recorded with it, tags, state."""

    id: str
    time: datetime
    tags: Tuple[str, ...] = ()
    state: str = "unverified"
    needs: Tuple[str, ...] = ()  # the ids before it in its chain, the full backup first


@dataclass
class Decision:
    """``kept``: [{"id": ..., "reasons": [...]}] and ``removed``: [id], both newest first."""

    kept: List[dict]
    removed: List[str]
    empty_policy: bool = False


def apply_policy(candidates, policy, now=None):
    """Decide which of one job's backups ``policy`` keeps (see the module docstring).

    ``candidates`` may come in any order. ``now`` (aware datetime, optional: the current time) keeps
    backups dated in the future from defining the newest backup for ``within``, and is what the age of a
    safety backup is measured from.
    """
    policy.validate()
    ordered = _newest_first(candidates)
    if policy.is_empty():
        return Decision(kept=[{"id": backup.id, "reasons": ["empty_policy"]} for backup in ordered],
                        removed=[], empty_policy=True)
    if not ordered:
        return Decision(kept=[], removed=[])
    broken = broken_chains({backup.id: backup.needs for backup in ordered},
                           {backup.id for backup in ordered if backup.state == "failed"})
    ordered = [replace(backup, state="failed") if backup.id in broken else backup for backup in ordered]
    reasons = {backup.id: [] for backup in ordered}
    _keep_tagged(ordered, set(policy.tags), reasons)
    _keep_within(ordered, policy.within_duration(), now, reasons)
    for rule, period_key in _PERIOD_KEYS:
        count = getattr(policy, rule)
        if count:
            _keep_periods(ordered, rule, period_key, count, reasons)
    _keep_safety(ordered, policy.safety_duration(), now, reasons)
    _keep_newest_good(ordered, policy.min_keep, reasons)
    _keep_chains(ordered, reasons)
    return Decision(kept=[{"id": backup.id, "reasons": reasons[backup.id]} for backup in ordered if reasons[backup.id]],
                    removed=[backup.id for backup in ordered if not reasons[backup.id]])


def broken_chains(needs, failed):
    """{id: (member, "missing" or "failed")} of the backups that cannot be restored: the first backup of its
    chain that is not among ``needs`` (id -> the ids it needs) or is in ``failed``."""
    broken = {}
    for backup_id, members in needs.items():
        for member in members:
            if member not in needs or member in failed:
                broken[backup_id] = (member, "missing" if member not in needs else "failed")
                break
    return broken


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _newest_first(candidates):
    seen = set()
    for backup in candidates:
        if backup.id in seen:
            raise UsageError("backup %s is listed twice" % backup.id)
        seen.add(backup.id)
        if not isinstance(backup.time, datetime) or backup.time.utcoffset() is None:
            raise UsageError("backup %s has no time with a UTC offset: %r" % (backup.id, backup.time))
        if isinstance(backup.needs, str) or not all(isinstance(member, str) for member in backup.needs):
            raise UsageError("backup %s names its chain as %r, not a list of ids" % (backup.id, backup.needs))
        if backup.state not in _PREFERENCE:
            raise UsageError("backup %s has state %r; expected one of %s"
                             % (backup.id, backup.state, ", ".join(STATES)))
    return sorted(candidates, key=lambda backup: (backup.time, backup.id), reverse=True)


def _keep_tagged(ordered, tags, reasons):
    for backup in ordered:
        if tags.intersection(backup.tags):
            reasons[backup.id].append("tag")


def _keep_within(ordered, duration, now, reasons):
    if duration is None:
        return
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise UsageError("now must be a datetime with a UTC offset, not %r" % (now,))
    newest = next((backup.time for backup in ordered if now is None or backup.time < now), None)
    # No backup before now: restic measures from the zero time, which keeps everything.
    cutoff = None if newest is None else duration.before(newest)
    for backup in ordered:
        if cutoff is None or backup.time > cutoff:
            reasons[backup.id].append("within")


def _keep_safety(ordered, duration, now, reasons):
    if duration is None:
        return
    cutoff = duration.before(now or datetime.now(timezone.utc))
    for backup in ordered:
        if SAFETY_TAG in backup.tags and (cutoff is None or backup.time > cutoff):
            reasons[backup.id].append("safety")


def _keep_periods(ordered, rule, period_key, count, reasons):
    slots = count
    kept_by_rule = set()
    for _key, period in groupby(ordered, key=period_key):
        if slots == 0:
            return
        keeper = _keeper(period)
        reasons[keeper.id].append(rule)
        kept_by_rule.add(keeper.id)
        if slots != UNLIMITED:
            slots -= 1
    # Every period was walked and slots remain: keep the oldest too, for the longest history.
    if slots != 0 and ordered[-1].id not in kept_by_rule:
        reasons[ordered[-1].id].append("oldest " + rule)


def _keeper(period):
    """The newest backup of the best state in a period (min keeps the first of equals)."""
    return min(period, key=lambda backup: _PREFERENCE[backup.state])


def _keep_newest_good(ordered, min_keep, reasons):
    good = [backup for backup in ordered if backup.state != "failed"]
    for backup in good[:min_keep]:
        if not reasons[backup.id]:
            reasons[backup.id].append("min_keep")


def _keep_chains(ordered, reasons):
    """Keep what each kept backup needs; newest first, so a reason names the newest kept backup that needs it."""
    for backup in [backup for backup in ordered if reasons[backup.id]]:
        for level, member in enumerate(backup.needs):
            if member in reasons and not reasons[member]:
                reasons[member].append("base of %s" % backup.id if level == 0
                                       else "needed by %s (level %d)" % (backup.id, len(backup.needs)))
