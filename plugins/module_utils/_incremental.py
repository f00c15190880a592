# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incremental file backups: chains that GNU tar restores by hand.

A chain is a full backup (level 0) and the backups made on top of it, each on the one before (level n + 1 on
level n). Each stores the files that changed since the one before, whole, and every directory with its listing
(GNU tar's GNU.dumpdir pax record: Y stored here, N stored earlier, D a directory), so that
``tar --listed-incremental=/dev/null -x`` of each artifact in order recreates the tree, removing what was deleted.
The manifest of each backup still describes the whole tree: every file with its digest and the id of the backup
that holds its content (``holder``).

Which files changed is told without reading them, as restic tells it: type, size, mtime, ctime and inode against
the state the chain's newest backup left in ``<backup_dir>/.incremental/<job>.json`` (0600, never replicated: it
holds what the host has anyway, its files' names and digests). A tool that puts an old mtime back still changes the
ctime, and equality, not order, is compared, so a clock that went back does not hide a change. Without a usable
state (none, its backup gone or damaged, other sources or rules, the chain too old or too long) the backup is a
full one, and says why.
"""

from __future__ import annotations

import json
import os

from . import _catalog
from ._errors import BackupError, IntegrityError, NotFoundError, UsageError, WrongKeyError
from ._fileio import write_atomic
from ._retention import parse_duration
from ._compression import PADDING_MIN
from ._tarstream import BLOCK, DUMPDIR_KEY, MAX_PAX_SIZE

STATE_DIR = ".incremental"
STATE_FORMAT = "lifeboat-incremental-state/1"
DEFAULT_FULL_EVERY = "7d"
DEFAULT_MAX_CHAIN = 30
# The manifest's room of a backup of a chain exceeds its estimate from the one before by 1/16 of it: the one before
# compressed as well, and what changed is counted apart. Should it still not fit, the backup is made again.
ESTIMATE_MARGIN = 16


class Chain:
    """What a new backup of a chain builds on: the backups before it (oldest first) and the state of the newest."""

    def __init__(self, members, files, manifest=None):
        self.members = members  # ids, the full backup first
        self.files = files  # archive path -> (size, mtime_ns, ctime_ns, inode, sha256, holder)
        self.manifest = manifest or {}  # the newest backup's: entries, compression, level, size (compressed)

    def unchanged(self, entry):
        """(sha256, holder) of a file the newest backup already has, as it is now; None if it must be stored."""
        known = self.files.get(entry.arcname)
        if known is None:
            return None
        st = entry.stat
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != tuple(known[:4]):
            return None
        return known[4], known[5]


def state_path(backup_dir, job):
    return os.path.join(backup_dir, STATE_DIR, _catalog.check_job_name(job) + ".json")


def check_options(full_every, max_chain):
    """The chain's limits, checked when the request is made: (Duration, int)."""
    duration = parse_duration(full_every)
    if duration.is_zero():
        raise UsageError("full_every %r is zero: give a duration such as 7d" % full_every)
    if not isinstance(max_chain, int) or isinstance(max_chain, bool) or max_chain < 1:
        raise UsageError("max_chain must be a whole number of at least 1, not %r" % (max_chain,))
    return duration, max_chain


def find_chain(request, selection, now):
    """(Chain or None, why a full backup is made) for a new incremental backup of request under the lock."""
    try:
        with open(state_path(request.backup_dir, request.job), "r", encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None, "the job has no incremental backup yet"
    except (OSError, ValueError) as exc:
        return None, "the chain's state cannot be read (%s)" % exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        return None, "the chain's state has an unknown format"
    members = state.get("chain") or []
    found = {metadata["id"]: metadata for metadata in _catalog.list_metadata(request.backup_dir, request.job)}
    for backup_id in members:
        if backup_id not in found:
            return None, "backup %s of the chain is no longer in the catalog" % backup_id
        if _catalog.verification_state(found[backup_id]) == "failed":
            return None, "backup %s of the chain failed its verification" % backup_id
    if not members:
        return None, "the chain's state names no backup"
    if state.get("selection") != selection:
        return None, "the sources or the selection rules changed since backup %s" % members[-1]
    cutoff = request.full_every.before(now)  # None: before year 1
    if cutoff is not None and cutoff >= _catalog.backup_time(found[members[0]]):
        return None, "the chain's full backup %s is older than full_every (%s)" % (members[0], request.full_every)
    if len(members) > request.max_chain:
        return None, "the chain holds %d incremental backups, as many as max_chain allows" % (len(members) - 1)
    return Chain(members, state.get("files") or {}, state.get("manifest")), None


def write_state(request, members, selection, records, entries, manifest_size):
    """The state the next backup of the chain compares with: written once the backup is in the catalog.
    manifest_size: the bytes its manifest took at the artifact's start, from which the next estimates its own."""
    stats = {entry.arcname: entry.stat for entry in entries if entry.kind == "file"}
    files = {}
    for record in records:
        st = stats.get(record["path"])
        if record["type"] == "file" and st is not None:
            files[record["path"]] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, record["sha256"],
                                     record["holder"])
    document = {"format": STATE_FORMAT, "chain": members, "selection": selection, "files": files,
                "manifest": {"entries": len(records), "compression": request.compression,
                             "level": request.compression_level, "size": manifest_size}}
    _catalog.ensure_dir(os.path.join(request.backup_dir, STATE_DIR))
    write_atomic(state_path(request.backup_dir, request.job), json.dumps(document, separators=(",", ":")).encode("utf-8", "surrogateescape"))


def earlier_backups(metadata):
    """[(artifact, metadata)] of the backups before this one in its chain, the full backup first: restoring or
    verifying it needs them all. One that is missing or cannot be used raises, naming it."""
    needs = _catalog.chain_needs(metadata or {})  # the catalog refuses metadata whose chain does not end with it
    catalog = os.path.dirname(os.path.dirname(metadata["_metadata_path"])) if needs else None
    found = []
    for level, backup_id in enumerate(needs):
        try:
            artifact, earlier = _catalog.locate(catalog, backup_id)
        except BackupError as exc:
            raise NotFoundError("backup %s is level %d of an incremental chain and needs %s (level %d), which cannot "
                                "be used: %s" % (metadata["id"], len(needs), backup_id, level, exc.msg),
                                stage="chain") from None
        if (earlier.get("chain") or [backup_id]) != list(needs[:level + 1]):
            raise IntegrityError("backup %s needs %s (level %d of its chain), but that backup's metadata names "
                                 "another chain" % (metadata["id"], backup_id, level), stage="chain")
        found.append((artifact, earlier))
    return found


def chain_fault(exc):
    """What an error reading an earlier backup of a chain says of it: a wrong key is not damage."""
    return "the key given does not open" if isinstance(exc, WrongKeyError) else "is damaged"


def dumpdir(children):
    """The GNU.dumpdir value of a directory from its children: (name, kind, stored here), sorted by name."""
    listing = b"".join(("D" if kind == "dir" else "Y" if stored else "N").encode("ascii")
                       + name.encode("utf-8", "surrogateescape") + b"\0"
                       for name, kind, stored in sorted(children)) + b"\0"
    if len(listing) > MAX_PAX_SIZE - 64:
        raise UsageError("a directory holds too many entries (%d) for its listing to fit in an incremental backup; "
                         "back it up as full backups" % len(children), stage="manifest")
    return listing


class Increment:
    """How a backup made with incremental writes its members: which files it stores, each directory's listing, the
    holder of each file. Level 0 (no chain) stores everything, with the listings."""

    def __init__(self, chain, entries, full_reason=None):
        self.chain = chain
        self.full_reason = full_reason
        self.earlier = chain.members if chain else []
        self.unchanged = {}
        if chain is not None:
            for entry in entries:
                found = chain.unchanged(entry) if entry.kind == "file" else None
                if found is not None:
                    self.unchanged[entry.arcname] = found
        directories = {entry.arcname for entry in entries if entry.kind == "dir"}
        self._children = {name: [] for name in directories}
        for entry in entries:
            parent, _sep, base = entry.arcname.rpartition("/")
            if parent in directories:
                self._children[parent].append((base, entry.kind, entry.arcname not in self.unchanged))
        self.stored_files = sum(1 for entry in entries if entry.kind == "file" and entry.arcname not in self.unchanged)
        self.backup_id = None  # known once the backup is being written

    @property
    def level(self):
        return len(self.earlier)

    def members(self):
        """The chain of the backup written: the ids it needs, the full backup first, and its own last."""
        return self.earlier + [self.backup_id]

    def room_estimate(self, request, entries):
        """The room for this backup's manifest, from the size of its predecessor's (same compression), grown with
        the number of entries, a new digest per file stored and a margin; None without one to go by."""
        known = self.chain.manifest if self.chain is not None else {}
        if not known.get("size") or not known.get("entries") or request.compression == "none" or \
                (known.get("compression"), known.get("level")) != (request.compression, request.compression_level):
            return None
        scaled = known["size"] * max(entries, 1) // known["entries"]
        return scaled + scaled // ESTIMATE_MARGIN + self.stored_files * 48 + len(self.earlier) * 40 + 2 * BLOCK \
            + PADDING_MIN[request.compression]

    def to_read(self, entries):
        """The entries whose content this backup stores."""
        return [entry for entry in entries if entry.arcname not in self.unchanged]

    def pax_records(self, entry):
        """The pax records of a directory's member: its listing."""
        return [(DUMPDIR_KEY, dumpdir(self._children[entry.arcname]))]
