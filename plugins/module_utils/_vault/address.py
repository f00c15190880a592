# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A vault's URL and the layout of backups on it.

    s3://BUCKET[/PREFIX]                       any S3 API (endpoint_url names a server other than AWS)
    sftp://USER@HOST[:PORT]/PATH               an append-only SFTP vault (OpenSSH internal-sftp)
    file:///PATH                               a directory: the SFTP vault's own side, a mounted share

On every vault a backup lives at PREFIX/HOST/JOB/STEM.<suffix>, STEM.json and, written last, STEM.sha256. The
stem is the backup's id; on stores whose names cannot be written twice (append-only SFTP) a retry after an
interrupted upload takes the stem ID~2, ID~3 ...: `~` never occurs in an id, and the sidecar names the artifact
of its own stem, so `sha256sum -c STEM.sha256` checks a copy whatever its stem.
"""

from __future__ import annotations

import re
import urllib.parse

from .._errors import UsageError

ATTEMPT_MARK = "~"
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._=+@-]+$")
_STEM_RE = re.compile(r"^(?P<id>[^~./]+)(?:~(?P<attempt>[2-9]|[1-9][0-9]+))?$")


class VaultAddress:
    """A parsed vault URL.

    scheme    s3, sftp or file
    url       the URL as given, normalised (no trailing slash); what messages and the catalog call the vault
    bucket    s3: the bucket
    user, host, port   sftp
    prefix    the key prefix under which hosts' directories are, without leading or trailing slash. Keys are
              relative to the store's root: the bucket (s3), the session's root directory (sftp, usually a
              chroot), the file system's root (file)
    """

    def __init__(self, scheme, url, prefix, bucket=None, user=None, host=None, port=None):
        self.scheme = scheme
        self.url = url
        self.prefix = prefix
        self.bucket = bucket
        self.user = user
        self.host = host
        self.port = port

    def __repr__(self):
        return "VaultAddress(%r)" % self.url


def parse_url(url):
    """A VaultAddress from s3://, sftp:// or file:// URLs; anything else, or credentials in it, is refused."""
    if not isinstance(url, str) or "://" not in url:
        raise UsageError("vault url %r is not a URL: use s3://BUCKET/PREFIX, sftp://USER@HOST[:PORT]/PATH or "
                         "file:///PATH" % (url,))
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment:
        raise UsageError("vault url %s: a query or fragment is not supported" % url)
    if parts.password is not None:
        raise UsageError("vault url %s holds a password: give credentials as options (access_key/secret_key, "
                         "identity_file), never in the URL" % _redact(url))
    path = _clean_path(url, parts.path)
    if parts.scheme == "s3":
        if not _BUCKET_RE.match(parts.netloc or ""):
            raise UsageError("vault url %s: %r is not a valid bucket name" % (url, parts.netloc))
        return VaultAddress("s3", _join("s3://" + parts.netloc, path), path, bucket=parts.netloc)
    if parts.scheme == "sftp":
        if not parts.username or not parts.hostname:
            raise UsageError("vault url %s: name the account and the host, sftp://USER@HOST[:PORT]/PATH" % url)
        try:
            port = parts.port or 22
        except ValueError:
            raise UsageError("vault url %s: the port is not a number from 1 to 65535" % url)
        if not path:
            raise UsageError("vault url %s: give the directory on the vault, sftp://USER@HOST[:PORT]/PATH" % url)
        return VaultAddress("sftp", url.rstrip("/"), path, user=parts.username, host=parts.hostname, port=port)
    if parts.scheme == "file":
        if parts.netloc or not path:
            raise UsageError("vault url %s: a directory vault is file:///ABSOLUTE/PATH" % url)
        return VaultAddress("file", "file:///" + path, path)
    raise UsageError("vault url %s: the scheme %r is not supported: use s3, sftp or file" % (url, parts.scheme))


def _redact(url):
    parts = urllib.parse.urlsplit(url)
    netloc = "%s:********@%s" % (parts.username, parts.netloc.rsplit("@", 1)[1])
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _clean_path(url, path):
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if segment in (".", "..") or not _SEGMENT_RE.match(segment):
            raise UsageError("vault url %s: the path segment %r is not allowed (letters, digits and ._=+@- only)"
                             % (url, segment))
    return "/".join(segments)


def _join(*parts):
    return "/".join(part for part in parts if part)


def check_host_name(host):
    """The HOST part of the layout: an inventory name, by default this host's."""
    if not isinstance(host, str) or not _HOST_RE.match(host) or ".." in host:
        raise UsageError("vault host name %r is not valid: letters, digits, '.', '_' and '-' (at most 253)" % (host,))
    return host


def host_directory(address, host):
    """The key prefix of one host on the vault: PREFIX/HOST."""
    return _join(address.prefix, check_host_name(host))


def job_directory(address, host, job):
    """The key prefix of one host's job on the vault: PREFIX/HOST/JOB."""
    return _join(address.prefix, check_host_name(host), job)


def stem(backup_id, attempt=1):
    """The stem of a copy's files: the id itself, ID~N for the Nth attempt on an append-only vault."""
    return backup_id if attempt == 1 else "%s%s%d" % (backup_id, ATTEMPT_MARK, attempt)


def parse_stem(name):
    """(backup id, attempt) of STEM.<anything>, or None for a name that is no copy's file."""
    match = _STEM_RE.match(name.split(".", 1)[0])
    if not match:
        return None
    return match.group("id"), int(match.group("attempt") or 1)
