# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of artifacts: checksum (file vs sidecar), full (every member vs the manifest), source (live tree)."""

from __future__ import annotations

import os

from . import _catalog, _selection
from ._errors import CryptoError, IntegrityError, NotFoundError, UsageError, WrongKeyError
from ._fileio import hash_file
from ._incremental import chain_fault, earlier_backups
from ._manifest import MANIFEST_NAME, MAX_SIZE as MANIFEST_MAX_SIZE, held_here, parse_manifest
from ._members import MemberCheck, check_entries, records_by_path
from ._pipeline import artifact_layers, header_result, open_payload
from ._tarstream import TarReader

LEVELS = ("checksum", "full", "source")
_RANK = {"checksum": 1, "full": 2, "source": 2}
# How a verification recorded in the metadata was made. READ_BACK: by the backup itself, which read the artifact
# back from the disk before giving it its name and checked it in full with the file key it had just generated (so
# it says the file was written right, not that the operator's identity opens it). VERIFY: by a later verify run on
# the stored artifact, in full with the operator's identity or passphrase.
READ_BACK = "read-back"
VERIFY = "verify"


def expected_sha256(artifact, metadata):
    """The digest the .sha256 sidecar records for the artifact (and that the metadata agrees with)."""
    sidecar = _catalog.strip_artifact_suffix(artifact) + _catalog.CHECKSUM_SUFFIX
    expected, name = _catalog.read_checksum(sidecar)
    if name != os.path.basename(artifact):
        raise IntegrityError("the checksum sidecar %s names %s, not %s" % (sidecar, name, os.path.basename(artifact)),
                             stage="checksum")
    if metadata and metadata.get("sha256") not in (None, expected):
        raise IntegrityError("the metadata of %s records a different SHA-256 than its sidecar" % artifact,
                             stage="checksum")
    return expected


def compare_checksum(artifact, expected, actual):
    if actual != expected:
        raise IntegrityError("artifact %s does not match its checksum (expected %s, found %s): the file is "
                             "corrupted or was changed" % (artifact, expected, actual), stage="checksum")
    return actual


class _TreeCheck:
    """Compares the members of an archive with its manifest while they stream past, with the checks restore makes.

    payload: the PayloadProcess (or InlinePayload) the members are read from, whose hasher hashes each file.
    written: the manifest a backup has just written, (its bytes, its records, its chain or None), when it reads its
    artifact back: the manifest read must be those bytes, and their records need not be parsed and checked again."""

    def __init__(self, payload, written=None):
        self.hash_last = payload.hash_last
        self.written = written
        self.records = None
        self.held = None  # the paths whose members this artifact holds (not those of an earlier backup of its chain)
        self.check = None
        self.hashed = []  # the names of the files read, in the order of the hasher's keys
        self.members = 0
        self.bytes = 0

    def member(self, member, reader):
        if self.records is None:
            if member.name != MANIFEST_NAME:
                raise IntegrityError("the first member is %s, not the manifest" % member.name, stage="manifest")
            data = reader.read_all()
            if self.written is None:
                header, records = parse_manifest(data)
                self.records = records_by_path(records)
                # setuid and setgid bits are the restore's choice (preserve_special), not a defect of the backup
                check_entries(header, self.records, self.records, preserve_special=True)
            else:
                manifest, records, chain = self.written
                # uncompressed, the manifest's room is blank lines after it, which a reader skips
                if data[:len(manifest)] != manifest or data[len(manifest):].strip(b"\n"):
                    raise IntegrityError("the manifest differs from the one written", stage="manifest")
                header = {"chain": chain}
                self.records = {record["path"]: record for record in records}
            self.held = held_here(header, self.records)
            self.check = MemberCheck(self.records, self.held)
            return
        self.members += 1
        name, _record = self.check.member(member)
        if member.kind == "file":
            key, read, hash_last = len(self.hashed), reader.read, self.hash_last
            self.hashed.append(name)
            chunk = read(1 << 20)
            while chunk:
                hash_last(key)
                self.bytes += len(chunk)
                chunk = read(1 << 20)

    def finish(self, digests, empty_sha256):
        """digests: the hasher's, once the whole payload was read; a file of no bytes has none, empty_sha256."""
        if self.records is None:
            raise IntegrityError("the archive has no manifest", stage="manifest")
        mismatched = [name for key, name in enumerate(self.hashed)
                      if digests.get(key, empty_sha256) != self.records[name]["sha256"]]
        self.check.finish(self.held, mismatched)


def check_full(artifact, metadata, key=None):
    """Decrypt, decompress and read everything; compare each member (or the whole payload) with what was recorded."""
    with open(artifact, "rb") as handle:
        return check_full_stream(handle, artifact_layers(artifact, metadata), metadata, key)


