# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backing up file trees: selection -> manifest -> tar -> artifact -> sidecars."""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import io
import os
import time

from . import _catalog, _incremental, _selection
from ._errors import SourceError, UsageError
from ._compression import PADDING_MIN, compress_bytes, compressed_bound, padding
from ._fileio import READ_SIZE, hash_file, open_nofollow
from ._manifest import MANIFEST_NAME, build_manifest, entry_record, hash_entries
from ._output import NewBackup, OutputRequest
from ._tarstream import BLOCK, DIRECTORY, HARDLINK, REGULAR, SYMLINK, TarWriter

ON_UNREADABLE = ("fail", "warn")
ROOM_MARGIN = 64  # the manifest's room exceeds its estimated compressed size by this fraction (1/64)
_CHANGED = "%s changed while it was read; its stored copy may be inconsistent"


class ArchiveRequest(OutputRequest):
    """Everything an archive run needs; the module and the on-host command both build one."""

    def __init__(self, paths, job, backup_dir=_catalog.DEFAULT_BACKUP_DIR, exclude=(), exclude_if_present=(),
                 respect_gitignore=False, default_excludes=True, compression="zstd", compression_level=None,
                 recipients=None, passphrase=None, tags=(), description=None, deploy_id=None, skip_unchanged=False,
                 on_unreadable="fail", lock_timeout=0.0, read_back=True, seal=None, incremental=False,
                 full_every=_incremental.DEFAULT_FULL_EVERY, max_chain=_incremental.DEFAULT_MAX_CHAIN):
        if not paths:
            raise UsageError("paths is empty: name at least one file or directory to back up")
        if on_unreadable not in ON_UNREADABLE:
            raise UsageError("on_unreadable must be one of %s" % ", ".join(ON_UNREADABLE))
        if incremental and skip_unchanged:
            raise UsageError("skip_unchanged is for full backups: an incremental backup of an unchanged tree stores "
                             "no file content; drop one of the two")
        super().__init__(job, backup_dir, compression, compression_level, recipients, passphrase, tags, description,
                         deploy_id, lock_timeout, read_back, seal)
        self.paths = [os.path.abspath(os.path.expanduser(path)) if os.path.isabs(path) else path for path in paths]
        self.exclude = list(exclude or ())
        self.exclude_if_present = list(exclude_if_present or ())
        self.respect_gitignore = respect_gitignore
        self.default_excludes = default_excludes
        self.skip_unchanged = skip_unchanged
        self.on_unreadable = on_unreadable
        self.incremental = incremental
        self.full_every, self.max_chain = _incremental.check_options(full_every, max_chain)


def selection_options(request):
    """The rules of the selection, recorded in the metadata so a source verify walks the tree the same way."""
    return {"exclude": request.exclude, "exclude_if_present": request.exclude_if_present,
            "respect_gitignore": request.respect_gitignore, "default_excludes": request.default_excludes,
            "never": [request.backup_dir]}


def _select(request):
    selection = _selection.select(request.paths, **selection_options(request))
    warnings = []
    if selection.unreadable:
        listed = ", ".join(selection.unreadable[:5]) + (" ..." if len(selection.unreadable) > 5 else "")
        if request.on_unreadable == "fail":
            raise SourceError("%d path(s) cannot be read: %s; fix the permissions, exclude them, or set "
                              "on_unreadable: warn" % (len(selection.unreadable), listed), stage="select")
        warnings.append("skipped %d unreadable path(s): %s" % (len(selection.unreadable), listed))
    return selection, warnings


def _summary(selection):
    counts = {}
    for entry in selection.entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    return {"files": counts.get("file", 0), "counts": counts, "input_size": selection.input_size,
            "excluded": selection.excluded, "special_files": dict(selection.skipped)}


def _digest_now(request, selection):
    """The manifest digest the tree would have now, from a hashing pass alone (nothing is compressed).

    Lets skip_unchanged answer without writing; the backup itself, if one is made, hashes as it streams.
    """
    warnings = []
    digests, errors = hash_entries(selection.entries)
    links = _Links()
    records = []
    for original in selection.entries:
        entry = links.entry(original)
        if entry.kind == "file":
            digest, error = _digest_of(entry, digests, errors)
            links.outcome(original, entry, error is None)
            if error is not None:
                _unreadable(request, entry, error, warnings)
                continue
            records.append(entry_record(entry, digest))
            continue
        records.append(entry_record(entry))
    return build_manifest(records, request.paths)[1]


