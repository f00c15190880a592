"""Textfile metrics and alert delivery, against a real HTTP receiver and a real SMTP server."""

import json
import os
import shutil
import subprocess

import pytest

from testlib import SMTPServer, http_receiver, self_signed_certificate

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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_alert_reaches_webhook_and_email_then_cools_down(tmp_path, receiver):
    url, received = receiver
    with SMTPServer() as smtp:
        config = {"state_file": str(tmp_path / "state" / "alerts.json"), "cooldown_minutes": 60,
                  "webhook": {"url": url + "/hook"},
                  "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "sender": "lifeboat@host",
                            "recipients": ["ops@example.org"]}}
        event = {"event": "failure", "job": "app", "message": "lifeboat-backup@app.service failed", "host": "web1"}
        outcome = _alerts.send_alert(config, event, now=1000.0)
        assert outcome["sent"] == ["webhook", "email"] and not outcome["failed"]
        document = json.loads(received[0][1])
        assert received[0][0] == "/hook" and document["job"] == "app" and document["host"] == "web1"
        envelope, _tls = smtp.messages[0]
        assert envelope.rcpt_tos == ["ops@example.org"]
        assert b"[lifeboat] failure on web1: app" in envelope.content
        again = _alerts.send_alert(config, event, now=1000.0 + 59 * 60)
        assert again["suppressed"] and len(received) == 1 and len(smtp.messages) == 1
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


EVENT = {"event": "failure", "job": "app", "message": "lifeboat-backup@app.service failed", "host": "web1"}
PASSWORD = "smtp-secret-5f1e"


def _email(port, **settings):
    return dict({"host": "127.0.0.1", "port": port, "sender": "lifeboat@web1", "recipients": ["ops@example.org"],
                 "timeout": 5}, **settings)


def test_email_uses_starttls_by_default_and_logs_in_only_over_it(tmp_path, certificate):
    with SMTPServer("starttls", certificate) as smtp:
        config = {"state_file": str(tmp_path / "alerts.json"),
                  "email": _email(smtp.port, ca_file=certificate[0], username="lifeboat", password=PASSWORD)}
        outcome = _alerts.send_alert(config, EVENT)
    assert outcome["sent"] == ["email"] and not outcome["failed"], outcome
    assert [tls for _envelope, tls in smtp.messages] == [True]
    assert smtp.logins == [("lifeboat", PASSWORD)]


def test_email_by_default_refuses_a_server_without_starttls(tmp_path):
    with SMTPServer() as smtp:
        config = {"state_file": str(tmp_path / "alerts.json"), "email": _email(smtp.port)}
        outcome = _alerts.send_alert(config, EVENT)
    assert outcome["sent"] == [] and smtp.messages == []
    assert outcome["failed"]["email"] == ("the email via 127.0.0.1:%d (starttls) failed: STARTTLS extension not "
                                          "supported by server." % smtp.port)
    assert not os.path.exists(config["state_file"]), "an alert that was not sent starts no cooldown"


def test_email_over_smtps(tmp_path, certificate):
    with SMTPServer("smtps", certificate) as smtp:
        config = {"state_file": str(tmp_path / "alerts.json"),
                  "email": _email(smtp.port, security="smtps", ca_file=certificate[0], username="lifeboat",
                                  password=PASSWORD)}
        outcome = _alerts.send_alert(config, EVENT)
    assert outcome["sent"] == ["email"] and not outcome["failed"], outcome
    assert [tls for _envelope, tls in smtp.messages] == [True]
    assert smtp.logins == [("lifeboat", PASSWORD)]


@pytest.mark.parametrize("security", ["starttls", "smtps"])
def test_an_untrusted_certificate_stops_the_email_before_the_login(tmp_path, certificate, security):
    with SMTPServer(security, certificate) as smtp:
        config = {"state_file": str(tmp_path / "alerts.json"),
                  "email": _email(smtp.port, security=security, username="lifeboat", password=PASSWORD)}
        outcome = _alerts.send_alert(config, EVENT)
    message = outcome["failed"]["email"]
    assert message.startswith("the email via 127.0.0.1:%d (%s) failed: " % (smtp.port, security))
    assert "CERTIFICATE_VERIFY_FAILED" in message and PASSWORD not in message
    assert smtp.messages == [] and smtp.logins == []


