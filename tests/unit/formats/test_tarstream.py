"""The tar writer must produce archives GNU tar and Python's tarfile read identically; the reader must refuse damage."""

import io
import os
import subprocess
import tarfile

import pytest

from testlib import bounded

from ansible_collections.lifeboat.backup.plugins.module_utils import _tarstream
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError


def _archive(members):
    sink = io.BytesIO()
    writer = _tarstream.TarWriter(sink)
    for name, data in members:
        writer.add_bytes(name, data, mode=0o640, mtime=1_700_000_000)
    writer.close()
    return sink.getvalue()


@pytest.mark.parametrize("name", [
    "short.txt",
    "d/" * 60 + "long-name-beyond-100-bytes.txt",
    "ünïcode/ñame.txt",
    "x" * 99,
    "x" * 100,
    "x" * 101,
])
def test_names_round_trip_through_tarfile_and_gnu_tar(name, tmp_path):
    data = _archive([(name, b"payload")])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.getmembers()[0]
        assert member.name == name
        assert member.mode == 0o640
        assert member.mtime == 1_700_000_000
        assert archive.extractfile(member).read() == b"payload"
    listing = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True, check=True).stdout
    assert listing.decode("utf-8").splitlines() == [name]


def test_reader_reads_what_the_writer_wrote():
    members = [("a", b""), ("b", b"x" * 511), ("c", b"y" * 512), ("d", b"z" * 513), ("e/" * 70 + "f", b"long")]
    reader = _tarstream.TarReader(io.BytesIO(_archive(members)))
    seen = []
    for member in reader:
        seen.append((member.name, reader.read(10_000)))
    assert seen == members


def test_reader_skips_unread_data():
    reader = _tarstream.TarReader(io.BytesIO(_archive([("a", b"1" * 5000), ("b", b"2")])))
    assert [member.name for member in reader] == ["a", "b"]


def test_reader_reads_gnu_tar_archives(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / ("n" * 150)).write_bytes(b"gnu")
    os.symlink("target", tmp_path / "src" / "sym")
    for fmt in ("gnu", "posix", "ustar"):
        if fmt == "ustar":
            (tmp_path / "src" / ("n" * 150)).unlink()
        data = subprocess.run(["tar", "--format", fmt, "-C", str(tmp_path), "-cf", "-", "src"],
                              capture_output=True, check=True).stdout
        reader = _tarstream.TarReader(io.BytesIO(data))
        found = {member.name: (member.kind, member.linkname, reader.read()) for member in reader}
        assert found["src/sym"] == ("symlink", "target", b"")
        if fmt != "ustar":
            assert found["src/" + "n" * 150] == ("file", "", b"gnu")


def test_bad_checksum_is_refused():
    data = bytearray(_archive([("a", b"data")]))
    data[10] ^= 0x01
    with pytest.raises(IntegrityError, match="bad checksum"):
        list(_tarstream.TarReader(io.BytesIO(bytes(data))))


def test_truncated_member_is_refused():
    data = _archive([("a", b"d" * 3000)])[:1500]
    reader = _tarstream.TarReader(io.BytesIO(data))
    with pytest.raises(IntegrityError, match="truncated"):
        for _member in reader:
            reader.read(10_000)


def test_big_values_use_pax_records():
    header = _tarstream.build_header("big", _tarstream.REGULAR, size=9 * 1024 ** 3, uid=5_000_000)
    reader = _tarstream.TarReader(io.BytesIO(header))
    member = next(reader)
    assert (member.size, member.uid) == (9 * 1024 ** 3, 5_000_000)


def _patched(block, offset, raw):
    """A member's header block with raw bytes at offset, and its checksum made right again."""
    block = bytearray(block)
    block[offset:offset + len(raw)] = raw
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block[:512])
    return bytes(block)


def _extended(typeflag, data, name="PaxHeaders/srv/a"):
    """An extended header (pax records, a GNU long name) holding data."""
    return _tarstream.build_header(name, typeflag, size=len(data)) + data + bytes(-len(data) % 512)


