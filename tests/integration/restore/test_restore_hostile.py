# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crafted archives that look like real backups (manifest first, age, sidecars) are refused by restore.

Each case names the member in its message, and nothing appears outside staging: the target's parent
holds what it held before, and the place a hostile link points to stays empty.
"""

from __future__ import annotations

import copy
import hashlib
import functools
import os
import stat
import tarfile

import pytest

import testlib
from testlib import KEY, RECIPIENT, bounded, fingerprint

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _manifest, _tarstream, _verify
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError
from ansible_collections.lifeboat.backup.plugins.module_utils._pipeline import ArtifactWriter

MTIME_NS = 1_600_000_000_000_000_000


def _blocks(info, data=b""):
    """A member as tarfile writes it (a pax header when needed, the ustar header, the data and its padding)."""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + bytes(-len(data) % tarfile.BLOCKSIZE)


class Entry:
    """One crafted member: what goes into the tar, and (unless in_manifest is False) its manifest record."""

    def __init__(self, name, kind, data=b"", target="", mode=0o644, in_manifest=True, record_name=None):
        self.name = name
        self.kind = kind
        self.data = data
        self.target = target
        self.mode = mode
        self.in_manifest = in_manifest
        self.record_name = record_name or name

    def blocks(self):
        return _blocks(self.tarinfo(), self.data if self.kind == "file" else b"")

    def tarinfo(self):
        info = tarfile.TarInfo(self.name)
        info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                     "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chardev": tarfile.CHRTYPE}[self.kind]
        info.mode = self.mode
        info.mtime = MTIME_NS // 10**9
        info.size = len(self.data) if self.kind == "file" else 0
        info.linkname = self.target
        return info

    def record(self):
        record = {"path": self.record_name, "type": self.kind, "mode": self.mode, "uid": 0, "gid": 0,
                  "mtime_ns": MTIME_NS}
        if self.kind == "file":
            record.update(size=len(self.data), sha256=hashlib.sha256(self.data).hexdigest())
        elif self.kind in ("symlink", "hardlink"):
            record["target"] = self.target
        return record


class Crafted(Entry):
    """A file whose member comes after the given raw blocks: a hostile header of its own."""

    def __init__(self, name, data, header):
        super().__init__(name, "file", data)
        self.header = header

    def blocks(self):
        return self.header + super().blocks()


def craft_backup(backup_dir, job, sources, entries, backup_id=None, edit_manifest=None):
    """Write a backup the catalog accepts: tarfile members behind the engine's manifest (changed by
    edit_manifest), age, sidecars."""
    backup_id = backup_id or "%s-20240101T000000Z" % job
    directory = _catalog.ensure_dir(_catalog.job_dir(str(backup_dir), job))
    name = backup_id + ".tar.zst.age"
    manifest, manifest_sha256 = _manifest.build_manifest(
        [entry.record() for entry in entries if entry.in_manifest], sources)
    if edit_manifest is not None:
        manifest = edit_manifest(manifest)
    with ArtifactWriter(os.path.join(directory, name), "zstd", recipients=[RECIPIENT]) as writer:
        info = tarfile.TarInfo(_manifest.MANIFEST_NAME)
        info.size = len(manifest)
        writer.write(_blocks(info, manifest))
        for entry in entries:
            writer.write(entry.blocks())
        writer.write(bytes(2 * tarfile.BLOCKSIZE))
        written = writer.commit()
    metadata = {"format": 1, "id": backup_id, "job": job, "kind": "files", "created_at": "2024-01-01T00:00:00Z",
                "sources": sources, "artifact": name, "sha256": written["sha256"], "size": written["size"],
                "compression": {"algorithm": "zstd", "level": 3},
                "encryption": {"method": "x25519", "recipients": [RECIPIENT]}, "tags": [],
                "manifest_sha256": manifest_sha256}
    _catalog.write_sidecars(os.path.join(directory, name), metadata)
    return backup_id


# The hostile archives are never restored over anything worth a safety backup.
restore = functools.partial(testlib.restore, safety_backup=False)


def everything_but_the_catalog(place):
    """Every path under the test's directory except the catalog: nothing may appear or change."""
    return fingerprint(place["root"], exclude=[str(place["backups"])], dir_mtimes=False)


