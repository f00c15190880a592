# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention of incremental chains: what a kept backup needs is kept, with the reason; the rules stay restic's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError
from ansible_collections.lifeboat.backup.plugins.module_utils._retention import (
    Candidate, Policy, apply_policy, broken_chains)

START = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)


def chain(name, first_day, length, states=None, missing=()):
    """One chain of daily backups: level 0 on first_day, each next day one level up."""
    ids = ["%s-L%d" % (name, level) for level in range(length)]
    return [Candidate(id=ids[level], time=START + timedelta(days=first_day + level),
                      state=(states or {}).get(level, "verified"), needs=tuple(ids[:level]))
            for level in range(length) if level not in missing]


def reasons(decision):
    return {entry["id"]: entry["reasons"] for entry in decision.kept}


def test_keep_last_1_on_a_chain_of_5_keeps_all_5_saying_why():
    decision = apply_policy(chain("a", 0, 5), Policy(last=1))
    assert reasons(decision) == {
        "a-L4": ["last"],
        "a-L3": ["needed by a-L4 (level 4)"], "a-L2": ["needed by a-L4 (level 4)"],
        "a-L1": ["needed by a-L4 (level 4)"], "a-L0": ["base of a-L4"]}
    assert decision.removed == []


def test_an_older_chain_nothing_kept_needs_goes_whole_newest_first():
    backups = chain("old", 0, 4) + chain("new", 4, 3)
    decision = apply_policy(backups, Policy(last=2))
    assert reasons(decision) == {"new-L2": ["last"], "new-L1": ["last"], "new-L0": ["base of new-L2"]}
    # newest first: a prune interrupted half way never leaves a backup without the ones it needs
    assert decision.removed == ["old-L3", "old-L2", "old-L1", "old-L0"]


def test_a_reason_names_the_newest_kept_backup_that_needs_it_and_rules_keep_their_own_reasons():
    backups = chain("a", 0, 6)
    decision = apply_policy(backups, Policy(last=1, tags=["pre-deploy"]))
    assert reasons(decision)["a-L0"] == ["base of a-L5"]
    tagged = [Candidate(id=item.id, time=item.time, needs=item.needs, state=item.state,
                        tags=("pre-deploy",) if item.id == "a-L0" else ()) for item in backups]
    assert reasons(apply_policy(tagged, Policy(last=1, tags=["pre-deploy"])))["a-L0"] == ["tag"]


def test_the_rules_decide_as_without_chains_before_the_chains_are_kept():
    with_chains = chain("a", 0, 10)
    plain = [Candidate(id=item.id, time=item.time, state=item.state) for item in with_chains]
    policy = Policy(daily=3, weekly=2)
    rules_only = reasons(apply_policy(plain, policy))
    chained = reasons(apply_policy(with_chains, policy))
    assert {backup_id: why for backup_id, why in chained.items() if backup_id in rules_only} == rules_only
    assert set(chained) - set(rules_only) == {"a-L%d" % level for level in range(7)} - set(rules_only)


def test_a_failed_member_is_kept_and_the_backups_after_it_count_as_failed():
    # L2 failed its verification: L3 and L4 cannot be restored; the rules still see them, as failed
    backups = chain("a", 0, 5, states={2: "failed"})
    decision = apply_policy(backups, Policy(last=1))
    # min_keep keeps the newest restorable backup, L1, as well: L4 and L3 are not good ones
    assert reasons(decision) == {
        "a-L4": ["last"], "a-L3": ["needed by a-L4 (level 4)"], "a-L2": ["needed by a-L4 (level 4)"],
        "a-L1": ["min_keep"], "a-L0": ["base of a-L4"]}
    only_min_keep = apply_policy(backups, Policy(tags=["absent"], min_keep=1))
    assert reasons(only_min_keep) == {"a-L1": ["min_keep"], "a-L0": ["base of a-L1"]}
    assert only_min_keep.removed == ["a-L4", "a-L3", "a-L2"]


def test_a_period_keeps_its_restorable_backup_rather_than_a_broken_one():
    backups = chain("a", 0, 3, states={1: "failed"})
    # a second full backup on L2's day, made after it: the day's restorable backup
    backups.append(Candidate(id="b-L0", time=backups[-1].time + timedelta(hours=1), state="unverified"))
    backups[-2] = Candidate(id="a-L2", time=backups[-2].time + timedelta(hours=2), state="verified",
                            needs=backups[-2].needs)
    decision = apply_policy(backups, Policy(daily=1))
    assert reasons(decision) == {"b-L0": ["daily"]}


def test_a_missing_member_breaks_the_chain_after_it():
    backups = chain("a", 0, 4, missing=(1,))
    assert broken_chains({item.id: item.needs for item in backups}, set()) == {
        "a-L2": ("a-L1", "missing"), "a-L3": ("a-L1", "missing")}
    decision = apply_policy(backups, Policy(last=1))
    assert reasons(decision) == {"a-L3": ["last"], "a-L2": ["needed by a-L3 (level 3)"], "a-L0": ["min_keep"]}


def test_broken_chains_names_the_first_member_that_cannot_be_used():
    needs = {"x0": (), "x1": ("x0",), "x2": ("x0", "x1"), "x3": ("x0", "x1", "x2")}
    assert broken_chains(needs, {"x1", "x2"}) == {"x2": ("x1", "failed"), "x3": ("x1", "failed")}
    assert broken_chains(needs, set()) == {}


def test_an_empty_policy_keeps_every_chain_member():
    decision = apply_policy(chain("a", 0, 3), Policy())
    assert decision.empty_policy and decision.removed == [] and len(decision.kept) == 3


def test_a_chain_that_is_not_a_list_of_ids_is_refused_by_name():
    bad = Candidate(id="a-L1", time=START, needs="a-L0")
    with pytest.raises(UsageError) as caught:
        apply_policy([bad], Policy(last=1))
    assert "backup a-L1 names its chain as 'a-L0', not a list of ids" in str(caught.value)
