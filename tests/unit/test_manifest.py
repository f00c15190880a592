"""The manifest's lines: the fast path for files writes exactly what the JSON encoder writes."""

import json

import pytest

from hypothesis import given, strategies as st

from ansible_collections.lifeboat.backup.plugins.module_utils import _manifest

# Paths as os.fsdecode gives them: any text, and undecodable bytes as lone surrogates.
PATHS = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(["\udc80", "\udcff", '"', "\\", "\n"]),
                min_size=1)
IDS = st.integers(min_value=0, max_value=2 ** 32)


def _reference(record):
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


@given(path=PATHS, gid=IDS, uid=IDS, mode=st.integers(0, 0o7777), mtime_ns=st.integers(-2 ** 63, 2 ** 63),
       size=st.integers(0, 2 ** 50), digest=st.binary(min_size=32, max_size=32))
def test_a_file_line_is_what_the_json_encoder_writes(path, gid, uid, mode, mtime_ns, size, digest):
    record = {"path": path, "type": "file", "mode": mode, "uid": uid, "gid": gid, "mtime_ns": mtime_ns,
              "size": size, "sha256": digest.hex()}
    assert _manifest._encode_record(record) == _reference(record)


@given(path=PATHS, target=PATHS, kind=st.sampled_from(["dir", "symlink", "hardlink"]))
def test_other_lines_and_a_file_without_digest_go_through_the_encoder(path, target, kind):
    record = {"path": path, "type": kind, "mode": 0o755, "uid": 0, "gid": 0, "mtime_ns": 1}
    if kind != "dir":
        record["target"] = target
    assert _manifest._encode_record(record) == _reference(record)
    unread = {"path": path, "type": "file", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 1, "size": 0,
              "sha256": None}
    assert _manifest._encode_record(unread) == _reference(unread)


@given(paths=st.lists(PATHS, max_size=20))
def test_a_built_manifest_parses_back_to_its_records_blank_lines_and_all(paths):
    records = [{"path": path, "type": "file", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 1, "size": 0,
                "sha256": "00" * 32} for path in paths]
    manifest, _digest = _manifest.build_manifest(records, ["/src"])
    header, parsed = _manifest.parse_manifest(manifest.replace(b"\n", b"\n\n"))  # blank lines: padding
    assert (header["entries"], parsed) == (len(records), records)


def test_a_line_holding_two_entries_is_refused():
    manifest, _digest = _manifest.build_manifest([{"path": "a", "type": "dir", "mode": 0o755, "uid": 0, "gid": 0,
                                                   "mtime_ns": 1}], ["/src"])
    with pytest.raises(ValueError, match="more than one entry"):
        _manifest.parse_manifest(manifest.rstrip(b"\n") + b',{"path":"b"}\n')
