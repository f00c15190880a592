# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kinds of store by URL scheme, and one vault as a job, a module or the command names it: its store, its name,
the host its copies are filed under."""

from __future__ import annotations

import socket

from .._errors import UsageError
from .address import check_host_name, job_directory, parse_url


# A kind's file is imported only when a vault of its kind is used, so a host without boto3 can still use an SFTP
# vault. The imports are plain statements, not importlib: Ansible ships with a module the files it sees imported.
def _s3():
    from .s3 import S3Store
    return S3Store


def _sftp():
    from .sftp import SftpStore
    return SftpStore


def _directory():
    from .local import DirectoryStore
    return DirectoryStore


# scheme -> the loader of its Store subclass
SCHEMES = {"s3": _s3, "sftp": _sftp, "file": _directory}


# What an SFTP vault's settings default to: the host's own key and the vaults' host keys, as the agent role
# installs them.
SFTP_DEFAULTS = {"identity_file": "/etc/lifeboat/vault_ed25519", "known_hosts_file": "/etc/lifeboat/vault_known_hosts"}


def open_store(settings):
    """The Store of one vault's settings (url and the options of its kind)."""
    if not isinstance(settings, dict) or not settings.get("url"):
        raise UsageError("a vault needs at least a url")
    address = parse_url(settings["url"])
    if address.scheme == "sftp":
        settings = dict(settings, **{key: settings.get(key) or value for key, value in SFTP_DEFAULTS.items()})
    return SCHEMES[address.scheme]()(address, settings)


class Vault:
    """settings: the vault's options: url, name (default: the url), host (default: this host's name), and the
    options of its kind of store (credentials included: never printed, never recorded)."""

    def __init__(self, settings, default_host=None):
        if not isinstance(settings, dict):
            raise UsageError("a vault is a mapping with at least a url")
        self.store = open_store(settings)
        self.name = settings.get("name") or self.store.address.url
        self.host = check_host_name(settings.get("host") or default_host or socket.gethostname().split(".")[0])

    def directory(self, job):
        return job_directory(self.store.address, self.host, job)

    def describe(self):
        return "vault %s (%s)" % (self.name, self.store.describe()) if self.name != self.store.address.url \
            else "vault %s" % self.store.describe()
