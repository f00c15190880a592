# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fleet's hosts send to the controller, recorded for the tests: an SMTP server and an HTTP endpoint.

    receivers.py start DIR     serve on the fleet's bridge address in the background; returns once both listen
    receivers.py stop DIR      stop the server that `start` recorded in DIR/receivers.pid

Each SMTP message is a line of DIR/mail.jsonl, each HTTP POST (webhook, pings) a line of DIR/http.jsonl.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ADDRESS = '169.254.77.1'
SMTP_PORT = 2525
HTTP_PORT = 8025
_WRITE_LOCK = threading.Lock()


def record(path, document):
    with _WRITE_LOCK, open(path, 'a', encoding='utf-8') as handle:
        handle.write(json.dumps(document, sort_keys=True) + '\n')


class Mailbox:
    """aiosmtpd handler: accepts every message."""

    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, _server, _session, envelope):  # noqa: N802  (the name aiosmtpd calls)
        record(self.path, {'from': envelope.mail_from, 'to': list(envelope.rcpt_tos),
                           'data': envelope.content.decode('utf-8', 'replace')})
        return '250 Message accepted for delivery'


class Endpoint(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 200 and records it."""

    def do_POST(self):  # noqa: N802  (the name http.server calls)
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        record(self.server.record_path, {'path': self.path, 'headers': dict(self.headers.items()),
                                         'body': body.decode('utf-8', 'replace')})
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'OK')

    def log_message(self, *_args):
        pass


def serve(directory):
    from aiosmtpd.controller import Controller  # only the served process needs it

    smtp = Controller(Mailbox(os.path.join(directory, 'mail.jsonl')), hostname=ADDRESS, port=SMTP_PORT)
    smtp.start()
    server = http.server.ThreadingHTTPServer((ADDRESS, HTTP_PORT), Endpoint)
    server.record_path = os.path.join(directory, 'http.jsonl')
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        smtp.stop()


def listening(port):
    try:
        with socket.create_connection((ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False


def start(directory):
    os.makedirs(directory, exist_ok=True)
    stop(directory)
    for name in ('mail.jsonl', 'http.jsonl'):
        open(os.path.join(directory, name), 'w', encoding='utf-8').close()
    with open(os.path.join(directory, 'receivers.log'), 'w', encoding='utf-8') as log:
        process = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'serve', directory],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(directory, 'receivers.pid'), 'w', encoding='utf-8') as handle:
        handle.write('%d\n' % process.pid)
    deadline = time.monotonic() + 30
    while not (listening(SMTP_PORT) and listening(HTTP_PORT)):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit('receivers did not start: see %s' % os.path.join(directory, 'receivers.log'))
        time.sleep(0.2)


def stop(directory):
    """SIGTERM to the recorded process, only if it is still this script serving DIR."""
    pid_file = os.path.join(directory, 'receivers.pid')
    try:
        with open(pid_file, encoding='utf-8') as handle:
            pid = int(handle.read())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read().split(b'\0')
    except (OSError, ValueError):
        argv = []
    if os.fsencode(os.path.abspath(__file__)) in argv and os.fsencode(directory) in argv:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    if os.path.exists(pid_file):
        os.unlink(pid_file)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', choices=('start', 'stop', 'serve'))
    parser.add_argument('directory')
    args = parser.parse_args()
    directory = os.path.abspath(args.directory)
    {'start': start, 'stop': stop, 'serve': serve}[args.action](directory)


if __name__ == '__main__':
    main()