@pytest.mark.parametrize("settings, event, expected", [
    ({"sender": "lifeboat@web1\nBcc: victim@example.org"}, EVENT,
     "the email sender 'lifeboat@web1\\nBcc: victim@example.org' is not a single line of text: a line break in a "
     "mail header would let it add headers of its own"),
    ({"recipients": ["ops@example.org", "dev@example.org\r\nBcc: victim@example.org"]}, EVENT,
     "the email recipient 'dev@example.org\\r\\nBcc: victim@example.org' is not a single line of text"),
    ({}, dict(EVENT, host="web1\nBcc: victim@example.org"),
     "the email subject '[lifeboat] failure on web1\\nBcc: victim@example.org: app' is not a single line of text"),
    ({"recipients": "ops@example.org"}, EVENT,
     "the email recipients must be a list of addresses, not 'ops@example.org'"),
    ({"security": "ssl"}, EVENT, "the email security 'ssl' is not one of starttls, smtps, none"),
    ({"starttls": False}, EVENT, "the email settings hold starttls, which are not settings of lifeboat (known: "),
    ({"port": "465"}, EVENT, "the email port '465' is not a port number"),
    ({"security": "none", "username": "lifeboat", "password": PASSWORD}, EVENT,
     "the email settings log in to 127.0.0.1 without TLS, which would send the password in clear text: set "
     "security to starttls or smtps"),
])
def test_bad_email_settings_are_a_clear_error_and_the_webhook_still_goes_out(tmp_path, receiver, settings, event,
                                                                             expected):
    url, received = receiver
    with SMTPServer() as smtp:
        config = {"state_file": str(tmp_path / "alerts.json"), "webhook": {"url": url},
                  "email": dict(_email(smtp.port, security="none"), **settings)}
        outcome = _alerts.send_alert(config, event)
    assert outcome["failed"]["email"].startswith(expected), outcome["failed"]["email"]
    assert PASSWORD not in outcome["failed"]["email"]
    assert outcome["sent"] == ["webhook"] and len(received) == 1
    assert smtp.messages == [] and smtp.logins == []


TOKEN = "tok-3d9a77"


@pytest.mark.parametrize("path, headers, expected", [
    ("/hooks/%s?key=%s" % (TOKEN, TOKEN), {}, "the webhook POST to http://127.0.0.1:{port}/… failed: it answered "
                                              "HTTP 500"),
    ("/a b/%s" % TOKEN, {}, "the webhook URL http://127.0.0.1:{port}/… holds a space or a control character"),
    ("/hooks", {"Authorization": "Bearer %s\nX-Extra: 1" % TOKEN},
     "the value of the webhook header Authorization is not a single line of text"),
    ("/hooks", {"Authorization": "Bearer %s é" % TOKEN + "\u2019"},
     "the webhook POST to http://127.0.0.1:{port}/… failed: the request could not be encoded (UnicodeEncodeError)"),
])
def test_webhook_errors_never_show_the_url_or_its_headers(tmp_path, path, headers, expected):
    with http_receiver(status=500) as (url, received):
        port = int(url.rsplit(":", 1)[1])
        config = {"state_file": str(tmp_path / "alerts.json"), "webhook": {"url": url + path, "headers": headers}}
        outcome = _alerts.send_alert(config, EVENT)
    assert outcome["failed"] == {"webhook": expected.format(port=port)}
    assert TOKEN not in json.dumps(outcome)
    assert not os.path.exists(config["state_file"])


@pytest.mark.parametrize("url, expected", [
    ("ftp://user:%s@files.example.org/x" % TOKEN, "the ping URL ftp://files.example.org/… is not an http(s) URL"),
    ("hc-ping.example.org/%s" % TOKEN, "the ping URL (a URL without a scheme or a host) is not an http(s) URL"),
    ("http://[::1/%s" % TOKEN, "the ping URL (a URL that cannot be parsed) is not a valid URL"),
])
def test_bad_ping_urls_are_named_without_their_token(url, expected):
    assert _alerts.ping(url, "fail", "log tail") == expected


def test_a_failed_ping_names_its_url_without_the_token():
    with http_receiver(status=404) as (url, received):
        answer = _alerts.ping("%s/ping/%s" % (url, TOKEN), "fail", "log tail")
    assert answer == "the ping POST to %s/… failed: it answered HTTP 404" % url
    assert [path for path, _body in received] == ["/ping/%s/fail" % TOKEN]


def test_redact_url_keeps_the_scheme_host_and_port_only():
    assert _alerts.redact_url("https://user:pw@hc.example.org:8443/ping/abc?x=1#f") == "https://hc.example.org:8443/…"
    assert _alerts.redact_url("http://[fe80::1]/hook") == "http://[fe80::1]/…"
