# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention decisions: restic forget's rules, backup states and min_keep."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.lifeboat.backup.plugins.module_utils import _retention
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError
from ansible_collections.lifeboat.backup.plugins.module_utils._retention import (
    Candidate, Duration, Policy, apply_policy, parse_duration)

RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
STATE_PREFERENCE = ("verified", "unverified", "failed")


def backup(ident, when, state="verified", tags=()):
    return Candidate(id=ident, time=datetime.fromisoformat(when), tags=tuple(tags), state=state)


def kept_ids(decision):
    return [entry["id"] for entry in decision.kept]


def reasons_by_id(decision):
    return {entry["id"]: entry["reasons"] for entry in decision.kept}


def decide(backups, **policy):
    """Apply the policy to the backups given in a scrambled order: input order must not matter."""
    scrambled = list(backups)
    random.Random(len(scrambled)).shuffle(scrambled)
    return apply_policy(scrambled, Policy(**policy))


# ----------------------------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------------------------

PERIOD_OF = {
    "hourly": lambda moment: moment.strftime("%Y-%m-%d %H"),
    "daily": lambda moment: moment.strftime("%Y-%m-%d"),
    "weekly": lambda moment: moment.strftime("%G-W%V"),
    "monthly": lambda moment: moment.strftime("%Y-%m"),
    "yearly": lambda moment: moment.strftime("%Y"),
}


def go_add_date(moment, years, months, days):
    """Go's time.AddDate: shift the wall clock, let a day past the month's end roll over."""
    year, month = moment.year + years, moment.month + months
    while month < 1:
        month, year = month + 12, year - 1
    while month > 12:
        month, year = month - 12, year + 1
    return moment.replace(year=year, month=month, day=1) + timedelta(days=moment.day - 1 + days)


def newest_first(backups):
    return sorted(backups, key=lambda item: (item.time, item.id), reverse=True)


def consecutive_periods(ordered, rule):
    """Periods as restic sees them: a backup opens a new one when its key differs from the newer neighbour's."""
    periods = []
    for item in ordered:
        key = item.id if rule == "last" else PERIOD_OF[rule](item.time)
        if periods and periods[-1][0] == key:
            periods[-1][1].append(item)
        else:
            periods.append((key, [item]))
    return [members for _key, members in periods]


def best_of(members):
    for state in STATE_PREFERENCE:
        of_state = [item for item in members if item.state == state]
        if of_state:
            return of_state[0]
    raise AssertionError("a period cannot be empty")


def reference_reasons(backups, policy):
    """The rules of the module docstring written out plainly: {id: set of reasons} of kept backups."""
    ordered = newest_first(backups)
    reasons = {item.id: set() for item in ordered}
    within = parse_duration(policy.within) if policy.within else None
    if within is not None and within == Duration():
        within = None
    if not any(getattr(policy, rule) for rule in RULES) and within is None and not policy.tags:
        return {item.id: {"empty_policy"} for item in ordered}
    for item in ordered:
        if set(item.tags) & set(policy.tags):
            reasons[item.id].add("tag")
    if within is not None:
        cutoff = go_add_date(ordered[0].time, -within.years, -within.months, -within.days)
        cutoff -= timedelta(hours=within.hours)
        for item in ordered:
            if item.time > cutoff:
                reasons[item.id].add("within")
    for rule in RULES:
        count = getattr(policy, rule)
        periods = consecutive_periods(ordered, rule)
        taken = periods if count == -1 else periods[:count]
        keepers = [best_of(members) for members in taken]
        for keeper in keepers:
            reasons[keeper.id].add(rule)
        slots_left = count == -1 or count > len(periods)
        if count and slots_left and ordered[-1] not in keepers:
            reasons[ordered[-1].id].add("oldest " + rule)
    good = [item for item in ordered if item.state != "failed"]
    for item in good[:policy.min_keep]:
        if not reasons[item.id]:
            reasons[item.id].add("min_keep")
    return {ident: found for ident, found in reasons.items() if found}


