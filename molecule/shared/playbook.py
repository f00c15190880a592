# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the scenarios' tests share: running a playbook of the scenario again, from `molecule verify`."""

from __future__ import annotations

import json
import os
import re
import subprocess


def run(playbook, collections, *options, succeed=True, **extra_vars):
    """Run playbook on molecule's inventory with the scenario's collection path (options: e.g. --check); returns how
    many tasks changed and the output."""
    inventory = os.environ.get('MOLECULE_INVENTORY_FILE')
    assert inventory, 'run by molecule verify: MOLECULE_INVENTORY_FILE names the inventory'
    command = ['ansible-playbook', '-i', inventory, playbook, '-e', json.dumps(extra_vars)] + list(options)
    # Plain output, whatever molecule asks for, so that the recap's counts can be read.
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeed, output[-8000:]
    return sum(int(count) for count in re.findall(r' changed=(\d+) ', result.stdout)), output
