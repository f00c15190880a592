# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What opens an age file: the operator's identities or a passphrase."""

from __future__ import annotations

import hmac

from .._errors import CryptoError, UsageError
from .header import header_mac
from .keys import parse_identities, recipient_from_identity
from .recipients import unwrap_file_key


class Key:
    """One way to open age files, given once and passed along: identities (AGE-SECRET-KEY-1... strings, or an
    identity file's text) or a passphrase. Its repr never shows the secret."""

    def __init__(self, identities=None, passphrase=None):
        if bool(identities) == bool(passphrase):
            raise UsageError("give either identity or passphrase, exactly one of them")
        if isinstance(identities, str):
            identities = [identities]
        # each an identity or an identity file's text: parsed now, so a malformed one fails before a file is opened
        self.identities = [identity for text in identities or () for identity in parse_identities(text)]
        self.passphrase = passphrase

    def __repr__(self):
        return "Key(%s)" % self.kind

    @property
    def kind(self):
        return "identity" if self.identities else "passphrase"

    def open(self, stanzas, up_to_dashes, mac):
        """The file key of the file whose header this is, once the header's MAC proved it."""
        file_key = unwrap_file_key(stanzas, self.identities or None, self.passphrase)
        if not hmac.compare_digest(header_mac(file_key, up_to_dashes), mac):
            raise CryptoError("header is corrupted (MAC mismatch)")
        return file_key

    def recipients(self):
        """The public recipients of the identities (none for a passphrase): who can open what this key opens."""
        return [recipient_from_identity(identity) for identity in self.identities]
