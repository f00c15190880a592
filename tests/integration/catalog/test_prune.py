# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune on real backups: restic's retention on timelines, check mode, leftovers, kills and the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from testlib import COLLECTIONS, KEY, backup, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _health, _option_groups, _prune, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import LockedError, UsageError

HOUR = 3600


def make_backups(tmp_path, count, job="app"):
    """count real encrypted backups of a small tree; returns their ids, oldest first."""
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    ids = []
    for number in range(count):
        (source / "data.txt").write_text("version %d\n" % number)
        ids.append(backup(source, tmp_path / "backups", job, compression="gzip")["id"])
    return ids


def rewrite(backup_dir, backup_id, **changes):
    """Change a backup's metadata in place, as a verify or the passing of time would."""
    metadata = _catalog.find_backup(str(backup_dir), backup_id)
    metadata.update(changes)
    _catalog.write_metadata(metadata.pop("_metadata_path"), metadata)


def timeline(tmp_path, times, states=None, tags=None, job="app"):
    """Real backups whose metadata says they were made at the given local times; returns {time: id}.

    Backups are made in the order of their times, so ids sort like times, as in a real catalog.
    """
    ordered = sorted(times, key=datetime.fromisoformat)
    by_time = dict(zip(ordered, make_backups(tmp_path, len(ordered), job=job)))
    for when, backup_id in by_time.items():
        moment = datetime.fromisoformat(when)
        rewrite(tmp_path / "backups", backup_id, local_time=moment.isoformat(), created_at=_catalog.iso_utc(moment),
                verification={"state": (states or {}).get(when, "verified")}, tags=(tags or {}).get(when, []))
    return by_time


def every(start, count, step_hours, offset="+00:00"):
    first = datetime.fromisoformat(start + offset)
    return [(first + timedelta(hours=step_hours * number)).isoformat() for number in range(count)]


def utc(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc)


