#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: replicate
short_description: Copy a job's backups off the host to a vault (S3, SFTP or a directory)
version_added: 0.1.0
description:
  - Copies every backup of O(job) in O(backup_dir) that O(vault) lacks, newest first, to
    C(PREFIX/HOST/JOB/ID.<suffix>) with its C(ID.json) and, written last, its C(ID.sha256). A copy counts only once
    its sidecar is there and matches; each one is read back from the vault before it is recorded in the local
    metadata (C(vaults)), where M(lifeboat.backup.catalog_info) shows it.
  - O(vault) is required.
  - Never deletes anything on the vault, and needs no right to. What an interrupted upload left stays for the
    trusted side (M(lifeboat.backup.prune) with O(lifeboat.backup.prune#module:vault), run from the controller); the
    next run finishes the copy.
  - Backups already on the vault are not sent again, so a second run changes nothing.
  - The catalog lock is held only to record a copy, never during an upload, so backups and prunes do not wait for a
    slow link; a backup pruned while it is sent keeps its copy on the vault and gets no record.
  - For a 3-2-1 layout, loop over several vaults (see the examples); each vault is recorded under its
    O(vault.name).
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.vault
attributes:
  check_mode:
    support: full
    details: Checks that the vault can be read and lists what would be sent; nothing is uploaded or recorded.
  diff_mode:
    support: none
    details: RV(sent) lists what is, or would be, copied.
options:
  job:
    description:
      - The job whose backups are copied.
    type: str
    required: true
  backup_dir:
    description:
      - The catalog directory on the managed host.
    type: path
    default: /var/backups/lifeboat
  lock_timeout:
    description:
      - Seconds to wait for the lock of O(backup_dir) when a copy is recorded in its metadata (a backup or a prune
        may hold it).
    type: float
    default: 600
requirements:
  - python >= 3.9 on the managed host
  - boto3 for an S3 vault
  - the OpenSSH client (C(sftp)) for an SFTP vault
seealso:
  - module: lifeboat.backup.catalog_info
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.restore
  - module: lifeboat.backup.prune
"""

EXAMPLES = r"""
- name: Copy the app's backups to an S3 bucket with Object Lock, credentials from Ansible Vault
  lifeboat.backup.replicate:
    job: app
    vault:
      url: s3://backups-example/fleet
      name: offsite
      host: "{{ inventory_hostname }}"
      endpoint_url: https://s3.eu-central-1.amazonaws.com
      region: eu-central-1
      access_key: "{{ vaulted_s3_access_key }}"
      secret_key: "{{ vaulted_s3_secret_key }}"
      require_object_lock: true
  register: copied

- name: Copy them to the append-only SFTP vault with the host's own key
  lifeboat.backup.replicate:
    job: app
    vault:
      url: sftp://web1@vault.example.net/backups
      name: vault-sftp
      host: "{{ inventory_hostname }}"
      identity_file: /etc/lifeboat/vault_ed25519
      known_hosts_file: /etc/lifeboat/vault_known_hosts

- name: 3-2-1 - one copy on a mounted share, one off site
  lifeboat.backup.replicate:
    job: app
    vault: "{{ item }}"
  loop:
    - url: file:///mnt/nas/lifeboat
      name: nas
      host: "{{ inventory_hostname }}"
    - url: s3://backups-example/fleet
      name: offsite
      host: "{{ inventory_hostname }}"
      access_key: "{{ vaulted_s3_access_key }}"
      secret_key: "{{ vaulted_s3_secret_key }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
sent:
  description: Ids of the backups copied (in check mode, that would be copied), newest first.
  returned: always
  type: list
  elements: str
  sample: ["app-20261122T021500Z"]
present:
  description: Ids of the backups whose complete copy was already on the vault.
  returned: always
  type: list
  elements: str
recorded:
  description: Ids of the backups whose record of the copy (C(vaults) in their metadata) was written or updated.
  returned: always
  type: list
  elements: str
vault:
  description: The vault's name (O(vault.name), or its URL).
  returned: always
  type: str
host:
  description: The C(HOST) part of the layout the copies are filed under.
  returned: always
  type: str
msg:
  description: What was sent and what was already there, or what failed.
  returned: always
  type: str
stage:
  description: The step that failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._errors import UsageError, VaultError
from ..module_utils._option_groups import VAULT, OptionGroup, run_module
from ..module_utils._vault.replicate import replicate

OPTIONS = OptionGroup(dict(
    job=dict(type="str", required=True),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    lock_timeout=dict(type="float", default=600),
)) + VAULT


def one_vault(result):
    """The engine's result for a list of vaults, as the fields of the one vault given."""
    report = dict(result.pop("vaults")[0])
    report.pop("failed")  # the message says what failed
    return dict(result, **report)


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        vault = arguments.pop("vault")
        if vault is None:
            raise UsageError("replicate copies to a vault: give the vault (its url at least)")
        try:
            return one_vault(replicate(vaults=[vault], check_mode=module.check_mode, **arguments))
        except VaultError as exc:
            if "vaults" in exc.result:
                exc.result = one_vault(exc.result)
            raise

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
