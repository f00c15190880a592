# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Encryption of what a module writes; twin of encryption_spec().
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

    # The secret that decrypts; twin of identity_spec().
    IDENTITY = r"""
options:
  identity:
    description:
      - An age identity (V(AGE-SECRET-KEY-1...)), or the content of an identity file as C(age-keygen) writes it.
      - It is passed in memory and never written to the managed host's disk.
    type: str
"""
