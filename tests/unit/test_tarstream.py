"""The tar writer must produce archives GNU tar and Python's tarfile read identically; the reader must refuse damage."""

import io
import os
import subprocess
import tarfile

import pytest

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