@pytest.fixture(name="place")
def place_fixture(tmp_path):
    """A target directory srv/app under dest, with content, and an 'outside' directory a link could aim at."""
    dest = tmp_path / "dest"
    app = dest / "srv" / "app"
    app.mkdir(parents=True)
    (app / "keep.txt").write_text("live\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    return {"dest": str(dest), "app": str(app), "outside": str(outside), "backups": tmp_path / "backups",
            "root": str(tmp_path)}


def base_entries():
    return [Entry("srv/app", "dir", mode=0o755), Entry("srv/app/keep.txt", "file", b"from backup\n")]


HOSTILE = {
    "absolute path in the manifest": (
        [Entry("/OUTSIDE/abs.txt", "file", b"x")], "/OUTSIDE/abs.txt"),
    "absolute path only in the tar": (
        [Entry("/OUTSIDE/abs.txt", "file", b"x", in_manifest=False)], "/OUTSIDE/abs.txt"),
    "dot-dot path": (
        [Entry("srv/app/../../../outside/dotdot.txt", "file", b"x")], "srv/app/../../../outside/dotdot.txt"),
    "dot-dot path only in the tar": (
        [Entry("srv/app/../../../outside/dotdot.txt", "file", b"x", in_manifest=False)], ".."),
    "relative symlink escaping the tree": (
        [Entry("srv/app/escape", "symlink", target="../../../outside")], "srv/app/escape"),
    "file written through a symlink": (
        [Entry("srv/app/link", "symlink", target="OUTSIDE"), Entry("srv/app/link/pwned.txt", "file", b"x")],
        "srv/app/link/pwned.txt"),
    "hard link to an absolute path": (
        [Entry("srv/app/hard", "hardlink", target="/etc/passwd")], "srv/app/hard"),
    "hard link out of the tree": (
        [Entry("srv/app/hard", "hardlink", target="../../../outside/x")], "srv/app/hard"),
    "hard link to a file not in the archive": (
        [Entry("srv/app/hard", "hardlink", target="srv/other/passwd")], "srv/app/hard"),
    "fifo": ([Entry("srv/app/fifo", "fifo")], "srv/app/fifo"),
    "device node": ([Entry("srv/app/null", "chardev")], "srv/app/null"),
    "setuid file": ([Entry("srv/app/suid", "file", b"#!/bin/sh\n", mode=0o4755)], "srv/app/suid"),
    "setgid file": ([Entry("srv/app/sgid", "file", b"#!/bin/sh\n", mode=0o2755)], "srv/app/sgid"),
    "member not in the manifest": (
        [Entry("srv/app/smuggled.txt", "file", b"x", in_manifest=False)], "srv/app/smuggled.txt"),
    "member whose type differs from the manifest": (
        [Entry("srv/app/typed", "symlink", target="keep.txt", record_name="srv/app/typed-decoy"),
         Entry("srv/app/typed", "file", b"x", in_manifest=False)], "srv/app/typed"),
    "member whose content differs from the manifest": (
        [Entry("srv/app/forged.txt", "file", b"forged content")], "srv/app/forged.txt"),
    "member appearing twice": (
        [Entry("srv/app/twice.txt", "file", b"x"), Entry("srv/app/twice.txt", "file", b"x", in_manifest=False)],
        "srv/app/twice.txt"),
    "hard link before its file": (
        [Entry("srv/app/early", "hardlink", target="srv/app/late.txt"), Entry("srv/app/late.txt", "file", b"x")],
        "srv/app/early"),
}
# What restore refuses only unless asked (preserve_special): a backup holding it is not damaged.
POLICY = ("setuid file", "setgid file")


