"""The on-host command `lifeboat`, installed the way the agent role installs it, run as the timers run it."""

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import jinja2
import pytest

import testlib
from testlib import IDENTITY, RECIPIENT, SMTPServer, http_receiver, self_signed_certificate

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog

ROOT = testlib.ROOT


def install_command(prefix):
    """The engine's tree as a package beside a small entry point: the layout of roles/agent. Returns the argv that
    runs the command as its shebang line does, with this interpreter (the tests' environment has the engine's
    dependencies)."""
    package = os.path.join(prefix, "lib", "lifeboat_engine")
    shutil.copytree(os.path.join(ROOT, "plugins", "module_utils"), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    with open(os.path.join(package, "__init__.py"), "w", encoding="utf-8") as handle:
        handle.write("")
    entry = os.path.join(prefix, "bin", "lifeboat")
    os.makedirs(os.path.dirname(entry))
    environment = jinja2.Environment(keep_trailing_newline=True)
    environment.filters.update(dirname=os.path.dirname, basename=os.path.basename)
    with open(os.path.join(ROOT, "roles", "agent", "templates", "lifeboat.j2"), encoding="utf-8") as handle:
        script = environment.from_string(handle.read()).render(ansible_managed="installed by the tests",
                                                               __agent_engine_dir=package)
    shebang = script.split("\n", 1)[0]
    assert shebang.startswith("#!/usr/bin/python3 "), shebang
    with open(entry, "w", encoding="utf-8") as handle:
        handle.write(script)
    return [sys.executable] + shebang.split()[1:] + [entry]


@pytest.fixture
def host(tmp_path):
    return make_host(tmp_path)


def make_host(tmp_path):
    """An installed command, a config dir with one job (a SQLite database and files), and its sources."""
    command = install_command(str(tmp_path / "prefix"))
    app = tmp_path / "srv" / "app"
    (app / "data").mkdir(parents=True)
    (app / "index.html").write_text("<h1>app</h1>\n")
    with sqlite3.connect(app / "data" / "app.db") as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany("INSERT INTO notes (body) VALUES (?)", [("note %d" % n,) for n in range(100)])
    config = tmp_path / "etc"
    (config / "jobs.d").mkdir(parents=True)
    settings = {"backup_dir": str(tmp_path / "backups"),
                "monitoring": {"textfile_dir": str(tmp_path / "textfile")},
                "health": {"max_age": "26h", "disk_usage_threshold": 100}}
    (config / "lifeboat.json").write_text(json.dumps(settings))
    job = {"name": "app", "paths": [str(app)], "exclude": ["**/data/*.db*"], "recipients": [RECIPIENT],
           "databases": [{"engine": "sqlite", "name": str(app / "data" / "app.db")}],
           "retention": {"keep_last": 2}}
    (config / "jobs.d" / "app.json").write_text(json.dumps(job))
    (tmp_path / "key.txt").write_text(IDENTITY + "\n")

    def run(*args, stdin=None, env=None, cwd=None):
        env = dict(os.environ, LIFEBOAT_CONFIG_DIR=str(config), **(env or {}))
        return subprocess.run(command + list(args), env=env, cwd=cwd, capture_output=True, text=True,
                              input=stdin, check=False)

    run.tmp = tmp_path
    run.app = app
    return run


def test_run_makes_verified_backups_prunes_and_writes_metrics(host):
    first = host("run", "app", "--json")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)["backups"]
    assert [os.path.basename(b["path"]).split(".", 1)[1] for b in made] == ["sqlite.zst.age", "tar.zst.age"]
    assert "verify %s" % made[0]["id"] not in first.stderr  # read back in full as written: no checksum step
    listed = {meta["id"]: meta["verification"] for meta in json.loads(host("list", "--json").stdout)}
    assert {listed[backup["id"]]["method"] for backup in made} == {"read-back"}
    for _attempt in range(2):
        assert host("run", "app").returncode == 0
    listed = json.loads(host("list", "--json").stdout)
    assert len(listed) == 4, "keep_last 2 of each series: 2 dumps and 2 archives"
    assert [meta["verification"]["method"] for meta in listed] == ["read-back"] * 4
    assert host("list").stdout.count(" verified full (read-back)\n") == 4
    assert sorted(meta["kind"] for meta in listed) == ["database", "database", "files", "files"]
    metrics = (host.tmp / "textfile" / "lifeboat_backup.prom").read_text()
    assert 'lifeboat_backup_backups{job="app"} 4' in metrics
    if shutil.which("promtool"):
        subprocess.run(["promtool", "check", "metrics"], input=metrics, text=True, check=True,
                       capture_output=True)


