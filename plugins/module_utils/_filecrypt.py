# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encrypting and decrypting single files in the age format, atomically."""

from __future__ import annotations

import os

from . import _age
from ._fileio import AtomicFile
from ._errors import NotFoundError, UsageError
from ._pipeline import encryption_method, header_result

STATES = ("encrypted", "decrypted")
_CHUNK = 1 << 20


def _copy(reader, writer):
    size = 0
    while True:
        chunk = reader.read(_CHUNK)
        if not chunk:
            return size
        writer.write(chunk)
        size += len(chunk)


def file_header(src):
    """The age header of src, for the holder of the key to unwrap its file key."""
    if not os.path.isfile(src):
        raise NotFoundError("source file %s does not exist" % src)
    with open(src, "rb") as handle:
        return header_result(None, src, handle, True)


def transform(src, dest, state, recipients=None, passphrase=None, key=None, force=False, check_mode=False):
    """Write dest as the encryption (or decryption) of src; nothing is done when dest exists and force is false.

    recipients or passphrase encrypt; key (an _age.Key) decrypts."""
    if state not in STATES:
        raise UsageError("state must be encrypted or decrypted")
    if not os.path.isfile(src):
        raise NotFoundError("source file %s does not exist" % src)
    if os.path.abspath(src) == os.path.abspath(dest):
        raise UsageError("src and dest are the same file; write the result to another path")
    result = {"src": src, "dest": dest, "state": state}
    if os.path.exists(dest) and not force:
        return dict(result, changed=False, msg="%s exists; set force: true to write it again" % dest)
    if state == "encrypted" and encryption_method(recipients, passphrase) == "none":
        raise UsageError("to encrypt, give recipients or passphrase")
    if state == "decrypted" and key is None:
        raise UsageError("to decrypt, give identity or passphrase")
    if check_mode:
        return dict(result, changed=True)
    with open(src, "rb") as source, AtomicFile(dest) as target:
        if state == "encrypted":
            writer = _age.AgeWriter(target, recipients=recipients or None, passphrase=passphrase or None)
            size = _copy(source, writer)
            writer.close()
        else:
            size = _copy(_age.AgeReader(source, key), target)
        target.commit()
    return dict(result, changed=True, size=os.path.getsize(dest), plaintext_size=size)
