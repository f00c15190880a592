"""The payload of an artifact read through a child process: same bytes, same errors, no process left behind."""

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

import testlib
from testlib import IDENTITY, KEY, RECIPIENT
from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _pipeline
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, IntegrityError
from ansible_collections.lifeboat.backup.plugins.module_utils._restore.payload import (
    BLOCK_SIZE, SLOT_SIZE, PayloadProcess)

PAYLOAD = b"".join(b"line %d of a file\n" % number for number in range(300_000)) + os.urandom(3 << 20)


def _artifact(tmp_path, compression="zstd", encrypted=True, payload=PAYLOAD):
    path = str(tmp_path / ("a.tar" + _pipeline.artifact_suffix("tar", compression, encrypted)[4:]))
    with _pipeline.ArtifactWriter(path, compression, recipients=[RECIPIENT] if encrypted else None) as writer:
        writer.write(payload)
        writer.commit()
    return path


def _key(identities):
    return _age.Key(identities=list(identities)) if identities else None


def _read_through_child(path, compression="zstd", encrypted=True, identities=(IDENTITY,), size=BLOCK_SIZE):
    with open(path, "rb") as handle, PayloadProcess(handle, compression, encrypted, _key(identities)) as payload:
        data = b"".join(bytes(chunk) for chunk in iter(lambda: payload.read(size), b""))
        return data, payload.raw_sha256


def _error_in_process(path, compression, encrypted, identities):
    with open(path, "rb") as handle, pytest.raises(BackupError) as failure:
        payload, _raw = _pipeline.open_payload(handle, compression, encrypted, _key(identities))
        while payload.read(BLOCK_SIZE):
            pass
    return failure.value


def _children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid), encoding="ascii") as handle:
        return [int(child) for child in handle.read().split()]