def restic_loop_reasons(backups, policy):
    """restic's per-snapshot loop for the bucket rules: {id: set of reasons}, no states involved."""
    ordered = newest_first(backups)
    counts = {rule: getattr(policy, rule) for rule in RULES}
    previous = {rule: None for rule in RULES}
    reasons = {}
    for number, item in enumerate(ordered):
        is_oldest = number == len(ordered) - 1
        for rule in RULES:
            if counts[rule] == 0:
                continue
            value = number if rule == "last" else PERIOD_OF[rule](item.time)
            if value != previous[rule] or is_oldest:
                label = "oldest " + rule if value == previous[rule] else rule
                reasons.setdefault(item.id, set()).add(label)
                previous[rule] = value
                if counts[rule] > 0:
                    counts[rule] -= 1
    return reasons


# ----------------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------------

OFFSETS = st.integers(min_value=-14 * 4, max_value=14 * 4).map(lambda quarters: timedelta(minutes=15 * quarters))
DURATION_TEXT = st.lists(st.tuples(st.integers(0, 30), st.sampled_from("ymdh")), min_size=1, max_size=4,
                         unique_by=lambda part: part[1]).map(lambda parts: "".join("%d%s" % part for part in parts))
COUNTS = st.sampled_from([0, 0, 0, 1, 2, 3, 5, 8, -1])


@st.composite
def timelines(draw, states=st.sampled_from(STATE_PREFERENCE)):
    """Backups over several years, clustered several a day, each with its own UTC offset."""
    start = datetime(2019, 1, 1, tzinfo=timezone.utc)
    days = draw(st.lists(st.integers(0, 5 * 365), min_size=1, max_size=12))
    count = draw(st.integers(1, 40))
    backups = []
    for number in range(count):
        day = draw(st.sampled_from(days))
        moment = start + timedelta(days=day, seconds=draw(st.integers(0, 86399)))
        local = moment.astimezone(timezone(draw(OFFSETS)))
        tags = draw(st.sets(st.sampled_from(["release", "manual", "pre-upgrade"]), max_size=2))
        backups.append(Candidate(id="job-%03d" % number, time=local, tags=tuple(sorted(tags)), state=draw(states)))
    return backups


@st.composite
def policies(draw):
    counts = {rule: draw(COUNTS) for rule in RULES}
    return Policy(within=draw(st.none() | DURATION_TEXT),
                  tags=tuple(draw(st.sets(st.sampled_from(["release", "manual"]), max_size=1))),
                  min_keep=draw(st.integers(0, 3)), **counts)


def as_sets(decision):
    return {entry["id"]: set(entry["reasons"]) for entry in decision.kept}


@settings(max_examples=150, deadline=None)
@given(backups=timelines(), policy=policies(), seed=st.integers(0, 1000))
def test_decisions_match_the_plain_reference(backups, policy, seed):
    scrambled = list(backups)
    random.Random(seed).shuffle(scrambled)
    decision = apply_policy(scrambled, policy)
    assert as_sets(decision) == reference_reasons(backups, policy)
    ordered = [item.id for item in newest_first(backups)]
    assert sorted(kept_ids(decision) + decision.removed, key=ordered.index) == ordered
    assert kept_ids(decision) == [ident for ident in ordered if ident in set(kept_ids(decision))]
    assert decision.removed == [ident for ident in ordered if ident in set(decision.removed)]


@settings(max_examples=60, deadline=None)
@given(backups=timelines(), policy=policies())
def test_newest_good_backups_are_never_removed(backups, policy):
    decision = apply_policy(backups, policy)
    good = [item.id for item in newest_first(backups) if item.state != "failed"]
    assert not set(good[:policy.min_keep]) & set(decision.removed)


@settings(max_examples=150, deadline=None)
@given(backups=timelines(states=st.just("verified")), policy=policies())
def test_bucket_rules_match_restics_loop_when_states_agree(backups, policy):
    policy.within, policy.tags, policy.min_keep = None, (), 0
    if policy.is_empty():
        return
    assert as_sets(apply_policy(backups, policy)) == restic_loop_reasons(backups, policy)


# ----------------------------------------------------------------------------------------------
# What users get wrong
# ----------------------------------------------------------------------------------------------

THREE_A_DAY = [backup("d%d-%02d" % (day, hour), "2024-05-%02dT%02d:00:00+00:00" % (day, hour))
               for day in (1, 2, 3, 4) for hour in (2, 12, 22)]


