# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog as catalog_info sees it: listing, filters, statistics, health rules and leftovers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from testlib import mounted_tmpfs, tree_digest

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _health
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError

NOW = datetime(2026, 5, 10, 12, 0, 0, tzinfo=timezone.utc)
HOUR = 3600


def fake_backup(backup_dir, job="app", hours_ago=1.0, size=1000, state="unverified", tags=(), kind="files",
                deploy_id=None, ratio=2.0, offset_hours=0, problem=None):
    """Write the files of one backup straight into the catalog: artifact, .sha256, .json (last)."""
    created = NOW - timedelta(hours=hours_ago)
    backup_id = "%s-%s" % (job, created.strftime("%Y%m%dT%H%M%SZ"))
    directory = os.path.join(str(backup_dir), job)
    os.makedirs(directory, exist_ok=True)
    artifact = backup_id + ".tar.zst.age"
    data = b"x" * size
    with open(os.path.join(directory, artifact), "wb") as handle:
        handle.write(data)
    with open(os.path.join(directory, backup_id + ".sha256"), "w", encoding="utf-8") as handle:
        handle.write(_catalog.checksum_line(hashlib.sha256(data).hexdigest(), artifact))
    verification = {"state": state}
    if problem:
        verification.update(level="full", problem=problem)
    metadata = {"format": 1, "id": backup_id, "job": job, "kind": kind, "host": "web1",
                "created_at": _catalog.iso_utc(created),
                "local_time": created.astimezone(timezone(timedelta(hours=offset_hours))).isoformat(),
                "artifact": artifact, "sha256": hashlib.sha256(data).hexdigest(), "size": size,
                "input_size": int(size * ratio) if ratio else size, "ratio": ratio, "tags": list(tags),
                "deploy_id": deploy_id, "verification": verification}
    _catalog.write_metadata(os.path.join(directory, backup_id + ".json"), metadata)
    return backup_id


def info(backup_dir, **options):
    options.setdefault("disk_usage_threshold", 100.0)  # the test machine's disk is not what these tests are about
    return _health.catalog_info(str(backup_dir), now=NOW, **options)


def codes(result, job=None):
    return sorted(problem["code"] for problem in result["health"]["problems"]
                  if job is None or problem.get("job") == job)


def problem_of(result, code):
    found = [problem for problem in result["health"]["problems"] if problem["code"] == code]
    assert len(found) == 1, result["health"]["problems"]
    return found[0]


def aged(path, seconds):
    """Set a file's modification time to `seconds` before NOW."""
    os.utime(path, (NOW.timestamp() - seconds, NOW.timestamp() - seconds))
    return path


# ----------------------------------------------------------------------------------------------
# Listing and statistics
# ----------------------------------------------------------------------------------------------

def test_lists_newest_first_with_public_keys_only(tmp_path):
    old = fake_backup(tmp_path, hours_ago=30, state="verified")
    new = fake_backup(tmp_path, hours_ago=2, state="verified")
    other = fake_backup(tmp_path, job="db", hours_ago=10, kind="database", state="verified")
    result = info(tmp_path)
    assert [meta["id"] for meta in result["backups"]] == [new, other, old]
    assert all(not key.startswith("_") for meta in result["backups"] for key in meta)
    assert result["changed"] is False
    assert result["health"]["ok"] is True and result["health"]["level"] == "ok"
    assert "3 backup(s) listed of 3" in result["msg"] and "healthy" in result["msg"]


def test_stats_overall_and_per_job(tmp_path):
    first = fake_backup(tmp_path, hours_ago=50, size=100, ratio=2.0, state="verified")
    fake_backup(tmp_path, hours_ago=26, size=200, ratio=3.0, state="failed", problem="bad chunk")
    third = fake_backup(tmp_path, hours_ago=2, size=300, ratio=None)
    only_db = fake_backup(tmp_path, job="db", hours_ago=5, size=1000, ratio=4.0, state="verified")
    stats = info(tmp_path)["stats"]
    assert stats["jobs"]["app"] == {"count": 3, "total_size": 600, "average_ratio": 2.5, "verified": 1,
                                    "failed": 1, "unverified": 1, "oldest": _catalog.iso_utc(NOW - timedelta(hours=50)),
                                    "oldest_id": first, "newest": _catalog.iso_utc(NOW - timedelta(hours=2)),
                                    "newest_id": third}
    assert stats["jobs"]["db"]["count"] == 1 and stats["jobs"]["db"]["oldest_id"] == only_db
    overall = stats["overall"]
    assert (overall["count"], overall["total_size"], overall["average_ratio"]) == (4, 1600, 3.0)
    assert (overall["verified"], overall["failed"], overall["unverified"]) == (2, 1, 1)
    assert (overall["oldest_id"], overall["newest_id"]) == (first, third)


