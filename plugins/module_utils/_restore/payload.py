# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An artifact's payload decrypted and decompressed in a child process, hashed in another, in shared memory.

Threads of one process take turns on the GIL, and even hashing threads, which let go of it, lose
more to handing it back and forth for 20,000 small files than they gain. So the restore works like
`age | zstd | tar`, in three processes, each with a GIL of its own:

- the decoder decrypts and decompresses straight into a ring of slots in memory the three share;
- the restore (the parent) reads each slot in place, writes the files, and notes which part of the
  slot belongs to which file;
- the hasher hashes those parts, then gives the slot back to the decoder.

No byte of the payload goes through a pipe, which would copy it twice more; the pipes carry slot
numbers, the parts to hash, and at the end the decoder's report (the raw artifact's SHA-256, or the
error that stopped it, raised again in the parent with its type and message where the payload ends)
and the hasher's digests.

No child outlives the parent: when the parent dies or stops, the hasher sees the end of its pipe and
exits, and the decoder, writing into a closed pipe or waiting on one, exits too.
"""

from __future__ import annotations

import array
import ctypes
import gc
import hashlib
import mmap
import os
import pickle
import resource
import signal
import struct

from .._errors import BackupError
from .._pipeline import open_payload

BLOCK_SIZE = 1 << 20  # what the restore reads and writes at once
SLOT_SIZE = 1 << 20  # one hand-over: large enough that the per-slot round trip is noise
SLOTS = 32  # room for each process to run ahead of the next while the other CPU is busy
_FULL = struct.Struct("<II")  # a filled slot: its number and how many bytes it holds
_READ = struct.Struct("<II")  # a slot the parent has read: its number and how many parts to hash in it
_PART = struct.Struct("<III")  # a part to hash: the key of its digest, its start and end in the slot
_END = 0xFFFFFFFF  # in place of a slot number: the parent wants the digests
_HASHER, _DECODER = 0, 1  # the children, in the order they are started
_ROLES = ("hashing the restored files", "decrypting and decompressing the artifact")
_PR_SET_DUMPABLE = 4  # linux/prctl.h
try:  # looked up here, in the parent: a forked child must not take the dynamic loader's lock another thread may hold
    _PRCTL = ctypes.CDLL(None).prctl
except (OSError, AttributeError):
    _PRCTL = None  # not Linux: the core limit alone keeps the key off the disk
EMPTY_SHA256 = hashlib.sha256().hexdigest()


def write_all(fd, data):
    """os.write until all of data is written (a pipe or a signal may take less at once)."""
    written = os.write(fd, data)
    if written != len(data):
        view = memoryview(data)
        while written < len(view):
            written += os.write(fd, view[written:])


def _read_to_end(fd):
    chunks = []
    chunk = os.read(fd, BLOCK_SIZE)
    while chunk:
        chunks.append(chunk)
        chunk = os.read(fd, BLOCK_SIZE)
    return b"".join(chunks)


def _slot_views(ring):
    return [memoryview(ring)[number * SLOT_SIZE:(number + 1) * SLOT_SIZE] for number in range(SLOTS)]


def _filler(payload):
    """fill(view) -> bytes put into view, fewer only at the payload's end.

    An error of the layers after some bytes were put into view is raised by the next call: the bytes before it
    are handed out first, as a reader in one process gets them (a gzip stream's checksum at its end fails only
    after all of its bytes were read).
    """
    readinto = getattr(payload, "readinto1", None) or getattr(payload, "readinto", None)
    if readinto is None:  # the uncompressed layers hand out bytes: one copy into the slot
        def readinto(view):
            data = payload.read(len(view))
            view[:len(data)] = data
            return len(data)
    pending = []

    def fill(view):
        if pending:
            raise pending.pop()
        filled = 0
        try:
            filled = readinto(view)
            while filled and filled < len(view):
                more = readinto(view[filled:])
                if not more:
                    break
                filled += more
        except Exception as exc:  # pylint: disable=broad-except
            if not filled:
                raise
            pending.append(exc)
        return filled
    return fill


def _no_core_dumps():
    """The decoder holds the key and the file key: no core file of it, and no ptrace or /proc/<pid>/mem
    for other users (a process that is not dumpable)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _PRCTL is not None:
        _PRCTL(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _decode(handle, layers, ring, full_fd, free_fd):
    """The decoder's work: the payload into the ring's slots; returns the raw artifact's SHA-256."""
    _no_core_dumps()
    payload, raw = open_payload(handle, *layers)
    fill = _filler(payload)
    slots = _slot_views(ring)
    free = list(range(SLOTS))
    while True:
        if not free:
            returned = os.read(free_fd, SLOTS)
            if not returned:  # told to the parent, if it still reads
                raise BackupError("the process %s ended early" % _ROLES[_HASHER], stage="read")
            free.extend(returned)
        number = free.pop()
        size = fill(slots[number])
        if not size:
            return raw.sha256.hexdigest()
        write_all(full_fd, _FULL.pack(number, size))


class _Digests:
    """SHA-256 digests by key. Keys come in turn, so a digest is finished as soon as the next key appears: only
    one is open at a time, and what is kept per key is its hex digest."""

    def __init__(self):
        self.done = {}
        self._key, self._digest = -1, None

    def update(self, key, data):
        if key != self._key:
            if key < self._key:
                raise ValueError("hash keys must come in turn: %d after %d" % (key, self._key))
            self.finish()
            self._key, self._digest = key, hashlib.sha256()
        self._digest.update(data)

    def finish(self):
        """{key: hex digest} of everything given so far."""
        if self._digest is not None:
            self.done[self._key] = self._digest.hexdigest()
        return self.done


def _hash(ring, parts_fd, free_fd):
    """The hasher's work: digests of the parts the parent names, each slot given back once hashed."""
    slots = _slot_views(ring)
    digests = _Digests()
    with open(parts_fd, "rb", closefd=False) as parts:
        while True:
            head = parts.read(_READ.size)
            if len(head) < _READ.size:
                raise BrokenPipeError  # the parent has gone
            number, count = _READ.unpack(head)
            if number == _END:
                return digests.finish()
            view = slots[number]
            for part_key, start, end in _PART.iter_unpack(parts.read(count * _PART.size)):
                digests.update(part_key, view[start:end])
            try:
                os.write(free_fd, bytes((number,)))
            except BrokenPipeError:
                pass  # the decoder has filled its last slot and gone


def _pickled_error(exc):
    """A child's error as the parent will raise it: itself when it survives pickling."""
    try:
        return pickle.dumps(exc)
    except Exception:  # pylint: disable=broad-except
        return pickle.dumps(BackupError("reading the artifact failed: %s: %s" % (type(exc).__name__, exc),
                                        stage="read"))


def _child(work, report_fd, done_fd=None):
    """Runs in a forked child; never returns (os._exit: the parent's cleanup is the parent's).

    work() is pickled into report_fd, or the error it raised; done_fd is closed first, so that the
    parent sees the end of the data before it reads the report.
    """
    code = 1
    try:
        try:
            report = pickle.dumps(work())
        except BrokenPipeError:
            return  # the parent stopped reading: it needs nothing more
        except BaseException as exc:  # pylint: disable=broad-except
            report = _pickled_error(exc)
        if done_fd is not None:
            os.close(done_fd)
        write_all(report_fd, report)
        code = 0
    finally:
        os._exit(code)  # pylint: disable=protected-access


def _fork(keep, every):
    """Fork; in the child, close every pipe end but those in keep. Returns the pid (0 in the child)."""
    parent = os.getpid()
    # The child never frees the parent's garbage: a zstd compressor's finalizer would join worker threads that
    # exist only in the parent, and wait for ever. Off from before the fork: the hooks that run in the child
    # within os.fork() allocate, and could start a collection.
    collecting = gc.isenabled()
    gc.disable()
    try:
        pid = os.fork()
    finally:
        if collecting and os.getpid() == parent:
            gc.enable()
    if pid == 0:
        for fd in every:
            if fd not in keep:
                os.close(fd)
    return pid


class _SlotReader:
    """The payload handed out a slot at a time by _next_slot(), which sets _view to the slot's bytes.

    read() hands out slices of the slot, valid until the next read(); after the end (b''), raw_sha256
    holds the SHA-256 of the whole artifact. hash_last(key) adds what the last read() returned to the
    digest named key (an int; keys come in turn, never back to an earlier one), digests() returns them
    all once the payload is read.
    """

    def __init__(self):
        self.raw_sha256 = None
        self._view = memoryview(b"")
        self._start = self._pos = 0
        self._parts = array.array("I")

    def read(self, size=-1):
        """Up to size bytes of the payload (a memoryview, valid until the next read); b'' at its end."""
        if self._pos >= len(self._view) and not self._next_slot():
            return b""
        self._start = self._pos
        self._pos = len(self._view) if size is None or size < 0 else min(self._start + size, len(self._view))
        return self._view[self._start:self._pos]

    def hash_last(self, key):
        """Add what the last read() returned to the digest named key."""
        self._parts.extend((key, self._start, self._pos))

    def drain(self):
        """Read to the end of the payload: the layers check their ends, the raw digest covers the whole file."""
        while self.read(SLOT_SIZE):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class PayloadProcess(_SlotReader):
    """The payload of an open artifact file, produced by a decoder process and hashed by a hasher process.

    The slots are those of a ring in shared memory. read() raises the decoder's error at the point where
    the payload stops. close() ends the children if they run.
    """

    def __init__(self, handle, compression, encrypted, key=None):
        super().__init__()
        self._ring = mmap.mmap(-1, SLOTS * SLOT_SIZE)  # anonymous and MAP_SHARED: shared with the children
        self._slots = _slot_views(self._ring)
        self._slot = None
        full_r, full_w = os.pipe()
        free_r, free_w = os.pipe()
        parts_r, parts_w = os.pipe()
        digests_r, digests_w = os.pipe()
        status_r, status_w = os.pipe()
        every = (full_r, full_w, free_r, free_w, parts_r, parts_w, digests_r, digests_w, status_r, status_w)
        self._full_fd, self._parts_fd, self._digests_fd, self._status_fd = full_r, parts_w, digests_r, status_r
        self._pids = [None, None]
        try:
            self._pids[_HASHER] = _fork((parts_r, free_w, digests_w), every)
            if self._pids[_HASHER] == 0:
                _child(lambda: _hash(self._ring, parts_r, free_w), digests_w)
            self._pids[_DECODER] = _fork((full_w, free_r, status_w), every)
            if self._pids[_DECODER] == 0:
                layers = (compression, encrypted, key)
                _child(lambda: _decode(handle, layers, self._ring, full_w, free_r), status_w, full_w)
        except BaseException:
            self.close()  # a fork failed: the hasher, if it started, is not left waiting
            raise
        finally:
            for fd in (full_w, free_r, free_w, parts_r, digests_w, status_w):
                os.close(fd)

    def _next_slot(self):
        """Pass the read slot on to the hasher and take the next full one; False at the payload's end."""
        if self._slot is not None:
            self._to_hasher(_READ.pack(self._slot, len(self._parts) // 3) + self._parts.tobytes())
            del self._parts[:]
            self._slot = None
        if self._full_fd is None:
            return False
        token = os.read(self._full_fd, _FULL.size)
        if not token:
            self._finish()
            return False
        self._slot, size = _FULL.unpack(token)
        self._view, self._start, self._pos = self._slots[self._slot][:size], 0, 0
        return True

    def _finish(self):
        """At the payload's end: the decoder's report, raised when it is an error."""
        os.close(self._full_fd)
        self._full_fd = None
        self.raw_sha256 = self._report(self._status_fd, _DECODER)

    def digests(self):
        """{key: SHA-256 hex digest} of everything hash_last() named, once the payload has been read."""
        self._to_hasher(_READ.pack(_END, 0))
        return self._report(self._digests_fd, _HASHER)

    def _to_hasher(self, message):
        try:
            write_all(self._parts_fd, message)
            return
        except BrokenPipeError:
            pass
        self._report(self._digests_fd, _HASHER)  # the hasher has ended: its error is raised here

    def _report(self, fd, which):
        """A child's report, once it has exited: its result, or its error raised here."""
        report = _read_to_end(fd)
        _pid, status = os.waitpid(self._pids[which], 0)
        self._pids[which] = None
        if not report:
            code = os.waitstatus_to_exitcode(status)
            raise BackupError("the process %s ended without a result (%s)"
                              % (_ROLES[which], "killed by signal %d" % -code if code < 0 else "exit code %d" % code),
                              stage="read")
        report = pickle.loads(report)
        if isinstance(report, BaseException):
            raise report
        return report

    def close(self):
        for fd in (self._full_fd, self._parts_fd, self._digests_fd, self._status_fd):
            if fd is not None:
                os.close(fd)
        self._full_fd = self._parts_fd = self._digests_fd = self._status_fd = None
        for which, pid in enumerate(self._pids):
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # stopped early: what it would still produce is not wanted
                os.waitpid(pid, 0)
                self._pids[which] = None


class InlinePayload(_SlotReader):
    """PayloadProcess's reading and hashing done in this process, one slot at a time, for a stream a forked
    decoder cannot read on its own."""

    def __init__(self, handle, compression, encrypted, key=None):
        super().__init__()
        payload, self._raw = open_payload(handle, compression, encrypted, key)
        self._fill = _filler(payload)
        self._slot = memoryview(bytearray(SLOT_SIZE))
        self._digests = _Digests()
        self._ended = False

    def _next_slot(self):
        """Hash the parts of the slot just read, then fill it again; False at the payload's end."""
        parts = self._parts
        for index in range(0, len(parts), 3):
            self._digests.update(parts[index], self._view[parts[index + 1]:parts[index + 2]])
        del parts[:]
        if self._ended:
            return False
        size = self._fill(self._slot)
        if not size:
            self._ended = True
            self.raw_sha256 = self._raw.sha256.hexdigest()
            return False
        self._view, self._start, self._pos = self._slot[:size], 0, 0
        return True

    def digests(self):
        return self._digests.finish()

    def close(self):
        pass  # nothing runs beside this process


def open_payload_reader(handle, compression, encrypted, key=None):
    """A PayloadProcess of handle, or an InlinePayload where handle has no descriptor.

    A forked decoder can read an open file or pipe on its own: what it takes from the kernel is gone for the
    parent, which no longer reads it. A stream without a descriptor (a vault's download over S3 or SFTP) lives in
    the parent's memory and talks over the parent's connection: read in a child, it would leave the parent's
    session out of step with its server, so it is read here.
    """
    try:
        handle.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return InlinePayload(handle, compression, encrypted, key)
    return PayloadProcess(handle, compression, encrypted, key)
