# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore module through real ansible-playbook runs: check, run, check again, run again, undo."""

from __future__ import annotations

from test_modules import run_target

from testlib import IDENTITY, RECIPIENT


def test_restore_target(tmp_path):
    identity, recipient = IDENTITY, RECIPIENT
    output = run_target("restore", tmp_path, {"identity": identity, "recipient": recipient})
    assert identity not in output
