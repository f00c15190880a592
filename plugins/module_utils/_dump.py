# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backing up databases: dumper -> (tar, for dump directories) -> artifact -> sidecars.

The dump tool's output streams through the same pipeline as an archive: compression, age
encryption and SHA-256 on the way to a temporary file that is renamed into place only once the
tool has exited successfully. A failed pg_dump therefore leaves no artifact behind.

Snapshots (SQLite) and dump directories (pg_dump --format=directory, pg_dumpall --globals-only)
need disk space for plaintext while they are tarred. They go into <backup_dir>/.dump-tmp/, a
0700 directory on the filesystem already sized for backups (/tmp is often a small tmpfs), that
exists only while a dump holds the catalog lock: whatever a killed run left there is removed by
the next dump.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import os
import shutil
import stat
import time

from . import _catalog
from ._db import ENGINES, make_dumper
from ._errors import SourceError, StorageError, UsageError
from ._output import NewBackup, OutputRequest
from ._tarstream import DIRECTORY, REGULAR, TarWriter

SCRATCH_NAME = ".dump-tmp"
READ_SIZE = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # the constant is in the fcntl module from Python 3.10
# What the payload is, for the engines whose dump tool has no format choice.
FIXED_FORMATS = {"mysql": "plain", "sqlite": "file"}


class DumpRequest(OutputRequest):
    """Everything a dump run needs; the module and the on-host command both build one."""

    def __init__(self, engine, database, job, backup_dir=_catalog.DEFAULT_BACKUP_DIR, compression="zstd",
                 compression_level=None, recipients=None, passphrase=None, tags=(), description=None,
                 deploy_id=None, lock_timeout=0.0, login_host=None, login_port=None, login_user=None,
                 login_password=None, login_unix_socket=None, pg_format=None, jobs=1, include_globals=False,
                 row_counts="exact", read_back=True, seal=None):
        if engine not in ENGINES:
            raise UsageError("unknown database engine %r: use %s" % (engine, ", ".join(ENGINES)))
        if not database:
            raise UsageError("database is empty: name the database (for SQLite, the path of its file)")
        if engine != "postgresql" and (pg_format is not None or jobs != 1):
            raise UsageError("format and jobs apply to PostgreSQL only")
        super().__init__(job, backup_dir, compression, compression_level, recipients, passphrase, tags, description,
                         deploy_id, lock_timeout, read_back, seal)
        self.engine = engine
        self.database = os.path.abspath(database) if engine == "sqlite" else database
        self.connection = {"login_host": login_host, "login_port": login_port, "login_user": login_user,
                           "login_password": login_password, "login_unix_socket": login_unix_socket}
        self.pg_format = pg_format or "custom"
        self.jobs = jobs
        self.include_globals = include_globals
        self.row_counts = row_counts
        self.dumper(None)  # contradicting dump options fail before anything is touched

    def dumper(self, tmp_parent):
        """The engine's backend; its snapshots and private files go under tmp_parent (None: the system's)."""
        options = dict(self.connection, row_counts=self.row_counts, include_globals=self.include_globals,
                       tmp_parent=tmp_parent)
        if self.engine == "postgresql":
            options.update(pg_format=self.pg_format, jobs=self.jobs)
        return make_dumper(self.engine, self.database, **options)

    @property
    def dump_format(self):
        return FIXED_FORMATS.get(self.engine, self.pg_format)

    def server(self):
        """Where the database was reached, for the metadata: never the user's secret."""
        if self.engine == "sqlite":
            return {}
        found = {"host": self.connection["login_host"], "port": self.connection["login_port"],
                 "unix_socket": self.connection["login_unix_socket"]}
        return {key: value for key, value in found.items() if value is not None}


@contextlib.contextmanager
def scratch_directory(backup_dir):
    """<backup_dir>/.dump-tmp, emptied before and removed after; call it under the catalog lock only."""
    path = os.path.join(backup_dir, SCRATCH_NAME)
    shutil.rmtree(path, ignore_errors=True)  # a killed run's leftovers: no other dump can be running
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        raise StorageError("cannot create the dump directory %s: %s" % (path, exc.strerror), stage="prepare")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _widen_pipe(stream):
    """A 64 KiB pipe stalls the dump tool at every turn of the reader; 1 MiB (the unprivileged limit) does not."""
    try:
        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, READ_SIZE)
    except OSError:
        pass  # not a pipe (an SQLite snapshot file), or the limit is lower: the copy works all the same


def _copy_stream(stream, writer):
    _widen_pipe(stream)
    for chunk in iter(lambda: stream.read(READ_SIZE), b""):
        writer.write(chunk)


