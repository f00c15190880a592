"""The manifest's lines: the fast path for files writes exactly what the JSON encoder writes."""

import io
import json
import os

import pytest

from hypothesis import given, strategies as st

from testlib import backup, bounded
from ansible_collections.lifeboat.backup.plugins.module_utils import _manifest, _tarstream, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError, UsageError

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


DIR = {"path": "srv", "type": "dir", "mode": 0o755, "uid": 0, "gid": 0, "mtime_ns": 1}
FILE = {"path": "srv/a", "type": "file", "mode": 0o644, "uid": 1000, "gid": 1000, "mtime_ns": -5, "size": 3,
        "sha256": "ab" * 32}
LINK = {"path": "srv/l", "type": "symlink", "mode": 0o777, "uid": 0, "gid": 0, "mtime_ns": 1, "target": "a"}


def _written(*records, **header):
    """Manifest bytes as json.dumps writes them, whatever the records hold."""
    head = dict({"format": _manifest.FORMAT, "sources": ["/srv"], "entries": len(records)}, **header)
    return "".join(json.dumps(line) + "\n" for line in (head,) + records).encode()


def test_every_kind_of_record_parses():
    fifo = dict(DIR, path="srv/fifo", type="fifo")  # refused by restore, not by the parser
    assert _manifest.parse_manifest(_written(DIR, FILE, LINK, fifo)) == (
        {"format": _manifest.FORMAT, "sources": ["/srv"], "entries": 4}, [DIR, FILE, LINK, fifo])


@pytest.mark.parametrize("change, problem", [
    ({"mode": "0755"}, "('srv/a') has a string \"0755\" as its mode; it must be an integer"),
    ({"mode": 0o10000}, "('srv/a') has 4096 as its mode; it must lie between 0 and 4095"),
    ({"mode": 420.0}, "('srv/a') has a number 420.0 as its mode; it must be an integer"),
    ({"uid": True}, "('srv/a') has a boolean true as its uid; it must be an integer"),
    ({"gid": -1}, "('srv/a') has -1 as its gid; it must lie between 0 and 4294967295"),
    ({"mtime_ns": 2 ** 63}, "('srv/a') has 9223372036854775808 as its mtime_ns; it must lie between"),
    ({"size": -1}, "('srv/a') has -1 as its size; it must lie between 0 and 9223372036854775807"),
    ({"size": None}, "('srv/a') has null as its size; it must be an integer"),
    ({"sha256": "AB" * 32}, "('srv/a') has a string \"ABABABABABABABABABABABABABABABABABAB... as its sha256; "
                            "it must be 64 lowercase hex digits"),
    ({"sha256": ["ab"]}, "('srv/a') has an array [\"ab\"] as its sha256; it must be a string"),
    ({"path": 5}, "(no path) has an integer 5 as its path; it must be a string"),
    ({"type": ["file"]}, "('srv/a') has an array [\"file\"] as its type; it must be a string"),
    ({"type": "symlink"}, "('srv/a') has no target field"),
])
def test_a_record_with_a_field_of_the_wrong_type_or_range_is_refused_naming_its_line_and_path(change, problem):
    with pytest.raises(IntegrityError) as refused:
        _manifest.parse_manifest(_written(DIR, dict(FILE, **change), LINK))
    assert str(refused.value).startswith("manifest: manifest line 3 " + problem)


def test_a_record_missing_a_field_is_refused():
    record = dict(FILE)
    del record["uid"]
    with pytest.raises(IntegrityError, match=r"^manifest: manifest line 2 \('srv/a'\) has no uid field$"):
        _manifest.parse_manifest(_written(record))


@pytest.mark.parametrize("lines, problem", [
    (b'["srv/a"]\n', "manifest line 2 is an array [\"srv/a\"], not an entry object"),
    (b'"srv/a"\n', "manifest line 2 is a string \"srv/a\", not an entry object"),
    (b'{"path": "srv/a"\n', "manifest line 2 is not valid JSON (Expecting ',' delimiter"),
    (b"[" * 100_000 + b"\n", "manifest line 2 is not valid JSON (maximum recursion depth exceeded"),
    (b'{"path": 1e999999}\n', "manifest line 2 (no path) has a number Infinity as its path; it must be a string"),
])
def test_a_line_that_is_not_an_entry_object_is_refused(lines, problem):
    head = json.dumps({"format": _manifest.FORMAT, "sources": ["/srv"], "entries": 1}).encode() + b"\n"
    with pytest.raises(IntegrityError) as refused:
        _manifest.parse_manifest(head + lines)
    assert problem in str(refused.value)


def test_a_line_holding_two_entries_is_refused():
    manifest, _digest = _manifest.build_manifest([DIR], ["/src"])
    with pytest.raises(IntegrityError, match="manifest line 2 holds 2 entries; a line holds one"):
        _manifest.parse_manifest(manifest.rstrip(b"\n") + b',{"path":"b"}\n')