def _member(name="srv/a", data=b"content"):
    return _tarstream.build_header(name, _tarstream.REGULAR, size=len(data)) + data + bytes(-len(data) % 512)


def _read_everything(data):
    """Every member with every field, as a restore or a verify could ask for them."""
    reader = _tarstream.TarReader(io.BytesIO(data))
    return [(member.name, member.kind, member.size, member.mode, member.uid, member.gid, member.mtime,
             member.linkname, member.uname, member.gname, reader.read_all()) for member in reader]


def test_a_pax_record_of_length_zero_is_refused_at_once():
    archive = _extended(_tarstream.PAX, b"0 path=srv/b\n") + _member() + bytes(1024)
    with pytest.raises(IntegrityError, match=r"tar header at byte 0 \('PaxHeaders/srv/a'\) has a malformed pax "
                                             r"record at byte 0 of its data"):
        with bounded(seconds=1):
            _read_everything(archive)


@pytest.mark.parametrize("records, problem", [
    (b"xx path=srv/b\n", "malformed pax record at byte 0 of its data (no length)"),
    (b"-5 path=srv/b\n", "malformed pax record at byte 0 of its data (no length)"),
    (b"10 path=srv/b\n", "its length 10 does not end at a newline"),
    (b"99 path=srv/b\n", "its length 99 does not end at a newline"),
    (b"9 pathab\n", "(no key=value)"),
    (b"8 =srv/\n", "(no key=value)"),
    (b"10 size=9\n9 x=y\n", "malformed pax record at byte 10 of its data (its length 9 does not end"),
    (b"12 size=abc\n", "invalid pax size value b'abc'"),
    (b"11 size=-1\n", "invalid pax size value b'-1'"),
    (b"11 uid=1.5\n", "invalid pax uid value b'1.5'"),
    (b"13 mtime=nan\n", "invalid pax mtime value b'nan'"),
    (b"34 size=%s\n" % (b"9" * 25), "invalid pax size value b'9999999999"),
])
def test_a_malformed_pax_record_is_an_integrity_error_naming_the_header(records, problem):
    archive = _extended(_tarstream.PAX, records) + _member() + bytes(1024)
    with pytest.raises(IntegrityError) as refused:
        with bounded(seconds=1):
            _read_everything(archive)
    assert "tar header at byte 0 ('PaxHeaders/srv/a') has a" in str(refused.value)
    assert problem in str(refused.value)


def test_pax_values_replace_the_block_and_an_empty_one_removes_an_earlier_one():
    def pax(*records):
        return _extended(_tarstream.PAX, b"".join(_tarstream._pax_record(key, value) for key, value in records))

    archive = (pax(("path", b"srv/renamed"), ("mtime", b"-1.75"), ("uid", b"70000"))
               + pax(("uid", b"12"), ("comment", b"")) + pax(("path", b"srv/replaced")) + pax(("uid", b""))
               + _member() + bytes(1024))
    member = next(_tarstream.TarReader(io.BytesIO(archive)))
    assert (member.name, member.mtime, member.uid) == ("srv/replaced", -1, 0)


@pytest.mark.parametrize("typeflag", [_tarstream.GNU_LONGNAME, _tarstream.GNU_LONGLINK])
def test_a_long_name_over_the_limit_is_refused_before_it_is_read(typeflag):
    claim = _tarstream.build_header("PaxHeaders/srv/a", typeflag, size=4 << 30)
    archive = io.BytesIO(claim + bytes(64 << 20))  # what a decompressed bomb would hand out
    with pytest.raises(IntegrityError, match=r"tar header at byte 0 \('PaxHeaders/srv/a'\) brings the extended "
                                             r"headers \(pax records, long names\) before one member to 4294967296 "
                                             r"bytes; more than 1048576 are refused"):
        with bounded(seconds=1, memory=1 << 20):
            next(_tarstream.TarReader(archive))
    assert archive.tell() == 512


