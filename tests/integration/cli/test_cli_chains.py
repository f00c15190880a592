"""An incremental job through the installed command: its runs' prune keeps the chain, list shows the levels, health
exits 3 when a member of the chain is gone, and the metrics count the backups that cannot be restored."""

from __future__ import annotations

import json
import os

from test_cli import host  # noqa: F401  pylint: disable=unused-import


def _files_backups(host):  # noqa: F811  pylint: disable=redefined-outer-name
    return [meta for meta in json.loads(host("list", "--json").stdout) if meta["kind"] == "files"]


def test_an_incremental_job_keeps_its_chain_and_health_reports_a_broken_one(host):  # noqa: F811
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job = json.loads(job_file.read_text())
    job.update(incremental=True, retention={"keep_last": 1})
    job_file.write_text(json.dumps(job))
    for number in range(3):
        (host.app / "index.html").write_text("<h1>version %d</h1>\n" % number)
        run = host("run", "app")
        assert run.returncode == 0, run.stderr
    newest, middle, base = _files_backups(host)
    assert [newest["level"], middle["level"], base["level"]] == [2, 1, 0] and newest["chain"][0] == base["id"]
    listing = host("list").stdout.splitlines()
    assert listing[0].split()[:3] == ["ID", "KIND", "LEVEL"]
    levels = {line.split()[0]: line.split()[2] for line in listing[1:]}
    assert [levels[meta["id"]] for meta in (newest, middle, base)] == ["2", "1", "0"]
    assert {level for backup_id, level in levels.items() if backup_id not in (newest["id"], middle["id"],
                                                                              base["id"])} == {"-"}
    assert host("health").returncode == 0

    for suffix in (".json", ".sha256", "." + middle["artifact"].split(".", 1)[1]):
        os.unlink(str(host.tmp / "backups" / "app" / (middle["id"] + suffix)))
    health = host("health", "--json", "--no-alerts")
    assert health.returncode == 3, health.stderr
    (problem,) = [found for found in json.loads(health.stdout)["problems"] if found["code"] == "broken_chain"]
    assert problem["id"] == newest["id"] and problem["member"] == middle["id"]
    metrics = (host.tmp / "textfile" / "lifeboat_backup.prom").read_text()
    assert 'lifeboat_backup_broken_chain_backups{job="app"} 1' in metrics
