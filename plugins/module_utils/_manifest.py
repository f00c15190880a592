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
import threading
from json.encoder import encode_basestring_ascii

from ._fileio import hash_file

MANIFEST_NAME = ".lifeboat-manifest.json"
FORMAT = "lifeboat-manifest/1"
# One encoder for every line: json.dumps with options builds a new one per call.
_RECORD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
# A file's line, exactly as _RECORD_ENCODER writes it (sorted keys), in a quarter of the time: most lines are files.
_FILE_LINE = '{"gid":%d,"mode":%d,"mtime_ns":%d,"path":%s,"sha256":"%s","size":%d,"type":"file","uid":%d}'


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
    if record["type"] == "file" and len(record) == 8 and isinstance(record["sha256"], str):
        return _FILE_LINE % (record["gid"], record["mode"], record["mtime_ns"], encode_basestring_ascii(record["path"]),
                             record["sha256"], record["size"], record["uid"])
    return _RECORD_ENCODER.encode(record)


def build_manifest(records, sources):
    """Return (manifest bytes, digest of the entry lines): the digest says whether two trees are identical."""
    lines = [_encode_record(record) for record in records]
    body = "\n".join(lines).encode("utf-8", "surrogateescape")
    header = json.dumps({"format": FORMAT, "sources": sources, "entries": len(records)}, sort_keys=True)
    return header.encode("utf-8") + b"\n" + body + (b"\n" if lines else b""), hashlib.sha256(body).hexdigest()


def parse_manifest(data):
    """Return (header, list of records) from manifest bytes."""
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("format") != FORMAT:
        raise ValueError("unknown manifest format %r" % header.get("format"))
    entries = [line for line in lines[1:] if line]
    records = json.loads("[" + ",".join(entries) + "]")  # one call instead of one per line: 2-3x faster
    if len(records) != len(entries):
        raise ValueError("a manifest line holds more than one entry")
    return header, records
