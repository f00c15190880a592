# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores of any backup; restore_backup() is the one entry point, for the module and the on-host command.

request.py    the RestoreRequest and the backup it names (by path, id, latest of a job, deploy id)
plan.py       a file restore's plan from the manifest alone: units, destinations, hostile entries refused
dest.py       dest resolved once, every directory opened by descriptor without following a link, owners checked
swap.py       units staged beside their live path, swapped in by renames, swapped back on failure
extract.py    the archive's members written into staging, each checked against the manifest
payload.py    the artifact decoded into shared memory by a child process and hashed by another
files.py      a file restore from start to end: plan, safety backup, staging, verification, swap, roll-back
database.py   a database restore: safety dump, load into the engine's target, roll-back to the safety dump
"""

from __future__ import annotations

from .database import DatabaseRestore
from .files import run_restore_files
from .request import RestoreRequest, select_backup

__all__ = ["RestoreRequest", "restore_backup", "run_restore_files", "select_backup"]


def restore_backup(request, check_mode=False):
    """Restore the backup the request names, files or database; returns the result dict."""
    artifact, metadata = select_backup(request)
    if (metadata or {}).get("kind", "files") == "database":
        return DatabaseRestore(request, artifact, metadata).run(check_mode)
    return run_restore_files(request, artifact, metadata, check_mode)
