# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A vault in a directory (file:///PATH): the SFTP vault seen from its own host, or a mounted share.

No versions, no locks: what protects the SFTP vault is the server refusing the hosts' removals. Uploads appear
whole or not at all (a temporary file, fsync, rename), as catalog files do.
"""

from __future__ import annotations

import datetime
import hashlib
import os

from .._errors import IntegrityError, StorageError, VaultError
from .._fileio import READ_SIZE, AtomicFile, open_nofollow
from .store import ObjectInfo, Store


class DirectoryStore(Store):
    scheme = "file"

    def _path(self, key):
        return "/" + key

    def check(self, write=False):
        root = self._path(self.address.prefix)
        if not os.path.isdir(root):
            raise VaultError("the vault directory %s does not exist: create it, or correct the vault url" % root,
                             stage="vault")
        if write and not os.access(root, os.W_OK):
            raise VaultError("the vault directory %s is not writable by this user" % root, stage="vault")
        return {}

    def list(self, directory):
        found = []
        top = self._path(directory)
        for parent, dirs, files in os.walk(top):
            dirs[:] = [name for name in dirs if not os.path.islink(os.path.join(parent, name))]
            for name in files:
                path = os.path.join(parent, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                found.append(ObjectInfo(path[1:], st.st_size, datetime.datetime.fromtimestamp(
                    st.st_mtime, datetime.timezone.utc)))
        return found

    def upload(self, key, stream, size, sha256):
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        except OSError as exc:
            raise VaultError("cannot create %s on %s: %s" % (os.path.dirname(path), self.describe(), exc.strerror),
                             stage="vault")
        digest = hashlib.sha256()
        written = 0
        with AtomicFile(path, mode=0o600) as target:
            while True:
                chunk = stream.read(READ_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                written += len(chunk)
                target.write(chunk)
            if written != size or digest.hexdigest() != sha256:
                raise IntegrityError("%s changed while it was copied to %s (%d bytes read, %d expected): nothing "
                                     "was stored" % (key, self.describe(), written, size), stage="vault")
            target.commit()
        st = os.stat(path)
        return ObjectInfo(key, st.st_size, datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc),
                          sha256=sha256)

    def open(self, info):
        try:
            return open_nofollow(self._path(info.key))
        except OSError as exc:
            raise VaultError("cannot read %s on %s: %s" % (info.key, self.describe(), exc.strerror), stage="vault")

    def remove(self, info):
        try:
            os.unlink(self._path(info.key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError("cannot remove %s from %s: %s" % (info.key, self.describe(), exc.strerror),
                               stage="vault")
