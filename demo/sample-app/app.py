"""notes: the sample application of the lifeboat.backup demo.

A tiny HTTP service that serves its static page and the notes stored in data/notes.db.
Run: python3 app.py --port 8080
"""

import argparse
import http.server
import json
import os
import sqlite3

HERE = os.path.dirname(os.path.abspath(__file__))
DATABASE = os.path.join(HERE, "data", "notes.db")


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=os.path.join(HERE, "static"), **kwargs)

    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path != "/notes":
            return super().do_GET()
        with sqlite3.connect(DATABASE) as connection:
            rows = connection.execute("SELECT id, title, body FROM notes ORDER BY id").fetchall()
        payload = json.dumps([{"id": r[0], "title": r[1], "body": r[2]} for r in rows]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
