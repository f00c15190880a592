#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: verify
short_description: Check that a backup is intact and readable
version_added: 0.1.0
description:
  - V(checksum) compares the artifact with its C(.sha256) sidecar and its metadata; it needs no key.
  - V(full) also decrypts and decompresses the whole artifact and compares every member with the SHA-256
    recorded in the manifest (for a database dump, the payload with its recorded digest).
  - V(source) compares the manifest with the live files at the backed-up paths and returns what was added,
    changed or removed since the backup; differences are reported, not treated as a failure.
  - The outcome is recorded in the backup's metadata (C(verification)), where the catalog and retention read it.
  - Fails with a message that names the artifact and what is wrong (which member, which chunk).
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.decryption
attributes:
  check_mode:
    support: full
    details: Verifies without recording the outcome in the metadata.
  diff_mode:
    support: none
options:
  path:
    description:
      - Path of the artifact. Mutually exclusive with O(id).
    type: path
  backup_dir:
    description:
      - Catalog directory holding the backup named by O(id).
    type: path
    default: /var/backups/lifeboat
  id:
    description:
      - Id of the backup in O(backup_dir).
    type: str
  level:
    description:
      - How deep to check.
    type: str
    choices: [checksum, full, source]
    default: checksum
requirements:
  - python >= 3.9 on the managed host
  - cryptography (to decrypt)
  - zstandard (for zstd artifacts)
seealso:
  - module: lifeboat.backup.archive
"""

EXAMPLES = r"""
- name: Cheap check after every backup
  lifeboat.backup.verify:
    backup_dir: /var/backups/lifeboat
    id: "{{ backup.id }}"

- name: Weekly full check with the operator's identity, never stored on the host
  lifeboat.backup.verify:
    path: "{{ backup.path }}"
    level: full
    identity: "{{ lookup('ansible.builtin.file', 'keys/backup.key') }}"
  no_log: true

- name: What changed since the last backup
  lifeboat.backup.verify:
    id: "{{ backup.id }}"
    level: source
    identity: "{{ backup_identity }}"
  register: drift
"""

RETURN = r"""
id:
  description: Id of the backup, when it has metadata.
  returned: success
  type: str
path:
  description: Path of the artifact checked.
  returned: success
  type: str
level:
  description: The level that was checked.
  returned: success
  type: str
sha256:
  description: SHA-256 of the artifact file.
  returned: success
  type: str
verified:
  description: V(true) when every check of the level passed (a failed check fails the task instead).
  returned: success
  type: bool
members:
  description: Number of archive members compared with the manifest.
  returned: when O(level=full)
  type: int
bytes:
  description: Plaintext bytes read and checked.
  returned: when O(level=full)
  type: int
differences:
  description: Paths V(added), V(changed) and V(removed) in the live tree since the backup.
  returned: when O(level=source)
  type: dict
stage:
  description: The check that failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._option_groups import DECRYPTION, OptionGroup, run_module
from ..module_utils._verify import LEVELS, verify

OPTIONS = OptionGroup(dict(
    path=dict(type="path"),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    id=dict(type="str"),
    level=dict(type="str", default="checksum", choices=list(LEVELS)),
), rename={"id": "backup_id"}, mutually_exclusive=[("path", "id")], required_one_of=[("path", "id")]) + DECRYPTION


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())
    run_module(module, OPTIONS, lambda arguments: verify(check_mode=module.check_mode, **arguments))


if __name__ == "__main__":
    main()
