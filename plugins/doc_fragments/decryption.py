# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The secret that opens an artifact; twin of _option_groups.DECRYPTION.
    DOCUMENTATION = r"""
options:
  identity:
    description:
      - An age identity (V(AGE-SECRET-KEY-1...)), or the content of an identity file as C(age-keygen) writes it.
      - It is passed in memory and never written to the managed host's disk.
      - Mutually exclusive with O(passphrase).
    type: str
  passphrase:
    description:
      - Passphrase of an artifact encrypted with one.
    type: str
"""