def _tree_entries(root, relative=""):
    """(name, path, stat) of every directory and regular file under root, depth first, in name order."""
    for name in sorted(os.listdir(os.path.join(root, relative))):
        member = relative + "/" + name if relative else name
        path = os.path.join(root, member)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            yield member, path, st
            yield from _tree_entries(root, member)
        elif stat.S_ISREG(st.st_mode):
            yield member, path, st
        else:
            raise SourceError("the dump directory holds %s, which is neither a file nor a directory" % member,
                              stage="tar")


def _tar_file(tar, member, path, st):
    tar.add_header(member, REGULAR, st=st, size=st.st_size)
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    left = st.st_size
    with open(path, "rb", buffering=0) as handle:
        while left:
            count = handle.readinto(view[:min(left, READ_SIZE)])
            if not count:
                raise SourceError("%s shrank while it was archived" % member, stage="tar")
            tar.write_data(view[:count])
            left -= count
    tar.end_member(st.st_size)


def _tar_tree(root, writer):
    """A tar stream of the dump directory: deterministic member order, names relative to it."""
    tar = TarWriter(writer)
    try:
        for member, path, st in _tree_entries(root):
            if stat.S_ISDIR(st.st_mode):
                tar.add_header(member + "/", DIRECTORY, st=st)
            else:
                _tar_file(tar, member, path, st)
    except OSError as exc:
        raise SourceError("cannot read the dump directory: %s" % exc, stage="tar") from exc
    tar.close()


def _stream_dump(dumper, writer):
    """Copy the dump into the writer; return the description. Raises when the tool failed."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        with dumper.open() as source:
            # Inside open(): an SQLite description is then the snapshot's, exactly what is stored. Beside the
            # copy, not before it: exact row counts of a big database take as long as a good part of the dump.
            description = pool.submit(dumper.inspect)
            if source.tree is not None:
                _tar_tree(source.tree, writer)
            else:
                _copy_stream(source.stream, writer)
            concurrent.futures.wait([description])
        # Only after open() has checked the dump tool: when both fail, the dump's own error is the one to report.
        return description.result()


def _write_sidecars(path, metadata):
    """The sidecars make the backup; if they cannot be written, the artifact must not stay as an orphan."""
    try:
        _catalog.write_sidecars(path, metadata)
    except BaseException:
        for leftover in (path, _catalog.strip_artifact_suffix(path) + _catalog.CHECKSUM_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        raise


def _summary(request, description):
    tables = description["tables"]
    return "%s database %s (%d tables, %d rows)" % (request.engine, request.database, len(tables),
                                                    description["total_rows"])


def _predict(request):
    dumper = request.dumper(None)
    dumper.check()
    description = dumper.inspect()
    name = request.artifact_name("<id>", dumper.suffix)
    return dict(description, changed=True, warnings=[],
                msg="would dump %s into %s" % (_summary(request, description),
                                               os.path.join(request.backup_dir, request.job, name)))


def run_dump(request, check_mode=False):
    """Dump the request's database into a new backup; returns the result dict the module reports."""
    if check_mode:
        return _predict(request)
    started = time.monotonic()
    _catalog.ensure_dir(request.backup_dir)
    with _catalog.CatalogLock(request.backup_dir, timeout=request.lock_timeout):
        with scratch_directory(request.backup_dir) as scratch:
            dumper = request.dumper(scratch)
            dumper.check()
            return _write_backup(request, dumper, started)


def _write_backup(request, dumper, started):
    # The digest of an encrypted dump's plaintext, beside its table names and row counts in the metadata anyone
    # reading the catalog sees, would confirm a guess of a small database; age already authenticates every byte
    # of the payload. Only an unencrypted dump, readable as it is, records it.
    plain = request.method == "none"
    backup = NewBackup(request, dumper.suffix, "database", content_digest=plain)
    with backup.writer as writer:
        description = _stream_dump(dumper, writer)
        # Only now, with the dump tool known to have succeeded, does the artifact get its name.
        written = backup.commit()
    metadata = backup.metadata([request.database], written, written["input_size"], [], started)
    if plain:
        metadata["content_sha256"] = written["content_sha256"]
    metadata.update({
        "engine": request.engine, "database": request.database,
        "server": request.server(), "dump_format": request.dump_format, "include_globals": request.include_globals,
        "server_version": description["server_version"], "tables": description["tables"],
        "total_rows": description["total_rows"], "row_counts": description["row_counts"],
        "schema_version": description["schema_version"],
    })
    _write_sidecars(writer.final_path, metadata)
    return {"changed": True, "warnings": [], "id": backup.id, "path": writer.final_path,
            "sha256": written["sha256"], "size": written["size"], "server_version": description["server_version"],
            "tables": description["tables"], "total_rows": description["total_rows"],
            "row_counts": description["row_counts"], "schema_version": description["schema_version"],
            "metadata": metadata, "msg": "dumped %s into %s" % (_summary(request, description), backup.name)}
