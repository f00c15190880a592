# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vaults: copies of a host's backups off the host, which the host can add to but not destroy.

address.py    a vault's URL, the layout PREFIX/HOST/JOB/STEM.<suffix> and the stems of retried copies
store.py      the interface of a kind of store (Store) and what it says of one stored object (ObjectInfo)
s3.py         S3 and every S3 API (boto3): multipart uploads, versions, Object Lock
s3errors.py   what botocore's errors mean to an operator: the S3 store's sentences
sftp.py       the append-only SFTP vault through the system's OpenSSH client
sftpwire.py   SFTP version 3 over the pipes of `ssh -s HOST sftp`: requests pipelined, replies parsed strictly
local.py      a directory (file://): the SFTP vault's own side, where its retention and sweeper run
config.py     the kinds of store by URL scheme; one vault as a job names it (Vault: store, name, host)
copies.py     backups as a vault holds them: complete copies, partial ones, signs of tampering
replicate.py  copying a job's local backups that a vault lacks, each checked and recorded in its metadata
reading.py    listing a host's copies, verifying one, fetching one back and restoring it
arrival.py    a copy downloaded into scratch space and read while it arrives: a restore starts on its first bytes
maintain.py   the trusted side's retention (locks extended, never shortened) and sweep of partial uploads
state.py      how replication went per job and vault: the backlog and a failing vault, for health and metrics
"""

from __future__ import annotations

from .address import VaultAddress, check_host_name, host_directory, job_directory, parse_stem, parse_url, stem
from .config import SCHEMES, Vault, open_store
from .store import SMALL_OBJECT_LIMIT, ObjectInfo, Store

__all__ = ["SCHEMES", "SMALL_OBJECT_LIMIT", "ObjectInfo", "Store", "Vault", "VaultAddress", "check_host_name",
           "host_directory", "job_directory", "open_store", "parse_stem", "parse_url", "stem"]
