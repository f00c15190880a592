# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Encryption of what a module writes; twin of _option_groups.ENCRYPTION.
    DOCUMENTATION = r"""
options:
  recipients:
    description:
      - age X25519 recipients (public keys, V(age1...)) that can decrypt the artifact.
      - Only public keys are needed on the host; the identity that decrypts stays with the operator.
      - Mutually exclusive with O(passphrase). With neither, the artifact is not encrypted.
    type: list
    elements: str
    default: []
  passphrase:
    description:
      - Encrypt with an age scrypt passphrase instead of recipients.
    type: str
"""
