# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerts when a backup fails or the catalog is unhealthy: webhook, email, healthchecks-style pings.

One channel failing never stops the others; a cooldown per alert key keeps a broken
job from sending a message every few minutes.
"""

from __future__ import annotations

import email.message
import http.client
import json
import os
import smtplib
import socket
import ssl
import time
import urllib.parse

from ._fileio import write_atomic

DEFAULT_COOLDOWN_MINUTES = 60
DEFAULT_STATE_FILE = "/var/lib/lifeboat/alerts.json"
PING_SUFFIXES = {"start": "/start", "success": "", "fail": "/fail"}


def _load_state(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def in_cooldown(config, key, now=None):
    """True when an alert with this key was sent less than the cooldown ago."""
    now = time.time() if now is None else now
    minutes = config.get("cooldown_minutes", DEFAULT_COOLDOWN_MINUTES)
    last = _load_state(config.get("state_file", DEFAULT_STATE_FILE)).get(key)
    return last is not None and now - last < minutes * 60


def _remember(config, key, now):
    path = config.get("state_file", DEFAULT_STATE_FILE)
    state = _load_state(path)
    state[key] = now
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomic(path, json.dumps(state, sort_keys=True).encode("utf-8"))


def _post(url, body, headers=None, timeout=10):
    """POST to the operator's own endpoint; http.client, so the engine needs nothing beyond the stdlib."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%s is not an http(s) URL" % url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        response.read()
        if response.status >= 400:
            raise ValueError("%s answered HTTP %d" % (url, response.status))
        return response.status
    finally:
        connection.close()


def _post_json(url, document, headers=None, timeout=10):
    body = json.dumps(document, sort_keys=True).encode("utf-8")
    return _post(url, body, dict({"Content-Type": "application/json"}, **(headers or {})), timeout)


def _send_email(settings, subject, body):
    message = email.message.EmailMessage()
    message["Subject"] = subject
    message["From"] = settings["sender"]
    message["To"] = ", ".join(settings["recipients"])
    message.set_content(body)
    timeout = settings.get("timeout", 10)
    with smtplib.SMTP(settings["host"], settings.get("port", 25), timeout=timeout) as client:
        if settings.get("starttls", False):
            client.starttls(context=ssl.create_default_context(cafile=settings.get("ca_file")))
        if settings.get("username"):
            client.login(settings["username"], settings.get("password", ""))
        client.send_message(message)


def _subject(event):
    return "[lifeboat] %s on %s: %s" % (event["event"], event["host"], event.get("job") or "catalog")


def _body(event):
    lines = [event["message"], ""]
    for problem in event.get("problems", []):
        lines.append("- [%s] %s" % (problem.get("level"), problem.get("message")))
    lines.extend(["", "host: %s" % event["host"], "time: %s" % event["at"]])
    return "\n".join(lines) + "\n"


def send_alert(config, event, now=None):
    """Deliver event on every configured channel unless its key is cooling down; returns what happened."""
    now = time.time() if now is None else now
    event = dict(event, host=event.get("host") or config.get("host") or socket.getfqdn(),
                 at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
    key = event.get("key") or "%s:%s" % (event["event"], event.get("job") or "")
    if in_cooldown(config, key, now):
        return {"sent": [], "failed": {}, "suppressed": True, "key": key}
    sent, failed = [], {}
    webhook = config.get("webhook") or {}
    if webhook.get("url"):
        try:
            _post_json(webhook["url"], event, webhook.get("headers"), webhook.get("timeout", 10))
            sent.append("webhook")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failed["webhook"] = str(exc)
    settings = config.get("email") or {}
    if settings.get("host") and settings.get("recipients"):
        try:
            _send_email(settings, _subject(event), _body(event))
            sent.append("email")
        except (OSError, smtplib.SMTPException) as exc:
            failed["email"] = str(exc)
    if sent:
        _remember(config, key, now)
    return {"sent": sent, "failed": failed, "suppressed": False, "key": key}


def ping(url, state, body=None, timeout=10):
    """A healthchecks-style ping: URL/start, URL, URL/fail. Never raises: monitoring must not fail a backup."""
    if not url:
        return None
    target = url.rstrip("/") + PING_SUFFIXES[state]
    try:
        return _post(target, (body or "").encode("utf-8")[-10000:], timeout=timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return str(exc)
