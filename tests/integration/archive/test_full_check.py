"""The full check of an artifact (verify level=full, the read-back, a vault copy's full verify): decoded and hashed
in child processes when it is read from a file, in this process from a stream without a descriptor, with the same
result and the same errors either way."""

import io
import os

import pytest

from testlib import KEY, backup, dump, make_tree, sqlite_sample

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, UsageError, WrongKeyError
from ansible_collections.lifeboat.backup.plugins.module_utils._pipeline import artifact_layers
from ansible_collections.lifeboat.backup.plugins.module_utils._restore.payload import (
    InlinePayload, PayloadProcess, open_payload_reader)


class _Download(io.RawIOBase):
    """A stream as a vault's download is one: bytes from the process's memory, no descriptor."""

    def __init__(self, data):
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._data.readinto(buffer)


def _made(tmp_path, kind, **options):
    """(artifact path, metadata) of a new files backup or dump, with read-back off: the test reads it itself."""
    if kind == "files":
        source = tmp_path / "source"
        make_tree(source)
        (source / "random.bin").write_bytes(os.urandom(3 << 20))  # several slots of the ring
        made = backup(source, tmp_path / "backups", read_back=False, **options)
    else:
        sqlite_sample(tmp_path / "app.db")
        made = dump(tmp_path / "app.db", tmp_path / "backups", read_back=False, **options)
    return _catalog.locate(None, None, made["path"])


def _checks(path, metadata, key=KEY):
    """The full check of path read from the file and from a stream without a descriptor: (result or error) each."""
    with open(path, "rb") as handle:
        data = handle.read()
    outcomes = []
    for opened in (lambda: open(path, "rb"), lambda: io.BufferedReader(_Download(data))):
        with opened() as handle:
            try:
                outcomes.append(_verify.check_full_stream(handle, artifact_layers(path, metadata), metadata, key))
            except BackupError as exc:
                outcomes.append((type(exc), exc.msg, exc.stage))
    return outcomes


def test_a_file_is_read_by_child_processes_a_stream_without_descriptor_here(tmp_path):
    path, metadata = _made(tmp_path, "files")
    with open(path, "rb") as handle, open_payload_reader(handle, *artifact_layers(path, metadata), KEY) as payload:
        assert isinstance(payload, PayloadProcess)
    with io.BufferedReader(_Download(b"")) as handle, open_payload_reader(handle, "none", False) as payload:
        assert isinstance(payload, InlinePayload)


@pytest.mark.parametrize("kind", ["files", "database"])
@pytest.mark.parametrize("options", [{}, {"recipients": [], "compression": "none"}], ids=["age-zstd", "plain"])
def test_both_ways_give_the_same_result(tmp_path, kind, options):
    path, metadata = _made(tmp_path, kind, **options)
    from_file, from_stream = _checks(path, metadata)
    assert from_file == from_stream
    assert from_file["raw_sha256"] == metadata["sha256"]
    if kind == "files":
        assert from_file["members"] == len(_verify.read_manifest(path, metadata, KEY)[1])
        assert from_file["bytes"] >= 3 << 20


@pytest.mark.parametrize("kind,options,problem", [
    ("files", {}, "failed authentication"),
    ("files", {"recipients": [], "compression": "none"}, "random.bin does not match its SHA-256 in the manifest"),
    ("database", {}, "failed authentication"),
    ("database", {"recipients": [], "compression": "none"},
     "the decrypted payload does not match the recorded content SHA-256"),
], ids=["files-age", "files-plain", "database-age", "database-plain"])
def test_both_ways_refuse_a_changed_byte_with_the_same_error(tmp_path, kind, options, problem):
    path, metadata = _made(tmp_path, kind, **options)
    with open(path, "r+b") as handle:
        data = handle.read()
        offset = len(data) // 2
        handle.seek(offset)
        handle.write(bytes([data[offset] ^ 0x01]))
    from_file, from_stream = _checks(path, metadata)
    assert from_file == from_stream
    assert problem in from_file[1]


def test_both_ways_refuse_a_wrong_key_and_a_missing_one(tmp_path):
    path, metadata = _made(tmp_path, "files")
    other = _age.Key(identities=[_age.generate_identity()[0]])
    from_file, from_stream = _checks(path, metadata, other)
    assert from_file == from_stream and from_file[0] is WrongKeyError
    from_file, from_stream = _checks(path, metadata, None)
    assert from_file == from_stream and from_file[0] is UsageError
    assert "this artifact is encrypted: give identity" in from_file[1]