def test_stats_of_an_empty_listing(tmp_path):
    stats = info(tmp_path, job="app")["stats"]
    assert stats["jobs"] == {}
    assert stats["overall"]["count"] == 0 and stats["overall"]["average_ratio"] is None
    assert stats["overall"]["newest"] is None


# ----------------------------------------------------------------------------------------------
# Filters
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def mixed_catalog(tmp_path):
    ids = {
        "files_old": fake_backup(tmp_path, hours_ago=24 * 10, tags=["weekly"]),
        "files_deploy": fake_backup(tmp_path, hours_ago=24 * 3, tags=["pre-deploy"], deploy_id="v41"),
        "files_new": fake_backup(tmp_path, hours_ago=3, tags=["pre-deploy", "manual"], deploy_id="v42"),
        "db_new": fake_backup(tmp_path, job="db", hours_ago=1, kind="database", deploy_id="v42"),
    }
    return tmp_path, ids


@pytest.mark.parametrize("filters,expected", [
    ({"job": "app"}, ["files_new", "files_deploy", "files_old"]),
    ({"kind": "database"}, ["db_new"]),
    ({"tags": ["manual", "weekly"]}, ["files_new", "files_old"]),
    ({"tags": ["pre-deploy"], "job": "app"}, ["files_new", "files_deploy"]),
    ({"deploy_id": "v42"}, ["db_new", "files_new"]),
    ({"since": "2d"}, ["db_new", "files_new"]),
    ({"since": "4d"}, ["db_new", "files_new", "files_deploy"]),
    ({"since": _catalog.iso_utc(NOW - timedelta(hours=3))}, ["db_new", "files_new"]),
    ({"since": (NOW - timedelta(hours=2)).astimezone(timezone(timedelta(hours=-5))).isoformat()}, ["db_new"]),
    ({"kind": "files", "since": "1y"}, ["files_new", "files_deploy", "files_old"]),
    ({"tags": ["nothing"]}, []),
])
def test_filters(mixed_catalog, filters, expected):
    backup_dir, ids = mixed_catalog
    assert [meta["id"] for meta in info(backup_dir, **filters)["backups"]] == [ids[name] for name in expected]


def test_filters_narrow_stats_but_only_job_narrows_health(mixed_catalog):
    backup_dir, _ids = mixed_catalog
    result = info(backup_dir, kind="database", max_age="2h")
    assert result["stats"]["overall"]["count"] == 1
    assert set(result["health"]["jobs"]) == {"app", "db"}
    assert "too_old" in codes(result, "app")
    assert set(info(backup_dir, job="db")["health"]["jobs"]) == {"db"}


def test_since_parsing():
    local = datetime(2026, 5, 1).astimezone()
    assert _health.parse_since("2026-05-01", NOW) == local
    assert _health.parse_since("2026-05-01T12:00:00+02:00", NOW) == datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    assert _health.parse_since("2026-05-01T10:00:00Z", NOW) == datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    assert _health.parse_since("36h", NOW) == NOW - timedelta(hours=36)
    assert _health.parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert _health.parse_since("1m", NOW) == datetime(2026, 4, 10, 12, tzinfo=timezone.utc)  # m is a month
    for wrong in ("yesterday", "2w", "-2d", "2026-13-01"):
        with pytest.raises(UsageError, match="neither an ISO date"):
            _health.parse_since(wrong, NOW)


def test_option_errors(tmp_path):
    for options, message in (({"max_age": "0h"}, "is zero"), ({"max_age": "26 hours"}, "unknown unit"),
                             ({"min_size_ratio": 1.5}, "between 0 and 1"),
                             ({"disk_usage_threshold": 120}, "between 0 and 100"),
                             ({"job": "../etc"}, "not a valid name")):
        with pytest.raises(UsageError, match=message):
            info(tmp_path, **options)


