# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What opens an artifact; twin of _option_groups.DECRYPTION.
    DOCUMENTATION = r"""
options:
  identity:
    description:
      - An age identity (V(AGE-SECRET-KEY-1...)), or the content of an identity file as C(age-keygen) writes it.
      - It never reaches the managed host. The module's action plugin, on the controller, reads the age header of the
        artifact the task opens (public, its recipient stanzas and MAC), unwraps that artifact's file key there, and
        runs the module with the file key alone. The file key opens that one artifact and no other.
      - Mutually exclusive with O(passphrase) and O(file_key).
    type: str
  passphrase:
    description:
      - Passphrase of an artifact encrypted with one. Like O(identity), it stays on the controller; the host gets the
        artifact's file key.
    type: str
  file_key:
    description:
      - The file key of the one artifact the task opens (V(LIFEBOAT-FILE-KEY-1...)), as the action plugin passes it,
        or as C(lifeboat unwrap) prints it on the controller. Kept in memory; a file key that belongs to another
        artifact is refused before anything is read.
      - For a backup of an incremental chain, one file key per artifact of the chain, separated by blank space; each
        opens its own artifact only.
    type: str
  header_only:
    description:
      - Only return the age header of the artifact the task would open (RV(header)), and do nothing else. The action
        plugin uses it to unwrap the file key on the controller; set it by hand to get the header for
        C(lifeboat unwrap).
    type: bool
    default: false
attributes:
  action:
    support: full
    description: An action plugin of the same name runs on the controller and keeps the identity and the passphrase
      there.
"""