def _has_ended(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("compression,encrypted", [("zstd", True), ("gzip", True), ("none", True),
                                                   ("zstd", False), ("none", False)])
@pytest.mark.parametrize("size", [100, BLOCK_SIZE])
def test_the_payload_and_the_raw_digest_are_what_the_file_holds(tmp_path, compression, encrypted, size):
    path = _artifact(tmp_path, compression, encrypted)
    data, raw_sha256 = _read_through_child(path, compression, encrypted, size=size)
    assert data == PAYLOAD
    with open(path, "rb") as handle:
        assert raw_sha256 == hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.parametrize("size", [100, 5000, BLOCK_SIZE])
def test_the_hasher_digests_each_part_under_its_key(tmp_path, size):
    path = _artifact(tmp_path, "zstd", True)
    expected = {}
    with open(path, "rb") as handle, PayloadProcess(handle, "zstd", True, KEY) as payload:
        number = 0
        chunk = payload.read(size)
        while chunk:
            key = number // 7 * 2  # seven parts under each key, every other key never named
            if number % 5 != 4:  # every fifth part is left out of all digests
                payload.hash_last(key)
                expected.setdefault(key, hashlib.sha256()).update(chunk)
            number += 1
            chunk = payload.read(size)
        digests = payload.digests()
    assert len(PAYLOAD) > 3 * SLOT_SIZE  # the parts span many slots
    assert digests == {key: digest.hexdigest() for key, digest in expected.items()}


def test_a_key_named_again_after_a_later_one_is_refused(tmp_path):
    path = _artifact(tmp_path, "zstd", True)
    with open(path, "rb") as handle, PayloadProcess(handle, "zstd", True, KEY) as payload:
        for key in (1, 2, 1):
            payload.read(100)
            payload.hash_last(key)
        with pytest.raises(ValueError, match="hash keys must come in turn: 1 after 2"):
            payload.drain()  # the hasher's error comes with the next slot handed over, or with the digests
            payload.digests()


def test_a_killed_hasher_stops_the_read_with_a_clear_error(tmp_path):
    path = _artifact(tmp_path, "none", True, payload=os.urandom(64 << 20))
    before = set(_children(os.getpid()))  # the session's database servers, for one
    with open(path, "rb") as handle, PayloadProcess(handle, "none", True, KEY) as payload:
        hasher = payload._pids[0]  # pylint: disable=protected-access
        assert payload.read(10)
        os.kill(hasher, signal.SIGKILL)
        with pytest.raises(BackupError) as failure:
            while payload.read(BLOCK_SIZE):
                pass
            payload.digests()
        started = set(_children(os.getpid())) - before
    assert "hashing the restored files" in str(failure.value) and failure.value.stage == "read"
    assert started and all(_has_ended(pid) for pid in started)


def _spoil_tail(path, cut=0, flip=None):
    with open(path, "r+b") as handle:
        if cut:
            handle.truncate(os.path.getsize(path) - cut)
        if flip is not None:
            handle.seek(flip)
            byte = handle.read(1)
            handle.seek(flip)
            handle.write(bytes([byte[0] ^ 0x55]))


@pytest.mark.parametrize("case", ["wrong key", "truncated zstd", "flipped age chunk", "truncated age"])
def test_errors_of_the_child_are_raised_again_with_their_type_message_and_stage(tmp_path, case):
    compression, encrypted, identities = "zstd", case != "truncated zstd", [IDENTITY]
    path = _artifact(tmp_path, compression, encrypted)
    if case == "wrong key":
        identities = [_age.generate_identity()[0]]
    elif case == "truncated zstd":
        _spoil_tail(path, cut=3)
    elif case == "flipped age chunk":
        _spoil_tail(path, flip=os.path.getsize(path) // 2)
    else:
        _spoil_tail(path, cut=100)
    expected = _error_in_process(path, compression, encrypted, identities)
    with pytest.raises(BackupError) as failure:
        _read_through_child(path, compression, encrypted, identities)
    assert type(failure.value) is type(expected)
    assert (str(failure.value), failure.value.stage) == (str(expected), expected.stage)
    if case == "truncated zstd":
        assert isinstance(failure.value, IntegrityError) and "ends before the end of its last zstd frame" in str(
            failure.value)


def test_an_os_error_of_the_child_keeps_its_type_and_errno(tmp_path):
    path = _artifact(tmp_path, "none", False)
    with open(os.open(path, os.O_WRONLY), "rb", buffering=0) as handle:  # reading it fails with EBADF
        with PayloadProcess(handle, "none", False) as payload, pytest.raises(OSError) as failure:
            payload.read()
    assert failure.value.errno == errno.EBADF


def test_closing_early_ends_the_child(tmp_path):
    path = _artifact(tmp_path, "none", True, payload=os.urandom(32 << 20))
    before = set(_children(os.getpid()))
    with open(path, "rb") as handle:
        payload = PayloadProcess(handle, "none", True, KEY)
        assert payload.read(10)
        started = set(_children(os.getpid())) - before
        payload.close()
    assert len(started) == 2  # the decoder and the hasher
    assert not any(os.path.exists("/proc/%d" % pid) for pid in started)  # ended and reaped: not even zombies


READ_THEN_WAIT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import conftest
from ansible_collections.lifeboat.backup.plugins.module_utils._age import Key
from ansible_collections.lifeboat.backup.plugins.module_utils._restore.payload import PayloadProcess
with open(sys.argv[2], "rb") as handle:
    payload = PayloadProcess(handle, "none", True, Key(identities=[sys.argv[3]]))
    payload.read(10)
    print("reading", flush=True)
    sys.stdin.read()
"""


def test_a_killed_parent_leaves_no_child_behind(tmp_path):
    path = _artifact(tmp_path, "none", True, payload=os.urandom(64 << 20))
    with subprocess.Popen([sys.executable, "-c", READ_THEN_WAIT, testlib.TESTS, path, IDENTITY],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as parent:
        assert parent.stdout.readline() == b"reading\n"
        children = _children(parent.pid)
        assert children
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while not all(_has_ended(pid) for pid in children):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