def test_read_commands_and_exit_codes(host):
    assert host("run", "app").returncode == 0
    backups = json.loads(host("list", "--json").stdout)
    archive = [meta for meta in backups if meta["kind"] == "files"][0]
    stats = json.loads(host("stats", "--json").stdout)
    assert stats["overall"]["count"] == 2
    checked = host("verify", archive["id"])
    assert checked.returncode == 0 and "passed checksum verification" in checked.stdout
    full = host("verify", archive["id"], "--full", "--identity-file", "-", stdin=IDENTITY + "\n")
    assert full.returncode == 0 and "passed full verification" in full.stdout
    no_key = host("verify", archive["id"], "--full")
    assert no_key.returncode == 2 and "--identity-file" in no_key.stderr
    healthy = host("health", "--json")
    assert healthy.returncode == 0 and json.loads(healthy.stdout)["ok"] is True
    assert host("frobnicate").returncode == 2
    assert host("run", "no-such-job").returncode == 2
    with _catalog.CatalogLock(str(host.tmp / "backups")):
        locked = host("run", "app", "--lock-timeout", "0")
    assert locked.returncode == 4 and "locked by another run" in locked.stderr


def test_health_problems_exit_3(host):
    assert host("run", "app").returncode == 0
    artifact = glob.glob(str(host.tmp / "backups" / "app" / "*.tar.zst.age"))[0]
    with open(artifact, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\0\0\0\0")
    backup_id = os.path.basename(artifact).split(".")[0]
    damaged = host("verify", backup_id)
    assert damaged.returncode == 1 and "does not match its checksum" in damaged.stderr
    report = host("health", "--no-alerts")
    assert report.returncode == 3 and "failed" in report.stdout


def test_a_failing_job_exits_1_and_leaves_no_artifact(host):
    os.unlink(host.app / "data" / "app.db")
    failed = host("run", "app")
    assert failed.returncode == 1 and "app.db" in failed.stderr
    assert _catalog.list_metadata(str(host.tmp / "backups")) == []


def test_break_glass_restore_with_the_identity_on_stdin(host):
    assert host("run", "app").returncode == 0
    archive = [meta for meta in json.loads(host("list", "--json").stdout) if meta["kind"] == "files"][0]
    target = host.tmp / "restored"
    restored = host("restore", archive["id"], "--to", str(target), "--identity-file", "-", stdin=IDENTITY + "\n")
    assert restored.returncode == 0, restored.stderr
    assert (target / str(host.app / "index.html").lstrip("/")).read_text() == "<h1>app</h1>\n"
    assert IDENTITY not in restored.stdout + restored.stderr
    wrong = host("restore", archive["id"], "--to", str(host.tmp / "other"), "--identity-file", "-",
                 stdin=_age.generate_identity()[0] + "\n")
    assert wrong.returncode == 1 and "no identity matches" in wrong.stderr
    assert not (host.tmp / "other").exists()


def test_monitoring_settings_live_in_their_own_file(host):
    config = host.tmp / "etc"
    (config / "lifeboat.json").write_text(json.dumps({"backup_dir": str(host.tmp / "backups")}))
    (config / "monitoring.json").write_text(json.dumps({"monitoring": {"textfile_dir": str(host.tmp / "metrics")},
                                                        "health": {"max_age": "1h", "disk_usage_threshold": 100}}))
    assert host("run", "app").returncode == 0
    assert 'lifeboat_backup_backups{job="app"} 2' in (host.tmp / "metrics" / "lifeboat_backup.prom").read_text()
    assert host("health", "--no-alerts").returncode == 0


def test_database_format_is_the_job_files_name_for_pg_format(host):
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job = json.loads(job_file.read_text())
    job["databases"][0]["format"] = "custom"
    job_file.write_text(json.dumps(job))
    refused = host("run", "app")
    assert refused.returncode == 2 and "PostgreSQL only" in refused.stderr


def test_a_job_files_keys_are_the_modules_options_with_their_defaults(host):
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job = json.loads(job_file.read_text())
    job.update(compression="gzip", tags=["nightly"], description=None)
    job_file.write_text(json.dumps(job))
    run = host("run", "app", "--json")
    assert run.returncode == 0, run.stderr
    backups = {meta["kind"]: meta for meta in json.loads(host("list", "--json").stdout)}
    assert backups["files"]["artifact"].endswith(".tar.gz.age")
    assert backups["database"]["artifact"].endswith(".sqlite.gz.age")
    assert backups["files"]["tags"] == backups["database"]["tags"] == ["nightly"]
    assert backups["files"]["selection"]["default_excludes"] is True and backups["files"]["description"] is None


def test_an_unknown_retention_key_is_named_and_prunes_nothing(host):
    assert host("run", "app").returncode == 0
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job = json.loads(job_file.read_text())
    job["retention"] = {"keep_last": 1, "keep_dayly": 7}
    job_file.write_text(json.dumps(job))
    refused = host("run", "app")
    assert refused.returncode == 2 and "unknown retention option(s) keep_dayly" in refused.stderr
    assert len(_catalog.list_metadata(str(host.tmp / "backups"))) == 4, "both runs' backups are kept"


@pytest.fixture
def webhook():
    with http_receiver() as (url, received):
        yield url + "/hook", received


def test_alert_sends_the_failed_units_details_once_per_cooldown(host, webhook):
    url, received = webhook
    alerts = {"webhook": {"url": url}, "cooldown_minutes": 60, "state_file": str(host.tmp / "state" / "alerts.json")}
    (host.tmp / "etc" / "monitoring.json").write_text(json.dumps({"alerts": alerts}))
    (host.tmp / "details.txt").write_text("pg_dump: database \"gone\" does not exist\n")
    args = ("alert", "lifeboat-backup@app.service", "--details-file", str(host.tmp / "details.txt"),
            "--journal-lines", "5")
    first = host(*args)
    assert first.returncode == 0 and "sent via webhook" in first.stdout, first.stderr
    assert len(received) == 1
    payload = json.loads(received[0][1])
    assert payload["job"] == "app" and payload["unit"] == "lifeboat-backup@app.service"
    assert 'database "gone" does not exist' in payload["message"]
    assert "The end of its journal:" in payload["message"]
    again = host(*args)
    assert again.returncode == 0 and "suppressed by the cooldown" in again.stdout
    assert len(received) == 1


def test_the_command_imports_only_the_system_python_and_its_own_engine(host):
    """What a user can put in the working directory, beside the command or in PYTHON* variables is never imported
    by the root command: a json module and an engine of their own there would run as root."""
    planted = host.tmp / "planted"
    marker = host.tmp / "imported-planted-code"
    trap = "open(%r, 'a').write(__name__ + '\\n')\n" % str(marker)
    for directory in (planted, planted / "lifeboat_engine", host.tmp / "prefix" / "bin"):
        directory.mkdir(parents=True, exist_ok=True)
    engine = planted / "lifeboat_engine"
    for path in (planted / "json.py", engine / "__init__.py", engine / "_cli.py", planted / "startup.py",
                 host.tmp / "prefix" / "bin" / "json.py"):
        path.write_text(trap)
    listed = host("list", "--json", cwd=str(planted),
                  env={"PYTHONPATH": str(planted), "PYTHONSTARTUP": str(planted / "startup.py"), "PYTHONINSPECT": "1"})
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert not marker.exists(), marker.read_text()


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(str(tmp_path))


TOKEN = "tok-8c41e0"


def test_a_failed_alert_says_why_without_the_webhooks_token(host, certificate):
    """The failure lands in the journal (stdout) and in --json: the URL only as scheme://host/…."""
    with http_receiver(status=500) as (url, received), SMTPServer() as smtp:
        alerts = {"webhook": {"url": "%s/hooks/%s?key=%s" % (url, TOKEN, TOKEN),
                              "headers": {"Authorization": "Bearer " + TOKEN}},
                  "email": {"host": "127.0.0.1", "port": smtp.port, "sender": "lifeboat@web1",
                            "recipients": ["ops@example.org"], "timeout": 5},
                  "state_file": str(host.tmp / "state" / "alerts.json")}
        (host.tmp / "etc" / "monitoring.json").write_text(json.dumps({"alerts": alerts}))
        text = host("alert", "lifeboat-backup@app.service")
        as_json = host("alert", "lifeboat-backup@app.service", "--json")
    assert text.returncode == 1 and as_json.returncode == 1
    webhook = "the webhook POST to %s/… failed: it answered HTTP 500" % url
    email = "the email via 127.0.0.1:%d (starttls) failed: STARTTLS extension not supported by server." % smtp.port
    assert text.stdout.splitlines() == ["alert failure:app: sent via nothing", "alert failure:app: " + email,
                                        "alert failure:app: " + webhook]
    assert json.loads(as_json.stdout)["failed"] == {"webhook": webhook, "email": email}
    for result in (text, as_json):
        assert TOKEN not in result.stdout + result.stderr
    assert len(received) == 2 and smtp.messages == [], "the plain server never got the mail in clear text"
    assert not (host.tmp / "state" / "alerts.json").exists()


def test_alert_email_over_smtps(host, certificate):
    with SMTPServer("smtps", certificate) as smtp:
        alerts = {"email": {"host": "127.0.0.1", "port": smtp.port, "security": "smtps", "ca_file": certificate[0],
                            "username": "lifeboat", "password": "pw-" + TOKEN, "sender": "lifeboat@web1",
                            "recipients": ["ops@example.org"]},
                  "state_file": str(host.tmp / "state" / "alerts.json")}
        (host.tmp / "etc" / "monitoring.json").write_text(json.dumps({"alerts": alerts}))
        sent = host("alert", "lifeboat-backup@app.service")
    assert sent.returncode == 0 and "sent via email" in sent.stdout, sent.stdout + sent.stderr
    assert [tls for _envelope, tls in smtp.messages] == [True] and smtp.logins == [("lifeboat", "pw-" + TOKEN)]
    assert b"lifeboat-backup@app.service failed" in smtp.messages[0][0].content


def test_a_failing_ping_is_a_warning_without_its_token_and_the_backup_is_made(host):
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    with http_receiver(status=404) as (url, received):
        job_file.write_text(json.dumps(dict(json.loads(job_file.read_text()), ping_url="%s/ping/%s" % (url, TOKEN))))
        run = host("run", "app")
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: the ping")]
    assert warnings == ["warning: the ping POST to %s/… failed: it answered HTTP 404" % url] * 2
    assert TOKEN not in run.stdout + run.stderr
    assert [path for path, _body in received] == ["/ping/%s/start" % TOKEN, "/ping/%s" % TOKEN]
    assert len(_catalog.list_metadata(str(host.tmp / "backups"))) == 2


def test_a_job_without_read_back_gets_a_checksum_verify(host):
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job_file.write_text(json.dumps(dict(json.loads(job_file.read_text()), read_back=False)))
    run = host("run", "app", "--json")
    assert run.returncode == 0, run.stderr
    made = json.loads(run.stdout)["backups"]
    for backup in made:
        assert "verify %s: checksum ok" % backup["id"] in run.stderr
    listed = {meta["id"]: meta["verification"] for meta in json.loads(host("list", "--json").stdout)}
    assert {listed[backup["id"]]["state"] for backup in made} == {"verified"}
    assert {listed[backup["id"]]["level"] for backup in made} == {"checksum"}