@pytest.mark.parametrize("typeflag", [_tarstream.PAX, _tarstream.PAX_GLOBAL])
def test_a_pax_header_over_the_limit_is_refused_before_it_is_read(typeflag):
    claim = _tarstream.build_header("PaxHeaders/srv/a", typeflag, size=4 << 30)
    archive = io.BytesIO(claim + bytes(64 << 20))
    with pytest.raises(IntegrityError, match=r"tar header at byte 0 \('PaxHeaders/srv/a'\) claims 4294967296 bytes "
                                             r"of pax records; more than 268435456 are refused"):
        with bounded(seconds=1, memory=1 << 20):
            next(_tarstream.TarReader(archive))
    assert archive.tell() == 512


def test_a_directory_listing_bigger_than_the_limit_is_read_past_without_being_held():
    listing = b"".join(b"Yfile-%07d\0" % number for number in range(400000)) + b"\0"  # 5.6 MB
    header = _tarstream.build_header("srv/app/", _tarstream.DIRECTORY, mode=0o755,
                                     records=[(_tarstream.DUMPDIR_KEY, listing), ("path", b"srv/app")])
    archive = header + _member("srv/app/a") + bytes(1024)
    with bounded(seconds=5, memory=4 << 20):
        members = [(member.name, member.kind) for member in _tarstream.TarReader(io.BytesIO(archive))]
    assert members == [("srv/app", "dir"), ("srv/app/a", "file")]


def test_a_pax_record_too_long_for_its_header_is_refused():
    record = _tarstream._pax_record(_tarstream.DUMPDIR_KEY, b"Ya\0" * 1000)
    broken = b"9999" + record[record.index(b" "):]
    archive = _extended(_tarstream.PAX, broken) + _member() + bytes(1024)
    with pytest.raises(IntegrityError, match=r"malformed pax record at byte 0 of its data \(its length 9999 does not "
                                             r"end at a newline within the header\)"):
        _read_everything(archive)


def test_a_long_name_may_take_the_whole_limit_and_headers_before_one_member_count_together():
    name = "srv/" + "n" * (_tarstream.MAX_EXTENDED_HEADER - 5)
    whole = _extended(_tarstream.GNU_LONGNAME, name.encode() + b"\0", "././@LongLink")
    assert [member.name for member in _tarstream.TarReader(io.BytesIO(whole + _member() + bytes(1024)))] == [name]
    record = _tarstream._pax_record("path", b"p" * (_tarstream.MAX_EXTENDED_HEADER // 2))
    half = _extended(_tarstream.PAX, record)
    with pytest.raises(IntegrityError, match=r"at byte %d \('PaxHeaders/srv/a'\) brings the extended headers "
                                             r"\(pax records, long names\) before one member to %d bytes"
                                             % (len(half), 2 * len(record))):
        with bounded(seconds=1, memory=4 << 20):
            list(_tarstream.TarReader(io.BytesIO(half * 3 + _member() + bytes(1024))))


@pytest.mark.parametrize("field", [b"-0000000001\0", b"+0000000001\0", b"0o000000017\0", b"000000001_0\0",
                                   b"\xff" * 12, b"00000000009\0"])
def test_a_size_field_that_is_not_octal_digits_is_refused(field):
    archive = _patched(_member(data=b""), 124, field) + _member("srv/b") + bytes(1024)
    with pytest.raises(IntegrityError, match=r"tar header at byte 0 \('srv/a'\) has an invalid size field"):
        with bounded(seconds=1):
            _read_everything(archive)


def test_an_invalid_numeric_field_names_the_member_when_it_is_asked_for():
    archive = _patched(_member(), 108, b"-000001\0") + bytes(1024)
    reader = _tarstream.TarReader(io.BytesIO(archive))
    member = next(reader)
    assert (member.name, reader.read_all()) == ("srv/a", b"content")
    with pytest.raises(IntegrityError, match=r"tar header at byte 0 \('srv/a'\) has an invalid uid field"):
        member.uid
