# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal of a file restore, and putting back what a killed restore left.

Before a file restore makes anything beside a target it writes ``<backup_dir>/.restores/files-<time>-<pid>.json``
(atomically, under the catalog lock that it holds for its whole run): each unit's target, its staging
directory, the name the live tree is moved aside to, and whether the target existed. The state is
``started`` until every unit is swapped in, then ``committed`` while the replaced trees are removed; the
journal is removed last. A journal whose restore no longer holds the lock was killed
(_catalog.restore_journals): health reports it, and the next restore from the catalog, or
``lifeboat restore --repair``, puts it right under the lock before doing anything else:

started     each target goes back to what it was before the restore (the tree moved aside is renamed back,
            a tree swapped in is discarded), staging is removed
committed   the restored trees stay (every unit was swapped in and synced), the replaced trees and staging
            are removed
"""

from __future__ import annotations

import os
import shutil

from .. import _catalog
from .._errors import IntegrityError
from .._fileio import fsync_dir
from .swap import OLD_MARKER, STAGING_MARKER

FORMAT = 1


class Journal:
    """The record of one restore in progress, in the catalog it restores from; write() before the units are made."""

    def __init__(self, catalog, backup, units):
        started = _catalog.utc_now()
        self.path = os.path.join(catalog, _catalog.RESTORES_DIR, "%s%s-%d.json"
                                 % (_catalog.FILES_JOURNAL_PREFIX, started.strftime("%Y%m%dT%H%M%SZ"), os.getpid()))
        self.record = {"format": FORMAT, "owner": _catalog.owner(), "started_at": _catalog.iso_utc(started),
                       "backup": backup, "state": "started",
                       "units": [{"target": unit.target, "staging": unit.staging_path, "aside": unit.aside_path,
                                  "existed": os.path.lexists(unit.target)} for unit in units]}

    def write(self, state):
        self.record["state"] = state
        _catalog.ensure_dir(os.path.dirname(self.path))
        _catalog.write_metadata(self.path, self.record)

    def remove(self):
        os.unlink(self.path)
        fsync_dir(os.path.dirname(self.path))


def repair(catalog):
    """Put right what killed restores from this catalog left; call under its lock. Returns what was done."""
    repaired = []
    for found in _catalog.restore_journals(catalog):
        journal = found.get("journal")
        units = [_checked(unit, found["path"]) for unit in journal["units"]] if journal else None
        if not units:
            raise IntegrityError("%s; check the targets it names by hand, then remove it"
                                 % found.get("problem", "the restore journal %s names no target" % found["path"]),
                                 stage="repair")
        committed = journal.get("state") == "committed"
        for unit in units:
            if committed:
                _finish(unit)
            else:
                _put_back(unit)
        os.unlink(found["path"])
        fsync_dir(os.path.dirname(found["path"]))
        targets = [unit["target"] for unit in journal["units"]]
        repaired.append({"journal": found["path"], "backup": journal.get("backup"), "started_at":
                         journal.get("started_at"), "state": journal.get("state"), "targets": targets,
                         "msg": "a restore of %s killed at %s: %s" % (
                             journal.get("backup"), journal.get("started_at"),
                             "kept the restored %s, removed the trees it replaced" % ", ".join(targets) if committed
                             else "put %s back as it was before that restore" % ", ".join(targets))})
    return repaired


def _checked(unit, path):
    """A unit of a journal: its staging and aside names are hidden siblings of its target, nothing else is touched."""
    target = unit.get("target") if isinstance(unit, dict) else None
    if isinstance(target, str) and os.path.isabs(target) and os.path.basename(target):
        hidden = os.path.join(os.path.dirname(target), "." + os.path.basename(target))
        names = [unit.get("staging"), unit.get("aside")]
        if all(isinstance(name, str) and "/" not in name[len(hidden):] for name in names) \
                and str(names[0]).startswith(hidden + STAGING_MARKER) and str(names[1]).startswith(hidden + OLD_MARKER):
            return dict(unit, existed=unit.get("existed") is not False)
    raise IntegrityError("the restore journal %s holds a unit that is not one a restore makes: %r; check its "
                         "targets by hand, then remove it" % (path, unit), stage="repair")


def _put_back(unit):
    """Killed before every unit was swapped in: the target goes back to what it was before the restore."""
    target, staging, aside = unit["target"], unit["staging"], unit["aside"]
    staged = os.path.join(staging, os.path.basename(target))
    swapped_in = os.path.isdir(staging) and not os.path.lexists(staged) and os.path.lexists(target)
    if os.path.lexists(aside) or (not unit["existed"] and swapped_in):
        if os.path.lexists(target):  # what the killed restore swapped in: back to staging, removed below
            os.makedirs(staging, 0o700, exist_ok=True)
            os.rename(target, staged)
        if os.path.lexists(aside):
            os.rename(aside, target)
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(os.path.dirname(target))


def _finish(unit):
    """Killed after every unit was swapped in: the restored trees stay, what they replaced goes."""
    shutil.rmtree(unit["aside"], ignore_errors=True)
    shutil.rmtree(unit["staging"], ignore_errors=True)
