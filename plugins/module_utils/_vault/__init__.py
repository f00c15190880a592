# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vaults: copies of a host's backups off the host, which the host can add to but not destroy.

address.py    a vault's URL, the layout PREFIX/HOST/JOB/STEM.<suffix> and the stems of retried copies
store.py      the interface of a kind of store (Store) and what it says of one stored object (ObjectInfo)
s3.py         S3 and every S3 API (boto3): multipart uploads, versions, Object Lock
s3errors.py   what botocore's errors mean to an operator: the S3 store's sentences
sftp.py       the append-only SFTP vault through the system's OpenSSH client
local.py      a directory (file://): the SFTP vault's own side, where its retention and sweeper run
"""

from __future__ import annotations

import importlib

from .._errors import UsageError
from .address import VaultAddress, check_host_name, job_directory, parse_stem, parse_url, stem
from .store import SMALL_OBJECT_LIMIT, ObjectInfo, Store

# scheme -> (module, Store subclass): a module is imported only when a vault of its kind is used, so a host
# without boto3 can still use an SFTP vault.
SCHEMES = {
    "s3": ("s3", "S3Store"),
    "sftp": ("sftp", "SftpStore"),
    "file": ("local", "DirectoryStore"),
}


def open_store(settings):
    """The Store of one vault's settings (url and the options of its kind)."""
    if not isinstance(settings, dict) or not settings.get("url"):
        raise UsageError("a vault needs at least a url")
    address = parse_url(settings["url"])
    module_name, class_name = SCHEMES[address.scheme]
    module = importlib.import_module("." + module_name, __name__)
    return getattr(module, class_name)(address, settings)


__all__ = ["SCHEMES", "SMALL_OBJECT_LIMIT", "ObjectInfo", "Store", "VaultAddress", "check_host_name",
           "job_directory", "open_store", "parse_stem", "parse_url", "stem"]
