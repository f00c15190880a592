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
import re
import smtplib
import socket
import ssl
import time
import urllib.parse

from ._errors import BackupError, UsageError
from ._fileio import write_atomic

DEFAULT_COOLDOWN_MINUTES = 60
DEFAULT_STATE_FILE = "/var/lib/lifeboat/alerts.json"
PING_SUFFIXES = {"start": "/start", "success": "", "fail": "/fail"}
# How the SMTP connection is protected -> the standard port: STARTTLS on submission, implicit TLS (SMTPS), plain.
SMTP_PORTS = {"starttls": 587, "smtps": 465, "none": 25}
EMAIL_KEYS = ("host", "port", "security", "username", "password", "sender", "recipients", "timeout", "ca_file")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LINE_BREAK = re.compile(r"[\r\n\0]")


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


def redact_url(url):
    """scheme://host[:port]/… : what a message may say of a webhook or ping URL, whose path, query and user
    part often carry a token."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except (AttributeError, TypeError, ValueError):
        return "(a URL that cannot be parsed)"
    if not parts.scheme or not host:
        return "(a URL without a scheme or a host)"
    netloc = "[%s]" % host if ":" in host else host
    return "%s://%s%s/…" % (parts.scheme, netloc, ":%d" % port if port else "")


def _check_headers(headers, what):
    """Refused before a connection opens, by name only: http.client would put the value (a token) in its error."""
    if not isinstance(headers, dict):
        raise UsageError("the %s headers must be a mapping of names to values" % what)
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise UsageError("the %s header name %r is not a valid HTTP header name" % (what, name))
        if not isinstance(value, (str, int)) or _LINE_BREAK.search(str(value)):
            raise UsageError("the value of the %s header %s is not a single line of text" % (what, name))


def _post(url, body, headers=None, timeout=10, what="webhook"):
    """POST to the operator's own endpoint; http.client, so the engine needs nothing beyond the stdlib.

    Every error names the URL redacted (redact_url) and never quotes a header value."""
    where = redact_url(url)
    headers = dict(headers or {})
    _check_headers(headers, what)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except (AttributeError, TypeError, ValueError):
        raise UsageError("the %s URL %s is not a valid URL" % (what, where)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("the %s URL %s is not an http(s) URL" % (what, where))
    if any(char.isspace() or not char.isprintable() for char in url):
        raise UsageError("the %s URL %s holds a space or a control character" % (what, where))
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BackupError("the %s POST to %s failed: %s" % (what, where, str(exc) or type(exc).__name__))
    except ValueError as exc:  # an encoding error of the request: its text may quote what it could not encode
        raise BackupError("the %s POST to %s failed: the request could not be encoded (%s)"
                          % (what, where, type(exc).__name__)) from None
    finally:
        connection.close()
    if response.status >= 400:
        raise BackupError("the %s POST to %s failed: it answered HTTP %d" % (what, where, response.status))
    return response.status


def _post_json(url, document, headers=None, timeout=10):
    body = json.dumps(document, sort_keys=True).encode("utf-8")
    return _post(url, body, dict({"Content-Type": "application/json"}, **(headers or {})), timeout)


def _single_line(value, what):
    if not isinstance(value, str) or not value or _LINE_BREAK.search(value):
        raise UsageError("the email %s %r is not a single line of text: a line break in a mail header would let it "
                         "add headers of its own" % (what, value))
    return value


def _check_email(settings):
    """The email settings, checked before any connection: returns the security and the port."""
    unknown = sorted(set(settings) - set(EMAIL_KEYS))
    if unknown:
        raise UsageError("the email settings hold %s, which are not settings of lifeboat (known: %s)"
                         % (", ".join(unknown), ", ".join(EMAIL_KEYS)))
    security = settings.get("security", "starttls")
    if security not in SMTP_PORTS:
        raise UsageError("the email security %r is not one of %s" % (security, ", ".join(SMTP_PORTS)))
    if settings.get("username") and security == "none":
        raise UsageError("the email settings log in to %s without TLS, which would send the password in clear "
                         "text: set security to starttls or smtps" % settings["host"])
    recipients = settings.get("recipients")
    if not isinstance(recipients, list):
        raise UsageError("the email recipients must be a list of addresses, not %r" % (recipients,))
    _single_line(settings.get("sender"), "sender")
    for recipient in recipients:
        _single_line(recipient, "recipient")
    port = settings.get("port") or SMTP_PORTS[security]
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise UsageError("the email port %r is not a port number" % (port,))
    return security, port


def _send_email(settings, subject, body):
    security, port = _check_email(settings)
    message = email.message.EmailMessage()
    message["Subject"] = _single_line(subject, "subject")
    message["From"] = settings["sender"]
    message["To"] = ", ".join(settings["recipients"])
    message.set_content(body)
    timeout = settings.get("timeout", 10)
    where = "%s:%d (%s)" % (settings["host"], port, security)
    try:
        context = ssl.create_default_context(cafile=settings.get("ca_file")) if security != "none" else None
        if security == "smtps":
            client = smtplib.SMTP_SSL(settings["host"], port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(settings["host"], port, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=context)
            if settings.get("username"):
                client.login(settings["username"], settings.get("password", ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise BackupError("the email via %s failed: %s" % (where, str(exc) or type(exc).__name__))
    except ValueError as exc:  # e.g. a password smtplib cannot encode: its text would quote part of it
        raise BackupError("the email via %s failed: a setting could not be encoded (%s)"
                          % (where, type(exc).__name__)) from None


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
        except BackupError as exc:
            failed["webhook"] = str(exc)
    settings = config.get("email") or {}
    if settings.get("host") and settings.get("recipients"):
        try:
            _send_email(settings, _subject(event), _body(event))
            sent.append("email")
        except BackupError as exc:
            failed["email"] = str(exc)
    if sent:
        _remember(config, key, now)
    return {"sent": sent, "failed": failed, "suppressed": False, "key": key}


def ping(url, state, body=None, timeout=10):
    """A healthchecks-style ping: URL/start, URL, URL/fail. Never raises: monitoring must not fail a backup.

    Returns the HTTP status, or why the ping failed (the URL redacted), or None without a URL."""
    if not url:
        return None
    target = url.rstrip("/") + PING_SUFFIXES[state]
    try:
        return _post(target, (body or "").encode("utf-8")[-10000:], timeout=timeout, what="ping")
    except BackupError as exc:
        return str(exc)
