# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune and catalog_info through real ansible-playbook runs: check mode, run, check-mode idempotence, idempotence."""

from __future__ import annotations

import pytest

from test_modules import run_target

from testlib import IDENTITY, RECIPIENT


@pytest.mark.parametrize("target", ["prune", "catalog_info"])
def test_catalog_target(target, tmp_path):
    identity, recipient = IDENTITY, RECIPIENT
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_text("data\n")
    output = run_target(target, tmp_path, {"identity": identity, "recipient": recipient})
    assert identity not in output
