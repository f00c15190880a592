# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest: the archive's first member, one JSON line per entry with its SHA-256.

The archive hashes each file while it streams it, so the digest is that of exactly the bytes stored;
the manifest is written last, into room kept for it at the artifact's start. Restore and full verify check every file
against it while reading; skip_unchanged compares its digest with the newest backup's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from json.encoder import encode_basestring_ascii

from ._errors import IntegrityError, UsageError
from ._fileio import hash_file

MANIFEST_NAME = ".lifeboat-manifest.json"
FORMAT = "lifeboat-manifest/1"
# A restore reads the manifest whole to plan: a header claiming more is refused unread (a hostile artifact must not
# exhaust memory), and a backup whose manifest would be larger is refused when it is made, never when restored.
MAX_SIZE = 1 << 30  # about five million entries
# One encoder for every line: json.dumps with options builds a new one per call.
_RECORD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
# A file's line, exactly as _RECORD_ENCODER writes it (sorted keys), in a quarter of the time: most lines are files.
_FILE_LINE = '{"gid":%d,"mode":%d,"mtime_ns":%d,"path":%s,"sha256":"%s","size":%d,"type":"file","uid":%d}'
# The same in an incremental backup, with the id of the backup of its chain that holds the file's content.
_HELD_FILE_LINE = ('{"gid":%d,"holder":"%s","mode":%d,"mtime_ns":%d,"path":%s,"sha256":"%s","size":%d,"type":"file",'
                   '"uid":%d}')
# The fields every record must have, then those of its type: (name, JSON type, lowest, highest value).
_FIELDS = (("path", str, None, None), ("type", str, None, None), ("mode", int, 0, 0o7777),
           ("uid", int, 0, 2 ** 32 - 1), ("gid", int, 0, 2 ** 32 - 1), ("mtime_ns", int, -2 ** 63, 2 ** 63 - 1))
_TYPE_FIELDS = {"file": (("size", int, 0, 2 ** 63 - 1), ("sha256", str, None, None)),
                "symlink": (("target", str, None, None),), "hardlink": (("target", str, None, None),)}
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_ID = re.compile(r"[A-Za-z0-9_-]+\Z")  # a backup id, safe to write into a line unescaped
_JSON_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
               dict: "an object"}


def entry_record(entry, sha256=None):
    st = entry.stat
    record = {"path": entry.arcname, "type": entry.kind, "mode": st.st_mode & 0o7777, "uid": st.st_uid,
              "gid": st.st_gid, "mtime_ns": st.st_mtime_ns}
    if entry.kind == "file":
        record["size"] = st.st_size
        record["sha256"] = sha256
    elif entry.kind in ("symlink", "hardlink"):
        record["target"] = entry.link_target
    return record


