"""The manifest's lines: the fast path for files writes exactly what the JSON encoder writes."""

import json

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