def check_full_stream(handle, layers, metadata, key=None, written=None):
    """check_full of an artifact read from handle (a file, a vault's stream), layers: (compression, encrypted);
    written: the manifest a backup has just written (_TreeCheck), when it reads its artifact back.

    As a restore reads it: decoded in one child process, hashed in another, the tar parsed here (PayloadProcess).
    """
    # Imported here: the restore imports this module.
    from ._restore.payload import EMPTY_SHA256, open_payload_reader  # pylint: disable=import-outside-toplevel
    with open_payload_reader(handle, *layers, key) as payload:
        if metadata is not None and metadata.get("kind") != "files":
            size = 0
            chunk = payload.read()
            while chunk:
                payload.hash_last(0)
                size += len(chunk)
                chunk = payload.read()
            if metadata.get("content_sha256") not in (None, payload.digests().get(0, EMPTY_SHA256)):
                raise IntegrityError("the decrypted payload does not match the recorded content SHA-256",
                                     stage="payload")
            return {"members": 1, "bytes": size, "raw_sha256": payload.raw_sha256}
        check = _TreeCheck(payload, written)
        tar = TarReader(payload)
        for member in tar:
            check.member(member, tar)
        try:
            payload.drain()  # to the end of the payload: the layers check their ends, the raw digest covers the file
        except (IntegrityError, CryptoError):
            check.finish(payload.digests(), EMPTY_SHA256)  # a member that differs is named first, the layer after
            raise
        check.finish(payload.digests(), EMPTY_SHA256)
        return {"members": check.members, "bytes": check.bytes, "raw_sha256": payload.raw_sha256}


def manifest_member(tar):
    """The bytes of the manifest, which must be the first member of the TarReader tar."""
    member = next(tar, None)
    if member is None or member.name != MANIFEST_NAME:
        raise IntegrityError("the archive does not start with a manifest", stage="manifest")
    if member.size > MANIFEST_MAX_SIZE:
        raise IntegrityError("the manifest claims %d bytes, more than the %d a backup can hold: the artifact is "
                             "damaged or was crafted" % (member.size, MANIFEST_MAX_SIZE), stage="manifest")
    return tar.read_all()


def read_manifest_bytes(artifact, metadata, key=None):
    """The manifest member's bytes: only the start of the artifact is decrypted."""
    with open(artifact, "rb") as handle:
        return manifest_bytes_of(handle, artifact_layers(artifact, metadata), key)


def manifest_bytes_of(handle, layers, key=None):
    """read_manifest_bytes of an artifact read from handle, layers: (compression, encrypted)."""
    payload, _raw = open_payload(handle, *layers, key)
    return manifest_member(TarReader(payload))


def read_manifest(artifact, metadata, key=None):
    """(header, records) of the manifest; the rest of the artifact is not decrypted."""
    return parse_manifest(read_manifest_bytes(artifact, metadata, key))


def compare_source(artifact, metadata, key=None):
    """Added, changed and removed paths of the live tree against the backup's manifest.

    A file counts as changed when its type, mode or content differs; content is hashed only when size or mtime
    differ from the manifest, the same shortcut restic and rsync take.
    """
    header, records = read_manifest(artifact, metadata, key)
    options = (metadata or {}).get("selection", {})
    sources = [source for source in header.get("sources", []) if os.path.lexists(source)]
    live = _selection.select(sources, **options).entries if sources else []
    recorded = {record["path"]: record for record in records}
    current = {entry.arcname: entry for entry in live}
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    changed = sorted(path for path in set(current) & set(recorded) if _differs(recorded[path], current[path]))
    return {"added": added, "changed": changed, "removed": removed}


def _differs(record, entry):
    st = entry.stat
    if record["type"] != entry.kind or record["mode"] != st.st_mode & 0o7777:
        return True
    if entry.kind in ("symlink", "hardlink"):
        return record.get("target") != entry.link_target
    if entry.kind != "file":
        return False
    if record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns:
        return False
    try:
        return hash_file(entry.path) != record["sha256"]
    except OSError:
        return True


def artifact_header(backup_dir=None, backup_id=None, path=None):
    """The age header of the backup verify would check, for the holder of the key to unwrap its file key."""
    artifact, metadata = _catalog.locate(backup_dir, backup_id, path)
    with open(artifact, "rb") as handle:
        return header_result((metadata or {}).get("id"), artifact, handle, artifact_layers(artifact, metadata)[1],
                             earlier_backups(metadata))


