"""The on-host command with vaults: a timer run replicates before the local prune, `lifeboat replicate` sends a
backlog, health and metrics report a failing vault and its backlog, and `vault-maintain` keeps an SFTP vault's
directories (here file:// vaults: the same engine serves every kind of store)."""

import json
import os
import time

import pytest

from testlib import fingerprint

from test_cli import make_host


@pytest.fixture
def vaulted(tmp_path):
    host = make_host(tmp_path)
    vault_root = tmp_path / "vault"
    (vault_root / "fleet").mkdir(parents=True)
    config = tmp_path / "etc"
    (config / "vaults.json").write_text(json.dumps({"vaults": [
        {"name": "offsite", "url": "file://%s/fleet" % vault_root, "host": "web1"}]}))
    job = json.loads((config / "jobs.d" / "app.json").read_text())
    job["vaults"] = ["offsite"]
    (config / "jobs.d" / "app.json").write_text(json.dumps(job))
    host.vault_dir = vault_root / "fleet" / "web1" / "app"
    host.config = config
    return host


def copies(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.endswith(".sha256")) \
        if directory.exists() else []


def test_a_timer_run_replicates_every_new_backup_and_records_it(vaulted):
    result = vaulted("run", "app", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    made = [entry["id"] for entry in report["backups"]]
    assert len(made) == 2 and report["vaults"][0]["vault"] == "offsite"
    assert copies(vaulted.vault_dir) == sorted(backup_id + ".sha256" for backup_id in made)
    metrics = (vaulted.tmp / "textfile" / "lifeboat_backup.prom").read_text()
    assert 'lifeboat_backup_vault_backlog{job="app",vault="offsite"} 0' in metrics
    assert 'lifeboat_backup_vault_failing{job="app",vault="offsite"} 0' in metrics
    assert 'lifeboat_backup_vault_last_success_timestamp_seconds{job="app",vault="offsite"}' in metrics
    again = vaulted("replicate", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["changed"] is False


def test_a_vault_that_fails_fails_the_run_and_keeps_every_local_backup(vaulted):
    (vaulted.config / "vaults.json").write_text(json.dumps({"vaults": [
        {"name": "offsite", "url": "file://%s/gone" % vaulted.tmp, "host": "web1"}]}))
    runs = [vaulted("run", "app") for _number in range(3)]
    assert all(run.returncode == 1 for run in runs)
    assert "vault offsite" in runs[0].stderr and "does not exist" in runs[0].stderr
    # keep_last 2 would have pruned: a backup without its copy is never pruned
    assert len(os.listdir(str(vaulted.tmp / "backups" / "app"))) == 3 * 2 * 3
    health = vaulted("health", "--no-alerts")
    assert health.returncode == 3
    assert "job app: vault offsite: the last replication failed" in health.stdout
    metrics = (vaulted.tmp / "textfile" / "lifeboat_backup.prom").read_text()
    assert 'lifeboat_backup_vault_failing{job="app",vault="offsite"} 1' in metrics


def test_replicate_sends_the_backlog_once_the_vault_is_back(vaulted):
    good = (vaulted.config / "vaults.json").read_text()
    (vaulted.config / "vaults.json").write_text(good.replace("/fleet", "/gone"))
    assert vaulted("run", "app").returncode == 1
    (vaulted.config / "vaults.json").write_text(good)
    result = vaulted("replicate", "app", "--vault", "offsite", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)[0]["vaults"][0]["sent"]) == 2
    assert len(copies(vaulted.vault_dir)) == 2
    assert vaulted("health", "--no-alerts").returncode == 0


def test_a_job_without_that_vault_is_a_usage_error(vaulted):
    result = vaulted("replicate", "app", "--vault", "elsewhere")
    assert result.returncode == 2
    assert "job app does not replicate to a vault named elsewhere (it names: offsite)" in result.stderr


def test_vault_maintain_applies_retention_and_sweeps_on_the_vault_host(vaulted):
    for _number in range(3):
        assert vaulted("run", "app").returncode == 0
    partial = vaulted.vault_dir / "app-20200101T000000Z.tar.zst.age"
    partial.write_bytes(b"cut short")
    old = time.time() - 3 * 86400
    os.utime(str(partial), (old, old))
    local = fingerprint(str(vaulted.tmp / "backups" / "app"))
    (vaulted.config / "vault.json").write_text(json.dumps({
        "directories": [{"url": "file://%s/fleet" % (vaulted.tmp / "vault"), "host": "web1", "jobs": ["app"]}],
        "retention": {"keep_last": 1}, "sweep_after": "24h", "textfile_dir": str(vaulted.tmp / "vault-metrics")}))
    check = vaulted("vault-maintain", "--check", "--json")
    assert check.returncode == 0, check.stderr
    assert len(copies(vaulted.vault_dir)) == 6 and partial.exists()
    result = vaulted("vault-maintain", "--json")
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["results"][0]["hosts"]["web1"]["app"]
    assert len(entry["removed"]) == 4 and len(entry["kept"]) == 2  # keep_last per series: files and the database
    assert entry["swept"] == ["app-20200101T000000Z"] and not partial.exists()
    assert len(copies(vaulted.vault_dir)) == 2
    assert fingerprint(str(vaulted.tmp / "backups" / "app")) == local
    metrics = (vaulted.tmp / "vault-metrics" / "lifeboat_vault.prom").read_text()
    assert 'lifeboat_backup_vault_copies{host="web1",job="app"} 2' in metrics
    assert "lifeboat_backup_vault_maintain_failed 0" in metrics
