#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: encrypt
short_description: Encrypt or decrypt a file in the age format
version_added: 0.1.0
description:
  - Writes O(dest) as the age encryption of O(src) (O(state=encrypted)) or its decryption (O(state=decrypted)).
  - The result is written under a temporary name, synced and renamed into place, with mode V(0600).
  - The output is the standard age format, so C(age -d) opens what this module encrypts and the other way round.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.encryption
  - lifeboat.backup.decryption
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  src:
    description:
      - The file to read.
    type: path
    required: true
  dest:
    description:
      - The file to write.
    type: path
    required: true
  state:
    description:
      - V(encrypted) needs O(recipients) or O(passphrase); V(decrypted) needs O(identity) or O(passphrase).
    type: str
    choices: [encrypted, decrypted]
    default: encrypted
  force:
    description:
      - Write O(dest) even when it exists. Without it an existing O(dest) is left alone and nothing changes.
    type: bool
    default: false
requirements:
  - python >= 3.9 on the managed host
  - cryptography
seealso:
  - module: lifeboat.backup.keypair
"""

EXAMPLES = r"""
- name: Encrypt a database dump made by another tool
  lifeboat.backup.encrypt:
    src: /var/tmp/legacy.sql
    dest: /var/backups/legacy.sql.age
    recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p

- name: Decrypt it with the operator's identity
  lifeboat.backup.encrypt:
    src: /var/backups/legacy.sql.age
    dest: /var/tmp/legacy.sql
    state: decrypted
    identity: "{{ lookup('ansible.builtin.file', 'keys/backup.key') }}"
  no_log: true
"""

RETURN = r"""
header:
  description:
    - With O(header_only), the age header of the artifact the task would open (its recipient stanzas and MAC, ending
      with a line C(--- MAC)); null when the artifact is not encrypted. It is public and opens nothing without the identity
      or passphrase. C(lifeboat unwrap) turns it into the artifact's file key.
  returned: with O(header_only)
  type: str
  sample: "age-encryption.org/v1\n-> X25519 ...\n--- ...\n"
src:
  description: The file read.
  returned: always
  type: str
dest:
  description: The file written.
  returned: always
  type: str
state:
  description: The requested state.
  returned: always
  type: str
size:
  description: Size of O(dest) in bytes.
  returned: when O(dest) was written
  type: int
plaintext_size:
  description: Size of the plaintext in bytes.
  returned: when O(dest) was written
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._filecrypt import STATES, file_header, transform
from ..module_utils._option_groups import DECRYPTION, ENCRYPTION, OptionGroup, run_module

OPTIONS = OptionGroup(dict(
    src=dict(type="path", required=True),
    dest=dict(type="path", required=True),
    state=dict(type="str", default="encrypted", choices=list(STATES)),
    force=dict(type="bool", default=False),
), mutually_exclusive=[("identity", "recipients")]) + ENCRYPTION + DECRYPTION


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        if arguments.pop("header_only"):
            return file_header(arguments["src"])
        return transform(check_mode=module.check_mode, **arguments)

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