@pytest.mark.parametrize("header, problem", [
    (b"[]", "manifest line 1 is an array [], not the header object"),
    (b'{"format": "tarball/2"}', "unknown manifest format a string \"tarball/2\""),
    (json.dumps({"format": _manifest.FORMAT, "sources": "/srv", "entries": 1}).encode(),
     "manifest line 1 has a string \"/srv\" as its sources; they must be an array of strings"),
    (json.dumps({"format": _manifest.FORMAT, "sources": [7], "entries": 1}).encode(),
     "manifest line 1 has an array [7] as its sources"),
    (json.dumps({"format": _manifest.FORMAT, "sources": [], "entries": True}).encode(),
     "manifest line 1 counts a boolean true entries, but 1 lines follow"),
    (json.dumps({"format": _manifest.FORMAT, "sources": [], "entries": 2}).encode(),
     "manifest line 1 counts an integer 2 entries, but 1 lines follow"),
])
def test_a_header_that_is_not_a_manifest_header_is_refused(header, problem):
    with pytest.raises(IntegrityError) as refused:
        _manifest.parse_manifest(header + b"\n" + json.dumps(FILE).encode() + b"\n")
    assert problem in str(refused.value)


def test_a_manifest_member_claiming_more_than_a_backup_can_hold_is_refused_unread():
    """A crafted header claims 4 GiB of manifest behind a few bytes: refused before anything is read."""
    claimed = 4 << 30
    data = _tarstream.build_header(_manifest.MANIFEST_NAME, _tarstream.REGULAR, size=claimed) + b"{}\n" * 100
    with bounded(seconds=1.0, memory=1 << 20):
        with pytest.raises(IntegrityError) as refused:
            _verify.manifest_member(_tarstream.TarReader(io.BytesIO(data)))
    assert "the manifest claims %d bytes, more than the %d a backup can hold" % (claimed, _manifest.MAX_SIZE) \
        in str(refused.value)


def test_a_backup_whose_manifest_a_restore_would_refuse_is_refused_when_made(tmp_path, monkeypatch):
    monkeypatch.setattr(_manifest, "MAX_SIZE", 1 << 20)  # a few thousand entries stand for five million
    source = tmp_path / "src"
    source.mkdir()
    for number in range(6000):
        (source / ("%04d-" % number + "n" * 200)).touch()
    with pytest.raises(UsageError) as refused:
        backup(source, tmp_path / "backups")
    assert "the 6001 entries selected make a manifest of 2 MiB, more than the 1 MiB a restore reads: back the tree " \
        "up as several jobs" in str(refused.value)
    assert not os.path.exists(tmp_path / "backups" / "app") or os.listdir(tmp_path / "backups" / "app") == []


@given(path=PATHS, holder=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True), size=st.integers(0, 2 ** 50))
def test_a_held_file_line_is_what_the_json_encoder_writes(path, holder, size):
    record = dict(FILE, path=path, size=size, holder=holder)
    assert _manifest._encode_record(record) == _reference(record)


def test_an_incremental_manifest_names_its_chain_and_the_holder_of_each_file():
    chain = ["app-20261201T020000Z", "app-20261202T020000Z"]
    old, new = dict(FILE, holder=chain[0]), dict(FILE, path="srv/b", holder=chain[1])
    manifest, _digest = _manifest.build_manifest([DIR, old, new, LINK], ["/srv"], chain)
    header, records = _manifest.parse_manifest(manifest)
    assert (header["chain"], header["level"]) == (chain, 1)
    assert _manifest.held_here(header, {record["path"]: record for record in records}) == {"srv", "srv/b", "srv/l"}


@pytest.mark.parametrize("records, header, problem", [
    ((dict(FILE, holder="app-1"),), {}, r"line 2 \('srv/a'\) names a holder, which only a file of an incremental "
                                        r"backup has"),
    ((dict(FILE, holder="app-3"),), {"chain": ["app-1", "app-2"]}, r"line 2 \('srv/a'\) has a string \"app-3\" as its holder; "
                                                                   r"it must be a backup of the chain"),
    ((FILE,), {"chain": ["app-1"]}, r"line 2 \('srv/a'\) has null as its holder"),
    ((DIR,), {"chain": ["../app"]}, r"line 1 has an array .* as its chain; it must be an array of backup ids"),
    ((DIR,), {"chain": []}, r"line 1 has an array \[\] as its chain"),
], ids=["holder-without-chain", "holder-out-of-chain", "file-without-holder", "chain-of-paths", "empty-chain"])
def test_a_chain_or_holder_that_does_not_add_up_is_refused(records, header, problem):
    with pytest.raises(IntegrityError, match=problem):
        _manifest.parse_manifest(_written(*records, **header))