def _resolved(entries, place):
    entries = copy.deepcopy(entries)  # HOSTILE's entries serve more than one test
    for entry in entries:
        entry.name = entry.name.replace("/OUTSIDE", place["outside"]).replace("OUTSIDE", place["outside"])
        entry.record_name = entry.record_name.replace("/OUTSIDE", place["outside"]).replace(
            "OUTSIDE", place["outside"])
        entry.target = entry.target.replace("OUTSIDE", place["outside"])
    return entries


def _forged(case, entries):
    if case == "member whose content differs from the manifest":
        entries[-1].data = b"other bytes"  # the record keeps the digest of the forged content
        entries[-1].record = lambda: dict(Entry.record(entries[-1]),
                                          sha256=hashlib.sha256(b"forged content").hexdigest(),
                                          size=len(b"other bytes"))
    return entries


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_nothing_is_written(case, place):
    entries, named = HOSTILE[case]
    entries = _resolved(base_entries() + list(entries), place)
    named = named.replace("/OUTSIDE", place["outside"])
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], _forged(case, entries))
    before = everything_but_the_catalog(place)
    with pytest.raises(IntegrityError) as refused:
        restore(place["backups"], backup_id, dest=place["dest"])
    assert named.lstrip("/") in str(refused.value) or named in str(refused.value)
    assert everything_but_the_catalog(place) == before
    assert os.listdir(place["outside"]) == []


@pytest.mark.parametrize("case", sorted(set(HOSTILE) - set(POLICY)))
def test_full_verify_refuses_what_restore_refuses(case, place):
    """One home for the checks: a backup that passes full verify is one restore accepts."""
    entries, named = HOSTILE[case]
    entries = _resolved(base_entries() + list(entries), place)
    named = named.replace("/OUTSIDE", place["outside"])
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], _forged(case, entries))
    with pytest.raises(IntegrityError) as refused:
        _verify.verify(backup_dir=str(place["backups"]), backup_id=backup_id, level="full", key=KEY)
    assert named in str(refused.value)
    assert _catalog.find_backup(str(place["backups"]), backup_id)["verification"]["state"] == "failed"


@pytest.mark.parametrize("case", POLICY)
def test_full_verify_accepts_setuid_files_which_restore_puts_back_when_asked(case, place):
    entries = base_entries() + list(HOSTILE[case][0])
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], entries)
    assert _verify.verify(backup_dir=str(place["backups"]), backup_id=backup_id, level="full",
                          key=KEY)["verified"]


def _pax(records, claimed=None):
    """A pax header for srv/app/evil.txt holding records, or claiming a size of its own."""
    name = "PaxHeaders/srv/app/evil.txt"
    size = len(records) if claimed is None else claimed
    return _tarstream.build_header(name, _tarstream.PAX, size=size) + records + bytes(-len(records) % 512)


HOSTILE_HEADERS = {
    "pax record of length zero": (_pax(b"0 path=srv/app/evil.txt\n"), "has a malformed pax record at byte 0"),
    "pax record without key=value": (_pax(b"9 pathab\n"),
                                     "has a malformed pax record at byte 0 of its data (no key=value)"),
    "pax size that is not a number": (_pax(b"12 size=abc\n"), "has an invalid pax size value b'abc'"),
    # What a decompressed bomb hands out after a header that claims 2 GiB of pax records.
    "pax header claiming 2 GiB": (_pax(bytes(64 << 20), claimed=2 << 30),
                                  "claims 2147483648 bytes of pax records; more than 268435456 are refused"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_HEADERS))
def test_a_hostile_tar_header_is_refused_at_once_and_nothing_is_written(case, place):
    header, problem = HOSTILE_HEADERS[case]
    entries = base_entries() + [Crafted("srv/app/evil.txt", b"evil\n", header)]
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], entries)
    before = everything_but_the_catalog(place)
    with pytest.raises(IntegrityError) as refused:
        with bounded(seconds=30, memory=32 << 20):
            restore(place["backups"], backup_id, dest=place["dest"])
    assert "tar header at byte " in str(refused.value)
    assert "('PaxHeaders/srv/app/evil.txt') " + problem in str(refused.value)
    assert everything_but_the_catalog(place) == before
    assert os.listdir(place["outside"]) == []


