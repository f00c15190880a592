#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: keypair
short_description: Make an age identity file and return its public recipient
version_added: 0.1.0
description:
  - Creates an age X25519 identity at O(path) with mode V(0600), in the format C(age-keygen) writes, and returns
    the public recipient (V(age1...)) to give to the hosts.
  - Run it where the identity must live, usually the controller (with C(delegate_to) V(localhost)). Hosts only
    ever need the recipient.
  - An existing valid identity is kept (C(changed=false)); its mode is tightened to V(0600) when looser.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  path:
    description:
      - Where the identity file is written.
    type: path
    required: true
  force:
    description:
      - Replace an existing identity with a new one. Backups encrypted to the old one can then only be opened with a
        copy of the old file.
    type: bool
    default: false
requirements:
  - python >= 3.9
  - cryptography
seealso:
  - module: lifeboat.backup.archive
  - module: lifeboat.backup.encrypt
"""

EXAMPLES = r"""
- name: Make the operator's backup identity on the controller
  lifeboat.backup.keypair:
    path: "{{ playbook_dir }}/keys/backup.key"
  delegate_to: localhost
  run_once: true
  register: backup_key

- name: Back up to it
  lifeboat.backup.archive:
    job: app
    paths: [/srv/app]
    recipients: ["{{ backup_key.recipient }}"]
"""

RETURN = r"""
path:
  description: Path of the identity file.
  returned: always
  type: str
recipient:
  description: The public recipient of the identity; null in check mode when the file would be created.
  returned: always
  type: str
  sample: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._keyfile import ensure_keypair
from ..module_utils._option_groups import OptionGroup, run_module

OPTIONS = OptionGroup(dict(
    path=dict(type="path", required=True),
    force=dict(type="bool", default=False),
))


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())
    run_module(module, OPTIONS, lambda arguments: ensure_keypair(check_mode=module.check_mode, **arguments))


if __name__ == "__main__":
    main()