def test_keep_daily_keeps_the_newest_backup_of_each_day():
    decision = decide(THREE_A_DAY, daily=3)
    assert reasons_by_id(decision) == {"d4-22": ["daily"], "d3-22": ["daily"], "d2-22": ["daily"]}
    assert decision.removed == ["d4-12", "d4-02", "d3-12", "d3-02", "d2-12", "d2-02", "d1-22", "d1-12", "d1-02"]


def test_oldest_backup_is_kept_when_slots_remain():
    decision = decide(THREE_A_DAY, daily=5)
    assert reasons_by_id(decision) == {"d4-22": ["daily"], "d3-22": ["daily"], "d2-22": ["daily"],
                                       "d1-22": ["daily"], "d1-02": ["oldest daily"]}


def test_oldest_backup_alone_in_its_period_needs_no_extra_reason():
    backups = [backup("mon", "2024-05-06T09:00:00+00:00"), backup("tue", "2024-05-07T09:00:00+00:00")]
    assert reasons_by_id(decide(backups, daily=5)) == {"tue": ["daily"], "mon": ["daily"]}


def test_unlimited_count_keeps_every_period_and_the_oldest():
    decision = decide(THREE_A_DAY, daily=-1)
    assert kept_ids(decision) == ["d4-22", "d3-22", "d2-22", "d1-22", "d1-02"]
    assert reasons_by_id(decision)["d1-02"] == ["oldest daily"]


def test_iso_week_spans_the_new_year():
    # 2020-12-31 (Thursday) and 2021-01-01 (Friday) are both in ISO week 2020-W53.
    backups = [backup("dec24", "2020-12-24T10:00:00+00:00"), backup("dec31", "2020-12-31T10:00:00+00:00"),
               backup("jan01", "2021-01-01T10:00:00+00:00"), backup("jan08", "2021-01-08T10:00:00+00:00")]
    assert kept_ids(decide(backups, weekly=2)) == ["jan08", "jan01"]
    assert reasons_by_id(decide(backups, yearly=2)) == {"jan08": ["yearly"], "dec31": ["yearly"]}


def test_keep_within_counts_from_the_newest_backup_not_from_now():
    backups = [backup("jan10", "2024-01-10T12:00:00+00:00"), backup("jan15", "2024-01-15T12:00:00+00:00"),
               backup("jun01", "2024-06-01T10:00:00+00:00"), backup("jun03", "2024-06-03T09:00:00+00:00"),
               backup("jun05", "2024-06-05T12:00:00+00:00")]
    assert reasons_by_id(decide(backups, within="3d")) == {"jun05": ["within"], "jun03": ["within"]}
    assert kept_ids(decide(backups, within="4m22d")) == ["jun05", "jun03", "jun01", "jan15"]
    # "within" means strictly newer: jan15 is exactly 4 months 21 days before jun05.
    assert kept_ids(decide(backups, within="4m21d")) == ["jun05", "jun03", "jun01"]


def test_keep_within_rolls_over_short_months_like_restic():
    # 2024-03-31 minus one month is "February 31", which Go turns into March 2.
    backups = [backup("mar01", "2024-03-01T12:00:00+00:00"), backup("mar02", "2024-03-02T12:00:00+00:00"),
               backup("mar02b", "2024-03-02T13:00:00+00:00"), backup("mar31", "2024-03-31T12:00:00+00:00")]
    assert kept_ids(decide(backups, within="1m")) == ["mar31", "mar02b"]


def test_backup_dated_in_the_future_does_not_define_the_newest_when_now_is_given():
    backups = [backup("jun01", "2024-06-01T12:00:00+00:00"), backup("jun03", "2024-06-03T12:00:00+00:00"),
               backup("clock-wrong", "2030-01-01T00:00:00+00:00")]
    now = datetime(2024, 6, 3, 18, tzinfo=timezone.utc)
    assert kept_ids(apply_policy(backups, Policy(within="1d"), now=now)) == ["clock-wrong", "jun03"]
    assert kept_ids(apply_policy(backups, Policy(within="1d", min_keep=0))) == ["clock-wrong"]


