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
  - With O(vault), checks this host's copy of the backup O(id) on the vault instead, and records nothing
    (C(changed=false)). V(checksum) compares the SHA-256 the store recorded with the artifact against its sidecar
    where the store keeps one (S3), and otherwise reads the copy back and hashes it (SFTP, a directory); it needs no
    key. V(full) streams the copy back and checks it as a local full verify does. V(source) is refused, since a copy is
    checked against its backup, not against the live tree. A copy whose keys were deleted or written again after it
    was made fails even when its first versions pass, and a copy whose SHA-256 differs from the local backup's fails.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.decryption
  - lifeboat.backup.vault
attributes:
  check_mode:
    support: full
    details: Verifies without recording the outcome in the metadata (with O(vault) nothing is recorded either way).
  diff_mode:
    support: none
options:
  path:
    description:
      - Path of the artifact. Mutually exclusive with O(id) and O(vault).
    type: path
  backup_dir:
    description:
      - Catalog directory holding the backup named by O(id).
    type: path
    default: /var/backups/lifeboat
  id:
    description:
      - Id of the backup in O(backup_dir), or with O(vault) of the copy on the vault (required then).
    type: str
  level:
    description:
      - How deep to check. With O(vault), V(checksum) or V(full).
    type: str
    choices: [checksum, full, source]
    default: checksum
requirements:
  - python >= 3.9 on the managed host
  - cryptography (to decrypt)
  - zstandard (for zstd artifacts)
  - boto3 for an S3 vault, the OpenSSH client (C(sftp)) for an SFTP vault
seealso:
  - module: lifeboat.backup.archive
  - module: lifeboat.backup.replicate
"""

EXAMPLES = r"""
- name: Cheap check after every backup
  lifeboat.backup.verify:
    backup_dir: /var/backups/lifeboat
    id: "{{ backup.id }}"

- name: Weekly full check; the identity stays on the controller, the host gets this backup's file key
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

- name: Read the off-site copy back and check every member, with the key from the controller
  lifeboat.backup.verify:
    id: "{{ backup.id }}"
    level: full
    identity: "{{ backup_identity }}"
    vault:
      url: sftp://web1@vault.example.net/backups
      host: "{{ inventory_hostname }}"
      identity_file: /etc/lifeboat/vault_ed25519
      known_hosts_file: /etc/lifeboat/vault_known_hosts
  no_log: true
"""

RETURN = r"""
chain_headers:
  description:
    - With O(header_only), for a backup of an incremental chain, the age headers of the earlier backups of its chain,
      which the task opens too (one file key each); empty for a full backup.
  returned: with O(header_only)
  type: list
  elements: str
header:
  description:
    - With O(header_only), the age header of the artifact the task would open (its recipient stanzas and MAC, ending
      with a line C(--- MAC)); null when the artifact is not encrypted. It is public and opens nothing without the identity
      or passphrase. C(lifeboat unwrap) turns it into the artifact's file key.
  returned: with O(header_only)
  type: str
  sample: "age-encryption.org/v1\n-> X25519 ...\n--- ...\n"
id:
  description: Id of the backup, when it has metadata.
  returned: success
  type: str
path:
  description: Path of the artifact checked.
  returned: success, without O(vault)
  type: str
vault:
  description: The name of the vault whose copy was checked.
  returned: success, with O(vault)
  type: str
key:
  description: The copy's artifact on the vault.
  returned: success, with O(vault)
  type: str
version:
  description: The version of the copy's artifact that was checked, on a versioned store (S3); V(null) elsewhere.
  returned: success, with O(vault)
  type: str
method:
  description: How the copy's bytes were checked, V(store) (the digest the store recorded, compared with the
    sidecar) or V(read) (read back and hashed).
  returned: success, with O(vault)
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
from ..module_utils._option_groups import DECRYPTION, VAULT, OptionGroup, run_module
from ..module_utils._errors import UsageError
from ..module_utils._vault.reading import copy_header, verify_copy
from ..module_utils._verify import LEVELS, artifact_header, verify

OPTIONS = OptionGroup(dict(
    path=dict(type="path"),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    id=dict(type="str"),
    level=dict(type="str", default="checksum", choices=list(LEVELS)),
), rename={"id": "backup_id"}, mutually_exclusive=[("path", "id"), ("path", "vault")],
    required_one_of=[("path", "id")], required_by={"vault": "id"}) + DECRYPTION + VAULT


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        vault, header_only, level = arguments.pop("vault"), arguments.pop("header_only"), arguments["level"]
        if header_only:
            if level == "checksum":
                raise UsageError("a checksum verification needs no key: give the key only with level full or source")
            return copy_header(vault, arguments["backup_id"]) if vault is not None else \
                artifact_header(arguments["backup_dir"], arguments["backup_id"], arguments["path"])
        if vault is None:
            return verify(check_mode=module.check_mode, **arguments)
        arguments.pop("path")
        return dict(verify_copy(vault, **arguments), changed=False)

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
