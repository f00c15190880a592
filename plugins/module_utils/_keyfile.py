# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""age identity files in the format age-keygen writes, created 0600 and never rewritten without being asked."""

from __future__ import annotations

import os

from . import _age, _catalog
from ._fileio import write_atomic
from ._errors import UsageError


def identity_file_text(identity, recipient, now):
    created = now.astimezone().isoformat(timespec="seconds")
    return "# created: %s\n# public key: %s\n%s\n" % (created, recipient, identity)


def ensure_keypair(path, force=False, check_mode=False):
    """Make an identity at path unless a valid one is there; return its public recipient."""
    if os.path.exists(path) and not force:
        with open(path, "r", encoding="utf-8") as handle:
            identities = _age.parse_identities(handle.read())
        if not identities:
            raise UsageError("%s exists but holds no age identity; move it away or set force: true" % path)
        changed = _fix_mode(path, check_mode)
        return {"changed": changed, "path": path, "recipient": _age.recipient_from_identity(identities[0])}
    if check_mode:
        return {"changed": True, "path": path, "recipient": None}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    identity, recipient = _age.generate_identity()
    write_atomic(path, identity_file_text(identity, recipient, _catalog.utc_now()).encode("ascii"), mode=0o600)
    return {"changed": True, "path": path, "recipient": recipient}


def _fix_mode(path, check_mode):
    if os.stat(path).st_mode & 0o077 == 0:
        return False
    if not check_mode:
        os.chmod(path, 0o600)
    return True