def _digest_of(entry, digests, errors):
    """(digest, None) or (None, the OSError) of a file entry; a link stored as its file is hashed now."""
    if entry.arcname in digests or entry.arcname in errors:
        return digests.get(entry.arcname), errors.get(entry.arcname)
    try:
        return hash_file(entry.path), None
    except OSError as exc:
        return None, exc


class _Links:
    """Hard links whose file was not stored (it vanished or could not be read between the walk and its read): the
    next link of the same inode is stored as the file instead, as GNU tar does, and the links after it point to it.
    Without this their data would be in no member, and restore would refuse the whole backup."""

    def __init__(self):
        self._stored_as = {}  # the walk's first link of a file that was not stored -> the link stored instead

    def entry(self, entry):
        """The entry to write in place of entry from the walk."""
        if entry.kind != "hardlink" or entry.link_target not in self._stored_as:
            return entry
        stored = self._stored_as[entry.link_target]
        if stored is None:
            return _selection.Entry(entry.path, entry.arcname, entry.stat, "file", None)
        return _selection.Entry(entry.path, entry.arcname, entry.stat, "hardlink", stored)

    def outcome(self, original, entry, stored):
        """Whether the file entry (which entry() gave for original) was stored."""
        if original.kind == "hardlink":
            if stored:
                self._stored_as[original.link_target] = entry.arcname
        elif not stored and entry.stat.st_nlink > 1:
            self._stored_as[entry.arcname] = None


def _newest_files_backup(backup_dir, job):
    for metadata in _catalog.list_metadata(backup_dir, job):
        if metadata.get("kind") == "files":
            return metadata
    return None


def _same_stat(before, after):
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino) == \
        (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino)


def _unreadable(request, entry, exc, warnings):
    if isinstance(exc, FileNotFoundError):
        warnings.append("%s vanished before it was read" % entry.path)
        return
    if request.on_unreadable == "fail":
        raise SourceError("cannot read %s: %s; fix the permissions, exclude it, or set on_unreadable: warn"
                          % (entry.path, exc.strerror or exc), stage="read")
    warnings.append("skipped unreadable %s: %s" % (entry.path, exc.strerror or exc))


def _read_small(entry):
    """Content of a file of at most READ_SIZE bytes, padded or cut to the size the walk saw, with its digest."""
    size = entry.stat.st_size
    with open_nofollow(entry.path) as handle:
        opened = os.fstat(handle.fileno())
        data = handle.read(size)
        after = os.fstat(handle.fileno())
    data += bytes(size - len(data))
    changed = not (_same_stat(entry.stat, opened) and _same_stat(opened, after))
    return data, hashlib.sha256(data).hexdigest(), changed


def _read_batch(batch):
    results = {}
    for entry in batch:
        try:
            results[entry.path] = _read_small(entry) + (None,)
        except OSError as exc:
            results[entry.path] = (None, None, False, exc)
    return results