def verify(backup_dir=None, backup_id=None, path=None, level="checksum", key=None, check_mode=False):
    """Run one verification level and record the outcome in the backup's metadata."""
    if level not in LEVELS:
        raise UsageError("level must be one of %s" % ", ".join(LEVELS))
    artifact, metadata = _catalog.locate(backup_dir, backup_id, path)
    result = {"path": artifact, "id": (metadata or {}).get("id"), "level": level}
    try:
        earlier = _verify_chain(metadata, level, key)
        if earlier:
            result["chain"] = [member["id"] for _artifact, member in earlier] + [metadata["id"]]
        expected = expected_sha256(artifact, metadata)
        if level == "full":
            # One read serves both: the deep check names the damaged member or chunk, the digest the checksum.
            try:
                result.update(check_full(artifact, metadata, key))
            except (IntegrityError, CryptoError) as exc:
                intact = hash_file(artifact) == expected
                if isinstance(exc, WrongKeyError) and intact:
                    raise
                # A damaged recipient stanza looks like a wrong key; the checksum tells the two apart.
                raise IntegrityError("%s (the file %s its recorded checksum)"
                                     % (exc.msg, "matches" if intact else "does not match"), stage=exc.stage)
            result["sha256"] = compare_checksum(artifact, expected, result.pop("raw_sha256"))
        else:
            result["sha256"] = compare_checksum(artifact, expected, hash_file(artifact))
        if level == "source":
            result["differences"] = compare_source(artifact, metadata, key)
        if earlier and level != "checksum":
            _check_holders(read_manifest(artifact, metadata, key), earlier, key)
    except (IntegrityError, CryptoError, NotFoundError) as exc:
        # A wrong key is not a damaged backup: only damage is recorded as a failed verification.
        if not isinstance(exc, WrongKeyError):
            _record(metadata, "failed", level, exc.msg, check_mode)
        raise type(exc)("artifact %s failed %s verification: %s" % (artifact, level, exc.msg),
                        stage=exc.stage or level)
    result["changed"] = _record(metadata, "verified", level, None, check_mode)
    result["verified"] = True
    result["msg"] = "artifact %s passed %s verification" % (os.path.basename(artifact), level)
    return result


def _verify_chain(metadata, level, key):
    """The earlier backups of an incremental backup's chain, each checked as the backup itself is (its checksum;
    at level full or source, every member against its own manifest): a backup is only as good as its chain. A
    member that is missing or damaged fails the backup, naming it."""
    earlier = earlier_backups(metadata)
    for artifact, member in earlier:
        try:
            expected = expected_sha256(artifact, member)
            digest = check_full(artifact, member, key)["raw_sha256"] if level != "checksum" else hash_file(artifact)
            compare_checksum(artifact, expected, digest)
        except (IntegrityError, CryptoError) as exc:
            raise type(exc)("%s needs %s (level %d of its chain), which %s: %s"
                            % (metadata["id"], member["id"], member.get("level", 0), chain_fault(exc), exc.msg),
                            stage="chain") from None
    return earlier


def _check_holders(manifest, earlier, key):
    """Each file the manifest says an earlier backup of the chain holds is there with the same SHA-256."""
    _header, records = manifest
    for artifact, member in earlier:
        wanted = {record["path"]: record["sha256"] for record in records if record.get("holder") == member["id"]}
        if not wanted:
            continue
        held = {record["path"]: record.get("sha256") for record in read_manifest(artifact, member, key)[1]
                if record["type"] == "file" and record.get("holder", member["id"]) == member["id"]}
        wrong = sorted(path for path, digest in wanted.items() if held.get(path) != digest)
        if wrong:
            raise IntegrityError("%d file(s) the manifest says %s holds are not there as recorded, first %s"
                                 % (len(wrong), member["id"], wrong[0]), stage="chain")


def _record(metadata, state, level, problem, check_mode):
    """Write the verification state into the metadata; True when that changed what was recorded."""
    if metadata is None:
        return False
    current = metadata.get("verification", {})
    if current.get("state") == state == "verified":
        # A shallower check adds nothing; one as deep replaces a read-back, since it is later and used the operator's key.
        deeper = _RANK.get(current.get("level"), 0) - _RANK[level]
        if deeper > 0 or (deeper == 0 and current.get("method", VERIFY) == VERIFY):
            return False
    if current.get("state") == state == "failed" and current.get("problem") == problem:
        return False
    if check_mode:
        return True
    metadata["verification"] = {"state": state, "level": level, "method": VERIFY,
                                "at": _catalog.iso_utc(_catalog.utc_now())}
    if problem:
        metadata["verification"]["problem"] = problem
    path = metadata.pop("_metadata_path")
    if os.path.exists(path):  # a prune may have removed the backup meanwhile; never resurrect its metadata
        _catalog.write_metadata(path, metadata)
    metadata["_metadata_path"] = path
    return True
