"""Create the sample application's database with a few notes (run by the demo, not by the app)."""

import os
import sqlite3
import sys

path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
with sqlite3.connect(path) as connection:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT)")
    connection.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num TEXT PRIMARY KEY)")
    connection.execute("DELETE FROM notes")
    connection.executemany("INSERT INTO notes (title, body) VALUES (?, ?)",
                           [("note %d" % n, "body of note %d " % n * 20) for n in range(1, 501)])
    connection.execute("DELETE FROM alembic_version")
    connection.execute("INSERT INTO alembic_version VALUES ('3f2a9c1d7e44')")
