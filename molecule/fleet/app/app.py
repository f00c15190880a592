# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The notes service the fleet scenario backs up and rolls back.

GET /        {"version": <the VERSION file>, "notes": [[id, body], ...]} from its database
GET /health  200 when the notes can be read, 503 otherwise or while /etc/app/unhealthy exists

Its configuration, /etc/app/app.json, names the database: {"engine": "sqlite", "database": "/var/lib/app/app.db"}
or {"engine": "postgresql", "database": "app"} (reached through psql over the local socket, as its own role).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = '/etc/app/app.json'
UNHEALTHY_FLAG = '/etc/app/unhealthy'
QUERY = 'SELECT id, body FROM notes ORDER BY id'


def read_config():
    with open(CONFIG, encoding='utf-8') as handle:
        return json.load(handle)


def read_version():
    with open(os.path.join(HERE, 'VERSION'), encoding='utf-8') as handle:
        return handle.read().strip()


def read_notes(config):
    if config['engine'] == 'sqlite':
        connection = sqlite3.connect('file:%s?mode=ro' % config['database'], uri=True)
        try:
            return [list(row) for row in connection.execute(QUERY)]
        finally:
            connection.close()
    output = subprocess.run(['psql', '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
                             '-d', config['database'], '-c', QUERY],
                            check=True, capture_output=True, text=True, timeout=10).stdout
    return [[int(note_id), body] for note_id, body in (line.split('\t', 1) for line in output.splitlines())]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        try:
            body = {'version': read_version(), 'notes': read_notes(read_config())}
            status = 200
        except (OSError, ValueError, sqlite3.Error, subprocess.SubprocessError) as exc:
            body, status = {'error': str(exc)}, 503
        if self.path == '/health':
            healthy = status == 200 and not os.path.exists(UNHEALTHY_FLAG)
            body, status = {'healthy': healthy}, 200 if healthy else 503
        elif self.path != '/':
            body, status = {'error': 'not found'}, 404
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Requests are not logged: the journal stays readable."""


if __name__ == '__main__':
    ThreadingHTTPServer(('0.0.0.0', 8080), Handler).serve_forever()