def test_dst_change_day_is_one_local_day():
    # Europe/Berlin switched from +01:00 to +02:00 at 02:00 local time on 2024-03-31.
    backups = [backup("sat-late", "2024-03-30T23:30:00+01:00"), backup("sun-before", "2024-03-31T01:30:00+01:00"),
               backup("sun-after", "2024-03-31T03:30:00+02:00"),
               backup("mon-early", "2024-04-01T00:30:00+02:00")]  # still Sunday in UTC
    decision = decide(backups, daily=2)
    assert kept_ids(decision) == ["mon-early", "sun-after"]
    assert decision.removed == ["sun-before", "sat-late"]
    assert kept_ids(decide(backups, hourly=3)) == ["mon-early", "sun-after", "sun-before"]


def test_daily_and_weekly_overlap_list_both_reasons():
    january = [backup("jan%02d" % day, "2024-01-%02dT21:00:00+00:00" % day) for day in range(1, 32)]
    reasons = reasons_by_id(decide(january, daily=7, weekly=4))
    assert reasons == {"jan31": ["daily", "weekly"], "jan30": ["daily"], "jan29": ["daily"],
                       "jan28": ["daily", "weekly"], "jan27": ["daily"], "jan26": ["daily"], "jan25": ["daily"],
                       "jan21": ["weekly"], "jan14": ["weekly"]}


def test_failed_backup_never_takes_a_slot_from_a_verified_one():
    backups = [backup("may02-20", "2024-05-02T20:00:00+00:00", "failed"),
               backup("may02-12", "2024-05-02T12:00:00+00:00", "verified"),
               backup("may02-08", "2024-05-02T08:00:00+00:00", "unverified"),
               backup("may01-20", "2024-05-01T20:00:00+00:00", "unverified"),
               backup("may01-10", "2024-05-01T10:00:00+00:00", "failed"),
               backup("apr30-23", "2024-04-30T23:00:00+00:00", "failed")]
    decision = decide(backups, daily=3)
    assert kept_ids(decision) == ["may02-12", "may01-20", "apr30-23"]
    assert decision.removed == ["may02-20", "may02-08", "may01-10"]


def test_verified_backup_is_preferred_over_a_newer_unverified_one():
    backups = [backup("evening", "2024-05-02T20:00:00+00:00", "unverified"),
               backup("noon", "2024-05-02T12:00:00+00:00", "verified")]
    assert kept_ids(decide(backups, daily=1, min_keep=0)) == ["noon"]
    # Unverified counts as good for min_keep, so the newest one stays as well.
    assert reasons_by_id(decide(backups, daily=1)) == {"evening": ["min_keep"], "noon": ["daily"]}


def test_keep_last_counts_every_backup_and_min_keep_saves_the_newest_good_one():
    backups = [backup("b3", "2024-05-03T00:00:00+00:00", "failed"),
               backup("b2", "2024-05-02T00:00:00+00:00", "failed"),
               backup("b1", "2024-05-01T00:00:00+00:00", "unverified"),
               backup("b0", "2024-04-30T00:00:00+00:00", "verified")]
    assert reasons_by_id(decide(backups, last=1)) == {"b3": ["last"], "b1": ["min_keep"]}
    expected = {"b3": ["last"], "b1": ["min_keep"], "b0": ["min_keep"]}
    assert reasons_by_id(decide(backups, last=1, min_keep=2)) == expected
    assert reasons_by_id(decide(backups, last=1, min_keep=0)) == {"b3": ["last"]}


def test_min_keep_protects_no_failed_backup():
    backups = [backup("b%d" % day, "2024-05-0%dT00:00:00+00:00" % day, "failed", tags=["manual"] * (day == 1))
               for day in (1, 2, 3)]
    tags_only = decide(backups, tags=("manual",), min_keep=3)
    assert reasons_by_id(tags_only) == {"b1": ["tag"]}
    assert tags_only.removed == ["b3", "b2"]
    assert reasons_by_id(decide(backups, daily=1, min_keep=3)) == {"b3": ["daily"]}


def test_tagged_backups_are_kept_without_taking_a_slot():
    backups = [backup("new", "2024-05-03T00:00:00+00:00"),
               backup("release", "2024-05-02T00:00:00+00:00", tags=["release"]),
               backup("old", "2024-05-01T00:00:00+00:00")]
    expected = {"new": ["last"], "release": ["tag", "last"]}
    assert reasons_by_id(decide(backups, last=2, tags=("release",))) == expected


