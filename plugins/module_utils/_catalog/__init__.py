# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-disk catalog of a host's backups; callers use ``from . import _catalog`` and the names below.

layout.py     the backup directory, job directories, private scratch space, backup ids, the names of catalog files
lock.py       the writer lock: one writer at a time per backup directory (a restore holds it for its whole run)
sidecars.py   a backup's `.sha256` and `.json` sidecars, written checksum first, metadata last
scan.py       reading without changing: backups by job or id, leftovers of killed runs and restores, lookups
journal.py    database restores in progress: what a killed one left, and the command that puts it back
"""

from __future__ import annotations

from .layout import (CHECKSUM_SUFFIX, DEFAULT_BACKUP_DIR, FILES_JOURNAL_PREFIX, FORMAT_VERSION, LOCK_NAME,
                     METADATA_SUFFIX, PRIVATE_NAME, RESTORES_DIR, SIDECAR_SUFFIXES, artifact_path, check_artifact_name,
                     check_job_name, ensure_dir, is_catalog_file,
                     iso_utc, job_dir, job_of, local_iso, name_patterns, new_backup_id, private_dir, public,
                     series_key, strip_artifact_suffix, utc_now)
from .journal import RestoreJournal, describe_restore, interrupted_restores, put_back_command
from .lock import CatalogLock, lock_holder, owner
from .scan import (LEFTOVER_AGE, STATES, JobScan, backup_time, chain_needs, check_chain, find_backup, list_metadata,
                   locate, parse_time, restore_journals, scan_catalog, verification_label, verification_state)
from .sidecars import checksum_line, read_checksum, read_metadata, write_metadata, write_sidecars

__all__ = [
    "CHECKSUM_SUFFIX", "DEFAULT_BACKUP_DIR", "FILES_JOURNAL_PREFIX", "FORMAT_VERSION", "LOCK_NAME", "METADATA_SUFFIX", "PRIVATE_NAME",
    "RESTORES_DIR", "SIDECAR_SUFFIXES",
    "artifact_path", "check_artifact_name", "check_job_name", "ensure_dir", "is_catalog_file", "iso_utc", "job_dir", "job_of", "local_iso",
    "name_patterns", "new_backup_id", "private_dir", "public", "series_key", "strip_artifact_suffix", "utc_now",
    "RestoreJournal", "describe_restore", "interrupted_restores", "put_back_command",
    "CatalogLock", "lock_holder", "owner",
    "LEFTOVER_AGE", "STATES", "JobScan", "backup_time", "chain_needs", "check_chain", "find_backup", "list_metadata",
    "locate", "parse_time",
    "restore_journals", "scan_catalog", "verification_label", "verification_state",
    "checksum_line", "read_checksum", "read_metadata", "write_metadata", "write_sidecars",
]