# ----------------------------------------------------------------------------------------------
# Health rules
# ----------------------------------------------------------------------------------------------

def test_too_old_counts_only_good_backups(tmp_path):
    good = fake_backup(tmp_path, hours_ago=31.5, state="verified")
    fake_backup(tmp_path, hours_ago=1, state="failed", problem="chunk 3 does not authenticate")
    result = info(tmp_path)
    problem = problem_of(result, "too_old")
    assert problem["level"] == "error" and problem["job"] == "app" and problem["id"] == good
    assert problem["message"] == ("job app: newest good backup is 31 h old (limit 26 h); check the timer with "
                                  "systemctl status lifeboat-backup@app.timer")
    assert result["health"]["jobs"]["app"]["newest_good"] == good
    assert result["health"]["jobs"]["app"]["age_s"] == int(31.5 * HOUR)
    assert result["health"]["ok"] is False and result["health"]["level"] == "error"


@pytest.mark.parametrize("max_age,hours_ago,too_old", [
    ("26h", 25.9, False), ("26h", 26.1, True), ("2d", 47, False), ("2d", 49, True), ("1d12h", 37, True),
])
def test_max_age_durations(tmp_path, max_age, hours_ago, too_old):
    fake_backup(tmp_path, hours_ago=hours_ago, state="verified")
    assert ("too_old" in codes(info(tmp_path, max_age=max_age))) is too_old


def test_no_backup_when_every_backup_failed(tmp_path):
    fake_backup(tmp_path, hours_ago=2, state="failed", problem="truncated")
    problem = problem_of(info(tmp_path), "no_backup")
    assert problem["level"] == "error" and problem["job"] == "app"
    assert "(1 failed)" in problem["message"] and "lifeboat run app" in problem["message"]


def test_no_backup_for_a_named_job_without_directory(tmp_path):
    fake_backup(tmp_path, job="db", hours_ago=2, state="verified")
    result = info(tmp_path, job="app")
    assert codes(result) == ["no_backup"] and problem_of(result, "no_backup")["job"] == "app"
    assert result["health"]["jobs"]["app"]["newest_good"] is None


def test_no_backup_in_an_empty_catalog(tmp_path):
    for backup_dir in (tmp_path, tmp_path / "missing"):
        result = info(backup_dir)
        assert codes(result) == ["no_backup"] and "job" not in problem_of(result, "no_backup")


@pytest.mark.parametrize("sizes,newest,ratio,flagged", [
    ([1000, 1000, 1000], 400, 0.5, True),
    ([1000, 1000, 1000], 600, 0.5, False),
    ([1000, 1000, 1000], 500, 0.5, False),
    ([900, 1000, 5000, 1100], 490, 0.5, True),  # the median, not the mean: one large backup does not mask it
    ([1000, 1000], 10, 0.5, False),  # fewer than 3 previous backups: no judgement
    ([1000, 1000, 1000], 10, 0.0, False),  # 0 turns the check off
    ([1000, 1000, 1000], 850, 0.9, True),
])
def test_size_anomaly(tmp_path, sizes, newest, ratio, flagged):
    for age, size in enumerate(sizes):
        fake_backup(tmp_path, hours_ago=10 + age, size=size, state="verified")
    newest_id = fake_backup(tmp_path, hours_ago=1, size=newest, state="verified")
    result = info(tmp_path, min_size_ratio=ratio)
    assert ("too_small" in codes(result)) is flagged
    if flagged:
        problem = problem_of(result, "too_small")
        assert problem["level"] == "warning" and problem["id"] == newest_id
        assert "of the median of the %d before it" % len(sizes) in problem["message"]


def test_size_anomaly_ignores_failed_backups(tmp_path):
    for age in range(3):
        fake_backup(tmp_path, hours_ago=10 + age, size=1000, state="verified")
    fake_backup(tmp_path, hours_ago=1, size=10, state="failed", problem="truncated")
    assert "too_small" not in codes(info(tmp_path))