class _ReadAhead:
    """Small files read and hashed by two threads a few batches ahead of the tar writer.

    Reads and hashlib release the GIL, so this overlaps with the compressor being fed; batches keep the
    cost of a future per file away, and the window bounds the memory held (WINDOW * BATCH * READ_SIZE).
    """

    BATCH = 16
    WINDOW = 4

    def __init__(self, entries):
        small = [entry for entry in entries if entry.kind == "file" and entry.stat.st_size <= READ_SIZE]
        self._ahead = {entry.path for entry in small}
        self._batches = [small[start:start + self.BATCH] for start in range(0, len(small), self.BATCH)]
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self._pending = collections.deque()
        self._submitted = 0
        self._ready = {}
        for _batch in range(self.WINDOW):
            self._submit()

    def _submit(self):
        if self._submitted < len(self._batches):
            self._pending.append(self._pool.submit(_read_batch, self._batches[self._submitted]))
            self._submitted += 1

    def take(self, entry):
        """(data, digest, changed, error) of a small file, in the order of the entries."""
        if entry.path not in self._ahead:  # a hard link stored in place of its first link: read now
            return _read_batch([entry])[entry.path]
        while entry.path not in self._ready:
            self._ready.update(self._pending.popleft().result())
            self._submit()
        return self._ready.pop(entry.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        return False


def _stream_large(request, tar, entry, warnings):
    """Write one file bigger than READ_SIZE, hashing it on the way; returns its SHA-256.

    Its header promises the size the walk saw, so a file that shrinks is padded and one that grows is cut;
    either way, and for any change seen while reading, a warning says so. A read error once the header is
    written cannot take the member back: it fails the backup, or under on_unreadable: warn the rest of the
    member is zeros (the archive stays aligned, the digest is that of the bytes stored) and a warning says so.
    """
    digest = hashlib.sha256()
    size = entry.stat.st_size
    with open_nofollow(entry.path) as handle:
        opened = os.fstat(handle.fileno())
        tar.add_header(entry.arcname, REGULAR, st=entry.stat, size=size)
        error, done = _copy_exactly(tar, handle, size, digest)
        after = os.fstat(handle.fileno())
    if error is not None:
        if request.on_unreadable == "fail":
            raise SourceError("cannot read %s: %s after %d of its %d bytes; nothing was backed up; fix the disk, "
                              "exclude the file, or set on_unreadable: warn to store what can be read"
                              % (entry.path, error.strerror or error, done, size), stage="read")
        warnings.append("read error in %s after %d of its %d bytes (%s): the rest of its stored copy is zeros"
                        % (entry.path, done, size, error.strerror or error))
    elif not (_same_stat(entry.stat, opened) and _same_stat(opened, after)):
        warnings.append(_CHANGED % entry.path)
    return digest.hexdigest()


def _copy_exactly(tar, handle, size, digest):
    """Copy size bytes into the member, zeros where the file ends early or fails to read; returns (the read
    error or None, the bytes read before it)."""
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    left = size
    error, done = None, size
    while left:
        count = 0
        if error is None:
            try:
                count = handle.readinto(view[:min(left, READ_SIZE)])
            except OSError as exc:
                error, done = exc, size - left
        if not count:  # the file shrank or cannot be read on: pad so the archive stays well-formed
            count = min(left, READ_SIZE)
            view[:count] = bytes(count)
        tar.write_data(view[:count])
        digest.update(view[:count])
        left -= count
    tar.end_member(size)
    return error, done


def _write_members(request, tar, entries, ahead, increment):
    """Every entry after the manifest; returns the manifest records and the warnings. increment: how an
    incremental backup writes them (None for a full backup without)."""
    records, warnings = [], []
    links = _Links()
    for original in entries:
        entry = links.entry(original)
        if entry.kind == "file":
            held = increment.unchanged.get(entry.arcname) if increment else None
            if held is not None:  # (sha256, holder) of a file an earlier backup of the chain stores
                links.outcome(original, entry, True)
                records.append(dict(entry_record(entry, held[0]), holder=held[1]))
                continue
            digest = _write_file(request, tar, entry, ahead, warnings)
            links.outcome(original, entry, digest is not None)
            if digest is not None:
                record = entry_record(entry, digest)
                records.append(dict(record, holder=increment.backup_id) if increment else record)
            continue
        if entry.kind == "dir":
            tar.add_header(entry.arcname.rstrip("/") + "/", DIRECTORY, st=entry.stat,
                           records=increment.pax_records(entry) if increment else ())
        elif entry.kind == "symlink":
            tar.add_header(entry.arcname, SYMLINK, st=entry.stat, linkname=entry.link_target)
        elif entry.kind == "hardlink":
            tar.add_header(entry.arcname, HARDLINK, st=entry.stat, linkname=entry.link_target)
        records.append(entry_record(entry))
    tar.close()
    return records, warnings


def _write_file(request, tar, entry, ahead, warnings):
    """One regular file as a member; its digest, or None when it could not be read (and may be skipped)."""
    if entry.stat.st_size > READ_SIZE:
        try:
            return _stream_large(request, tar, entry, warnings)
        except OSError as exc:
            _unreadable(request, entry, exc, warnings)
            return None
    data, digest, changed, error = ahead.take(entry)
    if error is not None:
        _unreadable(request, entry, error, warnings)
        return None
    tar.add_whole(tar.header(entry.arcname, REGULAR, st=entry.stat, size=len(data)), data)
    if changed:
        warnings.append(_CHANGED % entry.path)
    return digest


def _git_info(paths):
    found = {}
    for path in paths:
        info = _selection.git_info(path) if os.path.isdir(path) else None
        if info:
            found[path] = info
    return found


def run_archive(request, check_mode=False):
    """Back up the request's paths; returns the result dict that the module and the command report."""
    started = time.monotonic()
    for path in request.paths:
        if not os.path.isabs(path):
            raise UsageError("paths must be absolute: %s" % path)
    selection, warnings = _select(request)
    summary = _summary(selection)
    if check_mode and not request.skip_unchanged:
        return dict(summary, changed=True, warnings=warnings, msg="would back up %d files (%d bytes)"
                    % (summary["files"], summary["input_size"]))
    _catalog.ensure_dir(request.backup_dir)
    with _catalog.CatalogLock(request.backup_dir, timeout=request.lock_timeout):
        if request.skip_unchanged:
            newest = _newest_files_backup(request.backup_dir, request.job)
            if newest is not None and newest.get("manifest_sha256") == _digest_now(request, selection):
                return dict(summary, changed=False, warnings=warnings, id=newest["id"],
                            path=_catalog.artifact_path(newest), sha256=newest["sha256"], size=newest["size"],
                            metadata=_catalog.public(newest), skipped_unchanged=True,
                            msg="the selected tree is identical to backup %s; no new artifact" % newest["id"])
        increment = _increment(request, selection.entries)
        if check_mode:
            return dict(summary, changed=True, warnings=warnings, msg="would back up %d files (%d bytes)%s"
                        % (summary["files"], summary["input_size"], _level_phrase(increment)))
        return _write_backup(request, selection.entries, summary, warnings, started, increment)


def _increment(request, entries):
    """The Increment of an incremental backup, on the chain's newest backup or a full one (with the reason)."""
    if not request.incremental:
        return None
    chain, reason = _incremental.find_chain(request, selection_options(request), _catalog.utc_now())
    return _incremental.Increment(chain, entries, reason)


def _level_phrase(increment):
    if increment is None:
        return ""
    if increment.chain is None:
        return "; a full backup (level 0) because %s" % increment.full_reason
    return "; level %d on %s, %d unchanged file(s) not read" % (
        increment.level, increment.earlier[-1], len(increment.unchanged))


def _manifest_rooms(request, entries, increment):
    """Payload bytes to keep for the compressed manifest member: (a close estimate, a size that always fits).

    The manifest's size is known before the walk (every digest has the same length; a file left out only
    shortens it), not how well it compresses: the estimate compresses it with random digests, as incompressible
    as real ones, and adds a margin. Should the real one not fit, the backup is made again with the largest
    room, the uncompressed size plus the compressor's worst overhead.
    """
    records = [entry_record(entry, os.urandom(32).hex() if entry.kind == "file" else None) for entry in entries]
    chain = None
    if increment is not None:  # every file names its holder: as long as an id can be
        stand_in = request.job + "-00000000T000000Z-99"
        records = [dict(record, holder=stand_in) if record["type"] == "file" else record for record in records]
        chain = increment.earlier + [stand_in]
    member = _manifest_member(build_manifest(records, request.paths, chain)[0])
    if request.compression == "none":
        return len(member), len(member)
    estimate = len(compress_bytes(request.compression, member, request.compression_level))
    return tuple(room + PADDING_MIN[request.compression]
                 for room in (estimate + estimate // ROOM_MARGIN + BLOCK, compressed_bound(len(member))))


def _manifest_member(manifest, size=None):
    """The manifest as a tar member; with size, its data is padded with blank lines (which readers skip)
    so that the member takes exactly size bytes."""
    if size is not None:
        manifest += b"\n" * (size - BLOCK - len(manifest))
    member = io.BytesIO()
    TarWriter(member).add_bytes(MANIFEST_NAME, manifest, mtime=int(time.time()))
    return member.getvalue()


def _manifest_frame(request, manifest, room):
    """(the first room bytes of the payload, how many of them the manifest takes): the manifest member,
    compressed, then padding that decompresses to nothing; None if it does not fit. Uncompressed, the padding is
    blank lines inside the member: a plain tar stream cannot skip bytes."""
    if request.compression == "none":
        member = _manifest_member(manifest)
        return (_manifest_member(manifest, room), len(member)) if len(member) <= room else None
    frame = compress_bytes(request.compression, _manifest_member(manifest), request.compression_level)
    if len(frame) + PADDING_MIN[request.compression] > room:
        return None
    return frame + padding(request.compression, room - len(frame)), len(frame)


def _write_backup(request, entries, summary, warnings, started, increment):
    to_read = increment.to_read(entries) if increment else entries
    with _ReadAhead(to_read) as ahead:
        # The read-ahead threads start reading while the manifest's room is estimated; a backup of a chain
        # estimates it from its predecessor's manifest, which its own differs from little.
        estimate = increment.room_estimate(request, len(entries)) if increment else None
        if estimate is None:
            estimate = _manifest_rooms(request, entries, increment)[0]
        result = _write_artifact(request, entries, ahead, summary, warnings, started, estimate, increment)
    if result is None:
        with _ReadAhead(to_read) as ahead:
            result = _write_artifact(request, entries, ahead, summary, warnings, started,
                                     _manifest_rooms(request, entries, increment)[1], increment)
    return result


def _write_artifact(request, entries, ahead, summary, warnings, started, room, increment):
    """One read of every file: room is kept at the artifact's start for the manifest, known only at the end,
    while the members stream after it, compressed, and each file is hashed on the way. None (and no file
    left) if the manifest does not fit in the room."""
    backup = NewBackup(request, "tar", "files", reserve=room)
    if increment is not None:
        increment.backup_id = backup.id
    with backup.writer as writer:
        records, stream_warnings = _write_members(request, TarWriter(writer), entries, ahead, increment)
        manifest, manifest_sha256 = build_manifest(records, request.paths, increment and increment.members())
        framed = _manifest_frame(request, manifest, room)
        if framed is None:
            writer.abort()
            return None
        frame, manifest_size = framed
        written = backup.commit(reserved=frame, manifest=(manifest, records, increment and increment.members()))
    warnings.extend(stream_warnings)
    metadata = backup.metadata(request.paths, written, summary["input_size"], warnings, started)
    metadata.update({
        "files": summary["files"], "counts": summary["counts"], "excluded": summary["excluded"],
        "special_files": summary["special_files"], "selection": selection_options(request),
        "manifest_sha256": manifest_sha256, "git": _git_info(request.paths),
    })
    if increment is not None:
        metadata.update(_chain_metadata(increment, records, written["size"]))
    _catalog.write_sidecars(writer.final_path, metadata)
    if increment is not None:
        _incremental.write_state(request, increment.members(), selection_options(request), records, entries,
                                 manifest_size)
    return dict(summary, changed=True, warnings=warnings, id=backup.id, path=writer.final_path,
                sha256=written["sha256"], size=written["size"], metadata=metadata,
                msg="backed up %d files (%d bytes) into %s%s" % (summary["files"], summary["input_size"], backup.name,
                                                                 _level_phrase(increment)))


def _chain_metadata(increment, records, size):
    """What the metadata says of a backup of a chain: its level, its full backup, the chain it needs (its own id
    last), what it stored itself, and why it is a full backup when one was made instead of an incremental. The
    ratio of an incremental backup is that of what it stored to its size (the tree's size is its input_size)."""
    stored = [record for record in records if record.get("holder") == increment.backup_id]
    stored_bytes = sum(record["size"] for record in stored)
    chain = {"level": increment.level, "base": increment.members()[0], "chain": increment.members(),
             "stored": {"files": len(stored), "bytes": stored_bytes}}
    if increment.level:
        chain["ratio"] = round(stored_bytes / size, 3) if stored_bytes and size else None
    if increment.full_reason:
        chain["full_reason"] = increment.full_reason
    return chain
