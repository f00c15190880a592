"""Textfile metrics and alert delivery, against a real HTTP receiver and a real SMTP server."""

import json
import os
import shutil
import socket
import subprocess

import pytest

from testlib import http_receiver

from ansible_collections.lifeboat.backup.plugins.module_utils import _alerts, _metrics


def _meta(job, created_at, size=1000, state="verified", duration=2.5):
    return {"id": "%s-%s" % (job, created_at.replace("-", "").replace(":", "")), "job": job, "created_at": created_at,
            "size": size, "duration_s": duration, "verification": {"state": state}}


def test_metrics_describe_the_newest_good_backup_per_job(tmp_path):
    backups = [_meta("app", "2026-11-22T02:00:00Z", state="failed"), _meta("app", "2026-11-21T02:00:00Z", size=42),
               _meta("db", "2026-11-22T01:00:00Z", state="unverified")]
    problems = [{"level": "error", "message": "x"}, {"level": "warning", "message": "y"},
                {"level": "warning", "message": "z"}]
    text = _metrics.render(backups, str(tmp_path), problems, now=1_800_000_000)
    assert 'lifeboat_backup_last_success_timestamp_seconds{job="app"} 1795226400' in text
    assert 'lifeboat_backup_last_size_bytes{job="app"} 42' in text
    assert 'lifeboat_backup_last_verified{job="db"} 0' in text
    assert 'lifeboat_backup_failed_backups{job="app"} 1' in text
    assert 'lifeboat_backup_problems{level="warning"} 2' in text
    assert 'lifeboat_backup_problems{level="critical"} 0' in text
    assert "# TYPE lifeboat_backup_dir_free_bytes gauge" in text
    path = _metrics.write(str(tmp_path / "textfile"), text)
    assert path.endswith(".prom") and os.listdir(tmp_path / "textfile") == ["lifeboat_backup.prom"]
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture
def receiver():
    with http_receiver() as found:
        yield found


@pytest.fixture
def smtp_server():
    controller_module = pytest.importorskip("aiosmtpd.controller")
    messages = []

    class Recorder:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (the aiosmtpd API)
            messages.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = controller_module.Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()


def test_alert_reaches_webhook_and_email_then_cools_down(tmp_path, receiver, smtp_server):
    url, received = receiver
    port, messages = smtp_server
    config = {"state_file": str(tmp_path / "state" / "alerts.json"), "cooldown_minutes": 60,
              "webhook": {"url": url + "/hook"},
              "email": {"host": "127.0.0.1", "port": port, "sender": "lifeboat@host",
                        "recipients": ["ops@example.org"]}}
    event = {"event": "failure", "job": "app", "message": "lifeboat-backup@app.service failed", "host": "web1"}
    outcome = _alerts.send_alert(config, event, now=1000.0)
    assert outcome["sent"] == ["webhook", "email"] and not outcome["failed"]
    document = json.loads(received[0][1])
    assert received[0][0] == "/hook" and document["job"] == "app" and document["host"] == "web1"
    assert messages[0].rcpt_tos == ["ops@example.org"]
    assert b"[lifeboat] failure on web1: app" in messages[0].content
    again = _alerts.send_alert(config, event, now=1000.0 + 59 * 60)
    assert again["suppressed"] and len(received) == 1 and len(messages) == 1
    later = _alerts.send_alert(config, event, now=1000.0 + 61 * 60)
    assert later["sent"] == ["webhook", "email"] and len(received) == 2
    assert os.stat(config["state_file"]).st_mode & 0o777 == 0o600


def test_a_dead_channel_does_not_stop_the_others(tmp_path, receiver):
    url, received = receiver
    config = {"state_file": str(tmp_path / "alerts.json"), "webhook": {"url": url},
              "email": {"host": "127.0.0.1", "port": 1, "sender": "a@b", "recipients": ["c@d"], "timeout": 2}}
    outcome = _alerts.send_alert(config, {"event": "health", "message": "disk full"})
    assert outcome["sent"] == ["webhook"] and "email" in outcome["failed"] and len(received) == 1


def test_pings_follow_the_healthchecks_convention(receiver):
    url, received = receiver
    for state in ("start", "success", "fail"):
        assert _alerts.ping(url + "/uuid", state, "log tail") == 200
    assert [path for path, _body in received] == ["/uuid/start", "/uuid", "/uuid/fail"]
    assert isinstance(_alerts.ping("http://127.0.0.1:1/x", "start", timeout=2), str)
    assert _alerts.ping(None, "start") is None