# Each case: times (local, with offset), states and tags by time, the policy, now, and what is kept (by time,
# with the reasons) - worked out by hand from restic's rules, not by the engine.
CASES = {
    "daily 7 + weekly 4": dict(
        times=every("2024-01-01T01:00:00", 80, 12), policy=dict(keep_daily=7, keep_weekly=4),
        now="2024-02-10T00:00:00+00:00",
        kept={"2024-02-09T13:00:00+00:00": ["daily", "weekly"], "2024-02-08T13:00:00+00:00": ["daily"],
              "2024-02-07T13:00:00+00:00": ["daily"], "2024-02-06T13:00:00+00:00": ["daily"],
              "2024-02-05T13:00:00+00:00": ["daily"], "2024-02-04T13:00:00+00:00": ["daily", "weekly"],
              "2024-02-03T13:00:00+00:00": ["daily"], "2024-01-28T13:00:00+00:00": ["weekly"],
              "2024-01-21T13:00:00+00:00": ["weekly"]}),
    "days follow the local offset": dict(
        times=["2024-03-01T00:30:00-05:00", "2024-03-01T23:30:00-05:00", "2024-03-02T00:30:00-05:00"],
        policy=dict(keep_daily=2), now="2024-03-03T00:00:00+00:00",
        # In UTC the last two share March 2 and the first would be kept instead.
        kept={"2024-03-02T00:30:00-05:00": ["daily"], "2024-03-01T23:30:00-05:00": ["daily"]}),
    "within is relative to the newest backup": dict(
        times=every("2024-01-01T00:00:00", 20, 12), policy=dict(keep_within="2d12h"),
        now="2024-06-01T00:00:00+00:00",
        # newest 2024-01-10T12:00 minus 2d12h = 2024-01-08T00:00, which is not strictly newer: removed
        kept={"2024-01-10T12:00:00+00:00": ["within"], "2024-01-10T00:00:00+00:00": ["within"],
              "2024-01-09T12:00:00+00:00": ["within"], "2024-01-09T00:00:00+00:00": ["within"],
              "2024-01-08T12:00:00+00:00": ["within"]}),
    "tags": dict(
        times=every("2024-01-01T12:00:00", 6, 24), policy=dict(keep_last=1, keep_tags=["pre-deploy"]),
        tags={"2024-01-02T12:00:00+00:00": ["pre-deploy", "v41"], "2024-01-04T12:00:00+00:00": ["manual"]},
        now="2024-01-07T00:00:00+00:00",
        kept={"2024-01-06T12:00:00+00:00": ["last"], "2024-01-02T12:00:00+00:00": ["tag"]}),
    "min_keep keeps the newest good ones": dict(
        times=every("2024-01-01T12:00:00", 5, 24), policy=dict(keep_tags=["absent"], min_keep=2),
        states={"2024-01-05T12:00:00+00:00": "failed"}, now="2024-01-06T00:00:00+00:00",
        kept={"2024-01-04T12:00:00+00:00": ["min_keep"], "2024-01-03T12:00:00+00:00": ["min_keep"]}),
    "min_keep 0 lets a policy remove everything": dict(
        times=every("2024-01-01T12:00:00", 3, 24), policy=dict(keep_tags=["absent"], min_keep=0),
        now="2024-01-06T00:00:00+00:00", kept={}),
    "failed backups never take a period from a good one": dict(
        times=every("2024-01-01T08:00:00", 6, 12), policy=dict(keep_daily=3),
        states={"2024-01-03T20:00:00+00:00": "failed", "2024-01-02T20:00:00+00:00": "unverified",
                "2024-01-01T20:00:00+00:00": "failed", "2024-01-01T08:00:00+00:00": "failed"},
        now="2024-01-04T00:00:00+00:00",
        kept={"2024-01-03T08:00:00+00:00": ["daily"], "2024-01-02T08:00:00+00:00": ["daily"],
              "2024-01-01T20:00:00+00:00": ["daily"]}),
    "an empty policy keeps everything": dict(
        times=every("2024-01-01T12:00:00", 3, 24), policy={}, now="2024-01-06T00:00:00+00:00",
        kept={"2024-01-03T12:00:00+00:00": ["empty_policy"], "2024-01-02T12:00:00+00:00": ["empty_policy"],
              "2024-01-01T12:00:00+00:00": ["empty_policy"]}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_retention_on_real_backups(tmp_path, name):
    case = CASES[name]
    by_time = timeline(tmp_path, case["times"], case.get("states"), case.get("tags"))
    time_of = {backup_id: when for when, backup_id in by_time.items()}
    backup_dir = str(tmp_path / "backups")
    result = _prune.prune(backup_dir, _option_groups.build_policy(**case["policy"]),
                          now=datetime.fromisoformat(case["now"]))
    newest_first = sorted(case["times"], key=utc, reverse=True)
    assert [(time_of[entry["id"]], entry["reasons"]) for entry in result["kept"]] == \
        [(when, case["kept"][when]) for when in newest_first if when in case["kept"]]
    assert [time_of[backup_id] for backup_id in result["removed"]] == \
        [when for when in newest_first if when not in case["kept"]]
    assert result["changed"] is bool(result["removed"])
    assert result["jobs"]["app"]["kept"] == result["kept"] and result["jobs"]["app"]["removed"] == result["removed"]
    assert sorted(meta["id"] for meta in _catalog.list_metadata(backup_dir)) == \
        sorted(by_time[when] for when in case["kept"])
    assert sorted(os.listdir(os.path.join(backup_dir, "app"))) == sorted(
        name for when in case["kept"] for name in (by_time[when] + ".json", by_time[when] + ".sha256",
                                                   by_time[when] + ".tar.gz.age"))
    assert ("no retention rule is set" in result["msg"]) is (not case["policy"])


def test_check_mode_plans_and_deletes_nothing(tmp_path):
    by_time = timeline(tmp_path, every("2024-01-01T12:00:00", 6, 24))
    backup_dir = str(tmp_path / "backups")
    (tmp_path / "backups" / "app" / "app-20230101T000000Z.sha256").write_text("orphan\n")
    before = tree_digest(str(tmp_path))
    policy = _option_groups.build_policy(keep_last=2)
    plan = _prune.prune(backup_dir, policy, check_mode=True)
    assert tree_digest(str(tmp_path)) == before
    assert plan["changed"] is True and "would remove 4" in plan["msg"]
    assert [entry["paths"] for entry in plan["cleaned"]] == [[backup_dir + "/app/app-20230101T000000Z.sha256"]]
    ids = [by_time[when] for when in sorted(by_time, reverse=True)]
    assert plan["diff"]["before"] == "".join(backup_id + "\n" for backup_id in ids)
    assert plan["diff"]["after"] == "".join(backup_id + "\n" for backup_id in ids[:2])
    done = _prune.prune(backup_dir, policy)
    assert (done["kept"], done["removed"], done["cleaned"]) == (plan["kept"], plan["removed"], plan["cleaned"])
    again = _prune.prune(backup_dir, policy)
    assert again["changed"] is False and again["removed"] == [] and again["cleaned"] == []
    assert _prune.prune(backup_dir, policy, check_mode=True)["changed"] is False


def test_each_job_is_judged_on_its_own(tmp_path):
    apps = timeline(tmp_path, every("2024-01-01T12:00:00", 3, 24), job="app")
    dbs = timeline(tmp_path, every("2024-01-05T12:00:00", 3, 1), job="db")
    backup_dir = str(tmp_path / "backups")
    only_db = _prune.prune(backup_dir, _option_groups.build_policy(keep_last=1), job="db", check_mode=True)
    assert list(only_db["jobs"]) == ["db"] and only_db["removed"] == [dbs["2024-01-05T13:00:00+00:00"],
                                                                      dbs["2024-01-05T12:00:00+00:00"]]
    result = _prune.prune(backup_dir, _option_groups.build_policy(keep_last=1))
    assert [entry["id"] for entry in result["kept"]] == [dbs["2024-01-05T14:00:00+00:00"],
                                                         apps["2024-01-03T12:00:00+00:00"]]
    assert result["removed"] == [dbs["2024-01-05T13:00:00+00:00"], dbs["2024-01-05T12:00:00+00:00"],
                                 apps["2024-01-02T12:00:00+00:00"], apps["2024-01-01T12:00:00+00:00"]]


def test_invalid_policies_are_refused_before_anything_happens(tmp_path):
    for options, message in (({"keep_daily": -2}, "keep daily"), ({"keep_within": "2w"}, "weeks are not a unit"),
                             ({"min_keep": -1}, "min_keep")):
        with pytest.raises(UsageError, match=message):
            _option_groups.build_policy(**options)
    with pytest.raises(UsageError, match="not a valid name"):
        _prune.prune(str(tmp_path), _option_groups.build_policy(keep_last=1), job="../etc")


def _age_file(path, seconds):
    os.utime(path, (os.stat(path).st_atime, os.path.getmtime(path) - seconds))


def test_leftovers_are_cleaned_and_nothing_else_is_touched(tmp_path):
    (kept,) = make_backups(tmp_path, 1)
    backup_dir = tmp_path / "backups"
    job_dir = backup_dir / "app"
    victim = tmp_path / "victim.txt"
    victim.write_text("not a backup\n")
    files = {
        "orphan": job_dir / "app-20230101T000000Z.sha256",
        "old_artifact": job_dir / "app-20230102T000000Z.tar.gz.age",
        "young_artifact": job_dir / "app-20230103T000000Z.tar.gz.age",
        "old_temp": job_dir / (".%s.json.tmp-ab12cd34" % kept),
        "young_temp": job_dir / ".app-20230104T000000Z.tar.gz.age.tmp-ab12cd34",
        "readme": job_dir / "README",
        "other_job_name": job_dir / "db-20230101T000000Z.sha256",
        "outside_job": backup_dir / "app-20230101T000000Z.sha256",
    }
    for path in files.values():
        path.write_text("x\n")
        _age_file(str(path), 2 * HOUR)
    for young in ("young_artifact", "young_temp"):
        os.utime(str(files[young]))
    bad = make_backups(tmp_path, 1)[0]
    rewrite(backup_dir, bad, artifact="../../victim.txt")
    result = _prune.prune(str(backup_dir), _option_groups.build_policy(keep_last=1))
    assert result["removed"] == [] and [entry["id"] for entry in result["kept"]] == [kept]
    assert sorted((entry["kind"], tuple(entry["paths"])) for entry in result["cleaned"]) == sorted([
        ("no_metadata", (str(files["old_artifact"]),)), ("orphan", (str(files["orphan"]),)),
        ("temp_file", (str(files["old_temp"]),))])
    for name in ("orphan", "old_artifact", "old_temp"):
        assert not files[name].exists()
    for name in ("young_artifact", "young_temp", "readme", "other_job_name", "outside_job"):
        assert files[name].exists(), name
    assert victim.read_text() == "not a backup\n"
    assert {name for name in os.listdir(str(job_dir)) if name.split(".")[0] == bad} == \
        {bad + ".json", bad + ".sha256", bad + ".tar.gz.age"}
    info = _health.catalog_info(str(backup_dir), disk_usage_threshold=100)
    assert sorted(leftover["kind"] for leftover in info["leftovers"]) == ["bad_metadata", "no_metadata", "temp_file"]


def _subprocess_script(body):
    return textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from ansible_collections.lifeboat.backup.plugins.module_utils import _archive, _option_groups, _prune
    """) % COLLECTIONS + textwrap.dedent(body)


def test_a_prune_killed_between_artifact_and_sidecars_leaves_an_orphan_that_the_next_prune_removes(tmp_path):
    ids = make_backups(tmp_path, 4)
    backup_dir = str(tmp_path / "backups")
    # The first directory fsync follows the unlink of the first artifact: stop there, as a power cut would.
    script = _subprocess_script("""
        original = _prune.fsync_dir
        def stall(path):
            original(path)
            print("artifact removed", flush=True)
            time.sleep(600)
        _prune.fsync_dir = stall
        _prune.prune(%r, _option_groups.build_policy(keep_last=3))
    """ % backup_dir)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "artifact removed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    oldest = ids[0]
    assert sorted(name for name in os.listdir(os.path.join(backup_dir, "app")) if name.split(".")[0] == oldest) == \
        [oldest + ".json", oldest + ".sha256"]
    info = _health.catalog_info(backup_dir, disk_usage_threshold=100)
    assert [meta["id"] for meta in info["backups"]] == ids[:0:-1]
    (orphan,) = [problem for problem in info["health"]["problems"] if problem["code"] == "orphan"]
    assert orphan["level"] == "warning" and oldest + ".json" in orphan["message"]
    assert "the next prune removes" in orphan["message"]
    result = _prune.prune(backup_dir, _option_groups.build_policy(keep_last=3))
    assert result["removed"] == [] and result["changed"] is True
    assert [(entry["kind"], entry["id"]) for entry in result["cleaned"]] == [("orphan", oldest)]
    assert not any(name.split(".")[0] == oldest for name in os.listdir(os.path.join(backup_dir, "app")))
    for backup_id in ids[1:]:
        verified = _verify.verify(backup_dir, backup_id, level="full", key=KEY)
        assert verified["verified"] is True
    assert _health.catalog_info(backup_dir, disk_usage_threshold=100)["leftovers"] == []


def test_a_running_archive_holding_the_lock_makes_prune_fail_and_delete_nothing(tmp_path):
    make_backups(tmp_path, 3)
    backup_dir = str(tmp_path / "backups")
    (tmp_path / "src2").mkdir()
    (tmp_path / "src2" / "file.txt").write_text("new\n")
    # A real archive run, held at the moment it would write: it has taken the lock, as every writer does.
    script = _subprocess_script("""
        def hold(*args):
            print("locked", flush=True)
            time.sleep(600)
        _archive._write_backup = hold
        _archive.run_archive(_archive.ArchiveRequest([%r], "app", backup_dir=%r, compression="gzip"))
    """ % (str(tmp_path / "src2"), backup_dir))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        before = tree_digest(backup_dir)
        with pytest.raises(LockedError) as error:
            _prune.prune(backup_dir, _option_groups.build_policy(keep_last=1), lock_timeout=0.5)
        assert "is locked by another run (pid %d" % process.pid in str(error.value)
        assert "lock_timeout" in str(error.value)
        assert tree_digest(backup_dir) == before
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(_prune.prune(backup_dir, _option_groups.build_policy(keep_last=1))["removed"]) == 2


def test_prune_of_a_missing_backup_dir_creates_nothing(tmp_path):
    result = _prune.prune(str(tmp_path / "missing"), _option_groups.build_policy(keep_last=1))
    assert result["changed"] is False and result["kept"] == [] and not (tmp_path / "missing").exists()
    assert json.dumps(result)


def test_each_series_of_a_job_is_judged_on_its_own(tmp_path):
    """A nightly job dumps a database and archives files: keep_daily keeps both of each day, not one of them."""
    by_time = timeline(tmp_path, every("2024-03-01T02:00:00", 8, 24))
    days = sorted(by_time)
    dumps = set()
    for when in days[::2]:  # every other backup becomes the job's database dump of that night
        rewrite(tmp_path / "backups", by_time[when], kind="database", engine="sqlite", database="/srv/app/app.db")
        dumps.add(by_time[when])
    result = _prune.prune(str(tmp_path / "backups"), _option_groups.build_policy(keep_daily=2), job="app",
                          now=utc("2024-03-09T00:00:00+00:00"))
    kept = {entry["id"] for entry in result["kept"]}
    assert kept == {by_time[days[-1]], by_time[days[-2]], by_time[days[-3]], by_time[days[-4]]}
    assert len(kept & dumps) == 2 and len(kept - dumps) == 2
    assert len(result["removed"]) == 4