def test_failed_and_unverified_backups(tmp_path):
    unverified_old = fake_backup(tmp_path, hours_ago=5)
    failed = fake_backup(tmp_path, hours_ago=3, state="failed", problem="member etc/passwd differs")
    unverified_new = fake_backup(tmp_path, hours_ago=1)
    result = info(tmp_path)
    assert codes(result) == ["failed", "unverified"]
    failure = problem_of(result, "failed")
    assert failure["level"] == "error" and failure["id"] == failed
    assert "failed its full verification (member etc/passwd differs)" in failure["message"]
    unverified = problem_of(result, "unverified")
    assert unverified["level"] == "warning" and unverified["ids"] == [unverified_new, unverified_old]
    assert "2 backup(s) never verified (newest %s)" % unverified_new in unverified["message"]


def test_disk_usage_matches_df(tmp_path):
    usage = _health.disk_usage(str(tmp_path / "not" / "yet"))
    assert usage["path"] == str(tmp_path)
    df = subprocess.run(["df", "--output=pcent", str(tmp_path)], capture_output=True, text=True, check=True)
    assert abs(usage["used_percent"] - int(df.stdout.splitlines()[1].strip().rstrip("%"))) <= 1


def test_disk_over_threshold_is_a_warning(tmp_path):
    fake_backup(tmp_path, hours_ago=1, state="verified")
    used = _health.disk_usage(str(tmp_path))["used_percent"]
    if used > 95:
        pytest.skip("the test filesystem is already over 95 %")
    below = info(tmp_path, disk_usage_threshold=max(used - 1, 0))
    problem = problem_of(below, "disk_full")
    assert problem["level"] == "warning" and "lifeboat.backup.prune" in problem["message"]
    assert below["health"]["disk"]["threshold"] == max(used - 1, 0)
    assert "disk_full" not in codes(info(tmp_path, disk_usage_threshold=min(used + 1, 100)))


