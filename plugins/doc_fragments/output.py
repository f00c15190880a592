# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options of modules that write a new backup into the catalog; twin of _option_groups.OUTPUT.
    DOCUMENTATION = r"""
options:
  job:
    description:
      - Name of the backup job. Backups are stored in O(backup_dir)/O(job)/ and ids start with the job name.
      - Letters, digits, V(_) and V(-) only, at most 64 characters.
    type: str
    required: true
  backup_dir:
    description:
      - The catalog directory on the managed host. Created with mode V(0700) when missing.
    type: path
    default: /var/backups/lifeboat
  compression:
    description:
      - V(zstd) is fast and multi-threaded and needs the Python package C(zstandard) on the host.
      - V(gzip) needs nothing beyond Python; V(none) stores the stream as it is.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description:
      - Level of the chosen compression; V(1) to V(19) for zstd (default V(3)), V(1) to V(9) for gzip (default V(6)).
    type: int
  tags:
    description:
      - Free-form labels stored in the metadata; retention can keep tagged backups.
    type: list
    elements: str
    default: []
  description:
    description:
      - A sentence stored in the metadata, shown by the catalog.
    type: str
  deploy_id:
    description:
      - Identifier of the deploy this backup precedes, so a rollback can find it.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for another run holding the lock of O(backup_dir) before failing.
    type: float
    default: 0
  read_back:
    description:
      - Before the artifact gets its name, read it back from the disk (its pages dropped from the page cache
        first) and check it as M(lifeboat.backup.verify) with O(lifeboat.backup.verify#module:level=full) does
        (the age header and every chunk, the compressed stream, every file against the manifest, or a dump's
        payload), with the key of that one file, which the backup generated and keeps in memory for the run only.
        No identity is needed on the host. The same read gives the artifact's SHA-256.
      - Anything that does not match fails the backup (stage C(read-back)) and leaves the catalog as it was.
      - The metadata of a backup read back records C(verification) with C(state=verified), C(level=full) and
        C(method=read-back); with V(false) it is C(unverified) until a verify run checks it.
      - It reads the whole artifact once more; C(docs/performance.md) has what that costs.
    type: bool
    default: true
"""
