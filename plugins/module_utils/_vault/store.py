# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface every kind of vault store implements, and what it says about one stored object.

A store knows objects by key ("PREFIX/HOST/JOB/NAME", relative to the vault's root) and nothing of backups;
copies.py reads backups out of its listings, replicate.py writes them. Adding a kind of store (Azure, GCS, WebDAV)
is one more file with one Store subclass and its loader in config.SCHEMES.
"""

from __future__ import annotations

from .._errors import IntegrityError

SMALL_OBJECT_LIMIT = 1 << 20  # sidecars and metadata: a larger one is refused unread (damaged or hostile)


class ObjectInfo:
    """One version of one object as the store lists it.

    key            the object's key under the vault's root
    size           bytes (None for a delete marker)
    modified       when the store wrote it (aware UTC datetime)
    version        the store's version id, None on stores without versions
    latest         False for a version that a later write or a delete marker hides
    delete_marker  True for an S3 delete marker: the key looks deleted, older versions are still there
    retain_until   until when the store refuses to delete or change it (aware UTC datetime), None if not locked
    lock_mode      COMPLIANCE or GOVERNANCE where retain_until is set
    sha256         the whole object's SHA-256 the writer recorded with it, None where the store keeps none
    digest         what the store itself computed of the bytes it received (S3: the ETag), None where it computes none
    """

    __slots__ = ("key", "size", "modified", "version", "latest", "delete_marker", "retain_until", "lock_mode",
                 "sha256", "digest")

    def __init__(self, key, size, modified, version=None, latest=True, delete_marker=False, retain_until=None,
                 lock_mode=None, sha256=None, digest=None):
        self.key = key
        self.size = size
        self.modified = modified
        self.version = version
        self.latest = latest
        self.delete_marker = delete_marker
        self.retain_until = retain_until
        self.lock_mode = lock_mode
        self.sha256 = sha256
        self.digest = digest

    @property
    def name(self):
        return self.key.rsplit("/", 1)[-1]

    def __repr__(self):
        return "ObjectInfo(%r, version=%r, size=%r%s)" % (self.key, self.version, self.size,
                                                          ", delete marker" if self.delete_marker else "")


class Store:
    """A place that holds objects; subclasses implement every method below.

    versioned       writes over a key and deletes keep the older versions (S3 with versioning): a host that can
                    write can hide a copy but not destroy it
    reusable_names  False where a name once written can never be written or removed by the writer (the append-only
                    SFTP vault): an interrupted upload is left for the trusted side to sweep, and the next attempt
                    takes a fresh name
    """

    scheme = None
    versioned = False
    reusable_names = True

    def __init__(self, address, settings):
        """address: the parsed URL (address.VaultAddress); settings: the vault's options (credentials included)."""
        self.address = address
        self.settings = settings

    def describe(self):
        """The vault as messages name it: its URL and endpoint, never a credential."""
        return self.address.url

    def check(self, write=False):
        """Refuse, with a sentence that says what to fix, a vault this run cannot use (unreachable, credentials,
        a missing bucket or directory, no versioning or Object Lock where one is required, an unknown host key).

        Returns facts for the record, e.g. {"object_lock": "COMPLIANCE", "retention_days": 30}.
        """
        raise NotImplementedError

    def list(self, directory):
        """Every version of every object whose key starts with directory + "/" (ObjectInfo): the written versions of
        one key newest first, as S3 lists them (their times may tie within a second); keys in any order."""
        raise NotImplementedError

    def upload(self, key, stream, size, sha256):
        """Store size bytes read from stream under key; returns the stored version's ObjectInfo.

        The whole object's SHA-256 is computed while streaming and must equal sha256, or the upload is abandoned.
        Memory stays bounded whatever the size. Where names are reusable, a failed upload leaves nothing under
        key (S3: the multipart upload is aborted); elsewhere it may leave a partial object the caller never counts.
        """
        raise NotImplementedError

    def details(self, info):
        """info completed with what a listing leaves out and costs one request per version to learn (S3: sha256,
        digest, retain_until, lock_mode, from a HEAD of that version); stores whose listing has it all return info.
        """
        return info

    def open(self, info):
        """A context manager yielding a readable binary stream of that version's bytes."""
        raise NotImplementedError

    def read_small(self, info, limit=SMALL_OBJECT_LIMIT):
        """The bytes of a small object (a sidecar, metadata); one larger than limit is refused unread."""
        if info.size is not None and info.size > limit:
            raise IntegrityError("%s on %s holds %d bytes, more than a sidecar can: it is damaged or was crafted"
                                 % (info.key, self.describe(), info.size), stage="vault")
        with self.open(info) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise IntegrityError("%s on %s is larger than a sidecar can be: it is damaged or was crafted"
                                 % (info.key, self.describe()), stage="vault")
        return data

    # The trusted side only: retention and sweeping run with credentials a host never holds.

    def remove(self, info):
        """Delete that version (S3: refused by the store while its lock holds)."""
        raise NotImplementedError

    def retain(self, info, until):
        """Make the store refuse deleting that version until `until` at least; never shortens a lock.

        Returns the updated ObjectInfo; stores without locks return info unchanged.
        """
        return info

    def sweep_uploads(self, directory, before):
        """Abandon what uploads interrupted before `before` (an aware datetime) left invisible under directory
        (S3: incomplete multipart uploads); returns the keys concerned. Partial objects that are visible (the SFTP
        vault's) are copies' business: copies.py finds them, the trusted side removes them.
        """
        return []

    def close(self):
        """Release connections; the store is not used afterwards."""