@pytest.fixture
def full_fs(tmp_path):
    """A 1 MiB tmpfs filled to 97 %: a real, nearly full filesystem."""
    with mounted_tmpfs(tmp_path / "small", "1m") as mountpoint:
        with open(mountpoint / "filler", "wb") as handle:
            handle.write(b"\0" * (1024 * 1024 * 97 // 100))
        yield mountpoint


def test_disk_over_95_percent_is_critical(full_fs):
    result = info(full_fs / "backups", disk_usage_threshold=85.0)
    problem = problem_of(result, "disk_full")
    assert problem["level"] == "critical" and result["health"]["level"] == "critical"
    assert "is %s%% full (threshold 85.0%%" % result["health"]["disk"]["used_percent"] in problem["message"]


# ----------------------------------------------------------------------------------------------
# Leftovers
# ----------------------------------------------------------------------------------------------

def _job_file(backup_dir, name, content=b"", job="app"):
    path = os.path.join(str(backup_dir), job, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def leftovers_by_kind(result):
    return {(leftover["kind"], tuple(leftover["files"])): leftover for leftover in result["leftovers"]}


def test_leftovers_are_found_and_classified(tmp_path):
    backup = fake_backup(tmp_path, hours_ago=1, state="verified")
    aged(_job_file(tmp_path, "app-20260101T000000Z.sha256", b"0" * 64 + b"  app-20260101T000000Z.tar.zst.age\n"), 60)
    lonely_json = fake_backup(tmp_path, hours_ago=48)
    os.unlink(os.path.join(str(tmp_path), "app", lonely_json + ".tar.zst.age"))
    fresh = aged(_job_file(tmp_path, "app-20260102T000000Z.tar.zst.age", b"data"), 300)
    old = aged(_job_file(tmp_path, "app-20260103T000000Z.pgdump.age", b"data"), 2 * HOUR)
    aged(_job_file(tmp_path, "app-20260103T000000Z.sha256", b"x"), 2 * HOUR)
    temp = aged(_job_file(tmp_path, ".app-20260104T000000Z.tar.zst.age.tmp-k2j_x9a1", b"part"), 3 * HOUR)
    young_temp = aged(_job_file(tmp_path, ".%s.json.tmp-abcdefgh" % backup, b"{"), 30)
    result = info(tmp_path)
    found = leftovers_by_kind(result)
    assert set(found) == {
        ("orphan", ("app-20260101T000000Z.sha256",)),
        ("orphan", (lonely_json + ".sha256", lonely_json + ".json")),
        ("no_metadata", ("app-20260102T000000Z.tar.zst.age",)),
        ("no_metadata", ("app-20260103T000000Z.pgdump.age", "app-20260103T000000Z.sha256")),
        ("temp_file", (os.path.basename(temp),)),
        ("temp_file", (os.path.basename(young_temp),)),
    }
    assert found[("orphan", ("app-20260101T000000Z.sha256",))]["removable"] is True
    assert found[("no_metadata", (os.path.basename(fresh),))]["removable"] is False
    assert found[("no_metadata", (os.path.basename(old), "app-20260103T000000Z.sha256"))]["removable"] is True
    temp_leftover = found[("temp_file", (os.path.basename(temp),))]
    assert temp_leftover["removable"] is True and temp_leftover["age_s"] == 3 * HOUR
    assert temp_leftover["paths"] == [temp] and temp_leftover["job"] == "app"
    assert found[("temp_file", (os.path.basename(young_temp),))]["removable"] is False
    assert [meta["id"] for meta in result["backups"]] == [backup]
    messages = {problem["message"] for problem in result["health"]["problems"] if problem["code"] == "temp_file"}
    assert ("job app: %s: temporary file left by a run killed 3 h ago; the next prune removes it"
            % os.path.basename(temp)) in messages
    assert any("a prune removes it once it is 1 h old" in message for message in messages)
    assert all(problem["level"] == "warning" for problem in result["health"]["problems"]
               if problem["code"] in ("orphan", "no_metadata", "temp_file"))


@pytest.mark.parametrize("damage,reason", [
    (lambda meta: "{ not json", "not valid JSON"),
    (lambda meta: dict(meta, artifact="../../etc/passwd"), "names an artifact that cannot belong"),
    (lambda meta: dict(meta, artifact=meta["id"] + ".json"), "names an artifact that cannot belong"),
    (lambda meta: dict(meta, artifact="app-20200101T000000Z.tar.zst.age"), "names an artifact that cannot belong"),
    (lambda meta: dict(meta, id="app-20200101T000000Z"), "its id is not"),
    (lambda meta: dict(meta, created_at="yesterday"), "not an ISO time"),
    (lambda meta: dict(meta, local_time="2026-05-10T10:00:00"), "not an ISO time"),
])
def test_untrustworthy_metadata_is_reported_not_listed(tmp_path, damage, reason):
    backup_id = fake_backup(tmp_path, hours_ago=1, state="verified")
    path = os.path.join(str(tmp_path), "app", backup_id + ".json")
    damaged = damage(_catalog.read_metadata(path))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(damaged if isinstance(damaged, str) else json.dumps(damaged))
    result = info(tmp_path)
    assert result["backups"] == []
    problem = problem_of(result, "bad_metadata")
    assert problem["level"] == "error" and reason in problem["message"] and "prune leaves" in problem["message"]
    (leftover,) = result["leftovers"]
    assert leftover["kind"] == "bad_metadata" and leftover["removable"] is False
    assert set(leftover["files"]) == {backup_id + ".tar.zst.age", backup_id + ".sha256", backup_id + ".json"}


def test_an_artifact_the_metadata_does_not_name_is_a_leftover(tmp_path):
    complete = fake_backup(tmp_path, hours_ago=1, state="verified")
    aged(_job_file(tmp_path, complete + ".tar.gz.age", b"other"), 2 * HOUR)
    broken = fake_backup(tmp_path, hours_ago=5, state="verified")
    os.rename(os.path.join(str(tmp_path), "app", broken + ".tar.zst.age"),
              os.path.join(str(tmp_path), "app", broken + ".tar.gz.age"))
    result = info(tmp_path)
    assert [meta["id"] for meta in result["backups"]] == [complete]
    assert set(leftovers_by_kind(result)) == {("no_metadata", (complete + ".tar.gz.age",)),
                                              ("no_metadata", (broken + ".tar.gz.age",)),
                                              ("orphan", (broken + ".sha256", broken + ".json"))}


def test_missing_checksum_is_an_error(tmp_path):
    backup_id = fake_backup(tmp_path, hours_ago=1, state="verified")
    os.unlink(os.path.join(str(tmp_path), "app", backup_id + ".sha256"))
    result = info(tmp_path)
    assert [meta["id"] for meta in result["backups"]] == [backup_id]
    problem = problem_of(result, "missing_checksum")
    assert problem["level"] == "error" and problem["id"] == backup_id


def test_files_that_are_not_catalog_files_are_ignored(tmp_path):
    backup = fake_backup(tmp_path, hours_ago=1, state="verified")
    _job_file(tmp_path, "README.txt", b"notes")
    _job_file(tmp_path, "other-20260101T000000Z.sha256", b"x")  # another job's name in this directory
    _job_file(tmp_path, "app-2026.json", b"{}")
    _job_file(tmp_path, ".app-20260101T000000Z.tar.zst.age.tmp-", b"x")
    os.symlink("/etc/passwd", os.path.join(str(tmp_path), "app", "app-20260105T000000Z.tar.zst.age"))
    os.makedirs(os.path.join(str(tmp_path), "app", "app-20260106T000000Z.json"))
    _job_file(tmp_path, "stray.sha256", b"x", job="not a job")
    result = info(tmp_path)
    assert result["leftovers"] == [] and codes(result) == []
    assert [meta["id"] for meta in result["backups"]] == [backup]


def test_catalog_file_names():
    assert _catalog.is_catalog_file("app", "app-20260101T000000Z.tar.zst.age")
    assert _catalog.is_catalog_file("app", "app-20260101T000000Z-2.sql.zst.age")
    assert _catalog.is_catalog_file("app", ".app-20260101T000000Z.json.tmp-a1_B2c3d")
    assert _catalog.is_catalog_file("my-app", "my-app-20260101T000000Z.json")
    for name in ("app-20260101T000000Z", "app-20260101T000000Z.json/x", "../app-20260101T000000Z.json",
                 "app-20260101T000000Z..json", "app-20260101T000000Z.json.bak~", "xapp-20260101T000000Z.json",
                 ".app-20260101T000000Z.json.tmp-../x", ".lock", "app-20260101T000000Z.tar zst"):
        assert not _catalog.is_catalog_file("app", name), name


# ----------------------------------------------------------------------------------------------
# Read-only
# ----------------------------------------------------------------------------------------------

def test_info_never_writes(tmp_path):
    backup_dir = tmp_path / "backups"
    fake_backup(backup_dir, hours_ago=40, state="failed", problem="bad")
    fake_backup(backup_dir, hours_ago=30)
    _job_file(backup_dir, ".app-20260104T000000Z.tar.zst.age.tmp-k2j_x9a1", b"part")
    _job_file(backup_dir, "app-20260101T000000Z.sha256", b"x")
    before = tree_digest(str(tmp_path))
    names_before = sorted(os.listdir(str(backup_dir / "app")))
    result = _health.catalog_info(str(backup_dir), since="30d", max_age="1h")
    info(backup_dir / "missing", job="app")
    assert result["health"]["ok"] is False
    assert tree_digest(str(tmp_path)) == before
    assert sorted(os.listdir(str(backup_dir / "app"))) == names_before
    assert not (backup_dir / ".lock").exists() and not (backup_dir / "missing").exists()


def test_each_series_of_a_job_is_checked_on_its_own(tmp_path):
    """A nightly dump that stopped working must not hide behind the fresh archive of the same job,
    and a small dump is not a size anomaly next to big archives."""
    for hours in (1, 25, 49, 73):
        fake_backup(tmp_path, hours_ago=hours, size=100_000, state="verified")
    for hours in (50, 74, 98, 122):
        fake_backup(tmp_path, hours_ago=hours + 0.5, size=2_000, state="verified", kind="database")
    meta_paths = sorted(tmp_path.glob("app/*.json"))
    for path in meta_paths:
        meta = json.loads(path.read_text())
        if meta["kind"] == "database":
            meta.update(engine="postgresql", database="appdb")
            path.write_text(json.dumps(meta))
    result = info(tmp_path)
    assert codes(result) == ["too_old"]
    problem = result["health"]["problems"][0]
    assert problem["message"].startswith("job app (database postgresql appdb): newest good backup is ")
    assert problem["id"] == "app-20260508T093000Z"


@pytest.mark.parametrize("verification,label", [
    ({"state": "verified", "level": "full", "method": "read-back"}, "verified full (read-back)"),
    ({"state": "failed", "level": "checksum", "method": "verify"}, "failed checksum (verify)"),
    ({"state": "verified", "level": "full"}, "verified full"),  # recorded before methods were
    ({"state": "unverified"}, "unverified"),
    ({"state": "bogus"}, "unverified"),
    (None, "unverified"),
])
def test_the_listing_label_of_a_verification(verification, label):
    assert _catalog.verification_label({"verification": verification}) == label