def hash_entries(entries, workers=None):
    """Digest of every regular file, on one thread per core: reads and hashlib release the GIL.

    Each thread walks its own share of the files (dealt out by size so the shares weigh the same);
    a future per file would cost more than hashing a small file.
    Returns (digests by arcname, errors by arcname) so the caller decides how an unreadable file counts.
    """
    files = sorted((entry for entry in entries if entry.kind == "file"), key=lambda entry: -entry.stat.st_size)
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    digests, errors = {}, {}

    def hash_share(share):
        for entry in share:
            try:
                digests[entry.arcname] = hash_file(entry.path)
            except OSError as exc:
                errors[entry.arcname] = exc

    threads = [threading.Thread(target=hash_share, args=(files[index::workers],)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return digests, errors


def _encode_record(record):
    if record["type"] == "file" and isinstance(record["sha256"], str):
        if len(record) == 8:
            return _FILE_LINE % (record["gid"], record["mode"], record["mtime_ns"],
                                 encode_basestring_ascii(record["path"]), record["sha256"], record["size"],
                                 record["uid"])
        if len(record) == 9 and _ID.match(record.get("holder") or ""):
            return _HELD_FILE_LINE % (record["gid"], record["holder"], record["mode"], record["mtime_ns"],
                                      encode_basestring_ascii(record["path"]), record["sha256"], record["size"],
                                      record["uid"])
    return _RECORD_ENCODER.encode(record)


def build_manifest(records, sources, chain=None):
    """Return (manifest bytes, digest of the entry lines): the digest says whether two trees are identical.

    chain: of an incremental backup, the ids of its chain, the full backup first and its own last."""
    lines = [_encode_record(record) for record in records]
    body = "\n".join(lines).encode("utf-8", "surrogateescape")
    fields = {"format": FORMAT, "sources": sources, "entries": len(records)}
    if chain is not None:
        fields.update(chain=chain, level=len(chain) - 1)
    header = json.dumps(fields, sort_keys=True)
    manifest = header.encode("utf-8") + b"\n" + body + (b"\n" if lines else b"")
    if len(manifest) > MAX_SIZE:
        raise UsageError("the %d entries selected make a manifest of %d MiB, more than the %d MiB a restore reads: "
                         "back the tree up as several jobs" % (len(records), len(manifest) >> 20, MAX_SIZE >> 20),
                         stage="manifest")
    return manifest, hashlib.sha256(body).hexdigest()


def _manifest_error(number, problem):
    return IntegrityError("manifest line %d %s" % (number, problem), stage="manifest")


def _described(value):
    """What a JSON value is, for a message: 'a string "0755"', 'null'."""
    if value is None:
        return "null"
    text = json.dumps(value)
    return "%s %s" % (_JSON_TYPES[type(value)], text if len(text) <= 40 else text[:37] + "...")


def _is_a(value, kind):
    """isinstance, but a JSON true or false is no integer (bool is a subclass of int)."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _where(record):
    return "(%r)" % record["path"] if isinstance(record.get("path"), str) else "(no path)"


def _check_record(record, number):
    """Refuse a record whose fields restore and verify could not use as they are: each must have its JSON type,
    a number its range."""
    if not isinstance(record, dict):
        raise _manifest_error(number, "is %s, not an entry object" % _described(record))
    kind = record.get("type")
    for name, expected, low, high in (_FIELDS + _TYPE_FIELDS.get(kind, ())) if isinstance(kind, str) else _FIELDS:
        if name not in record:
            raise _manifest_error(number, "%s has no %s field" % (_where(record), name))
        value = record[name]
        if type(value) is not expected and not _is_a(value, expected):  # pylint: disable=unidiomatic-typecheck
            raise _manifest_error(number, "%s has %s as its %s; it must be %s"
                                  % (_where(record), _described(value), name, _JSON_TYPES[expected]))
        if low is not None and not low <= value <= high:
            raise _manifest_error(number, "%s has %d as its %s; it must lie between %d and %d"
                                  % (_where(record), value, name, low, high))
    if kind == "file" and _SHA256.match(record["sha256"]) is None:
        raise _manifest_error(number, "%s has %s as its sha256; it must be 64 lowercase hex digits"
                              % (_where(record), _described(record["sha256"])))


def _loads(text, number):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _manifest_error(number, "is not valid JSON (%s)" % exc) from None


def _line_entry(line, number):
    entries = _loads("[" + line + "]", number)
    if len(entries) != 1:
        raise _manifest_error(number, "holds %d entries; a line holds one" % len(entries))
    return entries[0]


def parse_manifest(data):
    """Return (header, list of records) from manifest bytes; anything restore or verify could not use as it is
    raises IntegrityError naming the line."""
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    header = _loads(lines[0], 1) if lines else {}
    if not isinstance(header, dict):
        raise _manifest_error(1, "is %s, not the header object" % _described(header))
    if header.get("format") != FORMAT:
        raise IntegrityError("unknown manifest format %s" % _described(header.get("format")), stage="manifest")
    sources = header.get("sources")
    if not isinstance(sources, list) or not all(isinstance(source, str) for source in sources):
        raise _manifest_error(1, "has %s as its sources; they must be an array of strings" % _described(sources))
    numbers = [number for number, line in enumerate(lines[1:], 2) if line]
    try:  # one call for all lines is 2-3x faster than one per line
        records = json.loads("[" + ",".join(lines[number - 1] for number in numbers) + "]")
    except (ValueError, RecursionError):
        records = None
    if records is None or len(records) != len(numbers):  # line by line, to name the line at fault
        records = [_line_entry(lines[number - 1], number) for number in numbers]
    entries = header.get("entries")
    if not _is_a(entries, int) or entries != len(records):
        raise _manifest_error(1, "counts %s entries, but %d lines follow" % (_described(entries), len(records)))
    for number, record in zip(numbers, records):
        _check_record(record, number)
    _check_chain(header, zip(numbers, records))
    return header, records


def _check_chain(header, numbered):
    """An incremental backup's chain is a list of ids, and each of its files is held by one of them; a full backup
    holds every file itself."""
    chain = header.get("chain")
    if chain is not None and (not isinstance(chain, list) or not chain
                              or not all(isinstance(item, str) and _ID.match(item) for item in chain)):
        raise _manifest_error(1, "has %s as its chain; it must be an array of backup ids" % _described(chain))
    members = set(chain or ())
    for number, record in numbered:
        holder = record.get("holder")
        if record["type"] == "file" and chain is not None and holder not in members:
            raise _manifest_error(number, "%s has %s as its holder; it must be a backup of the chain"
                                  % (_where(record), _described(holder)))
        if holder is not None and (chain is None or record["type"] != "file"):
            raise _manifest_error(number, "%s names a holder, which only a file of an incremental backup has"
                                  % _where(record))


def held_here(header, records):
    """The paths (of records, a dict by path) whose members the artifact holds: all of them, but for the files an
    earlier backup of an incremental chain holds."""
    chain = header.get("chain")
    if not chain:
        return set(records)
    return {path for path, record in records.items() if record.get("holder", chain[-1]) == chain[-1]}