def test_empty_policy_keeps_everything_and_says_so():
    decision = decide(THREE_A_DAY[:2], within="0d", min_keep=0)
    assert decision.empty_policy
    assert reasons_by_id(decision) == {"d1-12": ["empty_policy"], "d1-02": ["empty_policy"]}
    assert decision.removed == []
    assert not decide(THREE_A_DAY[:2], daily=1).empty_policy


def test_no_backups_decide_nothing():
    decision = apply_policy([], Policy(daily=3, within="2d"))
    assert (decision.kept, decision.removed) == ([], [])


@pytest.mark.parametrize("policy, message", [
    (Policy(daily=-2), "keep daily must be a whole number"),
    (Policy(weekly=True), "keep weekly must be a whole number"),
    (Policy(min_keep=-1), "min_keep"),
    (Policy(within="3w"), "weeks are not a unit"),
    (Policy(tags="release"), "list of strings"),
])
def test_policies_that_make_no_sense_are_refused(policy, message):
    with pytest.raises(UsageError, match=message):
        apply_policy(THREE_A_DAY, policy)


@pytest.mark.parametrize("backups, message", [
    ([Candidate("naive", datetime(2024, 5, 1))], "no time with a UTC offset"),
    ([backup("odd", "2024-05-01T00:00:00+00:00", state="broken")], "has state 'broken'"),
    ([backup("twice", "2024-05-01T00:00:00+00:00"), backup("twice", "2024-05-02T00:00:00+00:00")], "listed twice"),
])
def test_backups_that_cannot_be_placed_are_refused(backups, message):
    with pytest.raises(UsageError, match=message):
        apply_policy(backups, Policy(daily=1))


# ----------------------------------------------------------------------------------------------
# Durations
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2d12h", Duration(days=2, hours=12)),
    ("1y6m", Duration(years=1, months=6)),
    ("90m", Duration(months=90)),  # m is months, as in restic; there are no minutes
    ("12h3y", Duration(years=3, hours=12)),
    (" 7d\n", Duration(days=7)),
    ("0d", Duration()),
])
def test_parse_duration_follows_restics_grammar(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text, message", [
    ("3w", "unknown unit 'w'.*7d per week"),
    ("90s", "unknown unit 's'"),
    ("2D", "unknown unit 'D'"),
    ("", "empty duration"),
    ("   ", "empty duration"),
    ("5", "number 5 has no unit"),
    ("d", "expected a number at 'd'"),
    ("1d 2h", "expected a number at ' 2h'"),
    ("1.5d", "unknown unit '.'"),
    ("-1d", "negative"),
    ("1d2d", "gives days twice"),
    (None, "must be a string"),
])
def test_parse_duration_refuses_what_restic_would_not_mean(text, message):
    with pytest.raises(UsageError, match=message):
        parse_duration(text)


def test_duration_prints_in_restics_form():
    assert str(parse_duration("12h2d6m1y")) == "1y6m2d12h"
    assert parse_duration("0h").is_zero()


@pytest.mark.parametrize("moment, text, expected", [
    ("2024-03-31T12:00:00+00:00", "1m", "2024-03-02T12:00:00+00:00"),
    ("2024-02-29T08:00:00+00:00", "1y", "2023-03-01T08:00:00+00:00"),
    ("2024-01-15T00:30:00+05:30", "1m1d1h", "2023-12-13T23:30:00+05:30"),
    ("2024-03-31T03:30:00+02:00", "2h", "2024-03-31T01:30:00+02:00"),
])
def test_duration_before_moves_the_calendar_like_go_add_date(moment, text, expected):
    assert parse_duration(text).before(datetime.fromisoformat(moment)) == datetime.fromisoformat(expected)


def test_duration_reaching_before_year_one_keeps_everything():
    assert parse_duration("3000y").before(datetime(2024, 1, 1, tzinfo=timezone.utc)) is None
    backups = [backup("new", "2024-05-02T00:00:00+00:00"), backup("ancient", "0005-01-01T00:00:00+00:00")]
    assert kept_ids(decide(backups, within="3000y")) == ["new", "ancient"]


def test_policy_is_empty_ignores_min_keep():
    assert Policy(min_keep=5).is_empty()
    assert not Policy(tags=("release",)).is_empty()
    assert not Policy(within="1h").is_empty()
    assert not Policy(yearly=-1).is_empty()
    assert _retention.BUCKET_RULES == RULES