def _line(number, text):
    """An edit of the manifest that puts text in place of its line number (1 is the header)."""
    return lambda manifest: b"\n".join(text if index == number - 1 else line
                                       for index, line in enumerate(manifest.split(b"\n")))


MALFORMED_MANIFESTS = {
    "mode as a string": (lambda manifest: manifest.replace(b'"mode":493', b'"mode":"0755"', 1),
                         "manifest line 2 ('srv/app') has a string \"0755\" as its mode; it must be an integer"),
    "record that is a list": (_line(3, b'["srv/app/keep.txt"]'),
                              "manifest line 3 is an array [\"srv/app/keep.txt\"], not an entry object"),
    "numeric path": (lambda manifest: manifest.replace(b'"path":"srv/app/keep.txt"', b'"path":5'),
                     "manifest line 3 (no path) has an integer 5 as its path; it must be a string"),
    "negative size": (lambda manifest: manifest.replace(b'"size":12', b'"size":-12'),
                      "manifest line 3 ('srv/app/keep.txt') has -12 as its size; it must lie between 0 and"),
    "boolean uid": (lambda manifest: manifest.replace(b'"uid":0}', b'"uid":true}', 1),
                    "manifest line 2 ('srv/app') has a boolean true as its uid; it must be an integer"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MANIFESTS))
def test_a_malformed_manifest_is_refused_by_restore_and_verify_and_nothing_is_written(case, place):
    edit, problem = MALFORMED_MANIFESTS[case]
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], base_entries(), edit_manifest=edit)
    before = everything_but_the_catalog(place)
    with pytest.raises(IntegrityError) as refused:
        restore(place["backups"], backup_id, dest=place["dest"])
    assert problem in str(refused.value)
    assert everything_but_the_catalog(place) == before
    for level in ("full", "source"):
        with pytest.raises(IntegrityError) as refused:
            _verify.verify(backup_dir=str(place["backups"]), backup_id=backup_id, level=level,
                           key=KEY)
        assert problem in str(refused.value)


def test_setuid_is_restored_with_preserve_special(place):
    entries = base_entries() + [Entry("srv/app/suid", "file", b"#!/bin/sh\n", mode=0o4755)]
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], entries)
    restore(place["backups"], backup_id, dest=place["dest"], preserve_special=True)
    assert stat.S_IMODE(os.lstat(os.path.join(place["app"], "suid")).st_mode) == 0o4755


def test_absolute_symlinks_are_kept_verbatim_and_never_followed(place):
    """An absolute target is restored as-is (GNU tar and restic do the same); the restore does not follow it."""
    entries = base_entries() + [Entry("srv/app/abs", "symlink", target=place["outside"])]
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], entries)
    restore(place["backups"], backup_id, dest=place["dest"])
    assert os.readlink(os.path.join(place["app"], "abs")) == place["outside"]
    assert os.listdir(place["outside"]) == []


def test_relative_symlinks_inside_the_tree_are_restored(place):
    entries = base_entries() + [Entry("srv/app/sub", "dir", mode=0o755),
                                Entry("srv/app/sub/up", "symlink", target="../keep.txt")]
    backup_id = craft_backup(place["backups"], "app", ["/srv/app"], entries)
    restore(place["backups"], backup_id, dest=place["dest"])
    with open(os.path.join(place["app"], "sub", "up"), encoding="utf-8") as handle:
        assert handle.read() == "from backup\n"


def test_a_live_symlink_above_the_restored_path_is_not_written_through(place):
    """The host has srv as a link the archive knows as a directory: restoring below it would follow it."""
    entries = [Entry("srv", "dir", mode=0o755)] + base_entries()
    backup_id = craft_backup(place["backups"], "app", ["/srv"], entries)
    os.rename(os.path.join(place["dest"], "srv"), os.path.join(place["root"], "real-srv"))
    os.symlink(os.path.join(place["root"], "real-srv"), os.path.join(place["dest"], "srv"))
    with pytest.raises(Exception, match="symbolic link"):
        restore(place["backups"], backup_id, dest=place["dest"], include=["keep.txt"])
