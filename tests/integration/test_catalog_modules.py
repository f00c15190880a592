# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune and catalog_info through real ansible-playbook runs: check mode, run, check-mode idempotence, idempotence."""

from __future__ import annotations

import pytest

from test_modules import run_target

from ansible_collections.lifeboat.backup.plugins.module_utils import _age


@pytest.mark.parametrize("target", ["prune", "catalog_info"])
def test_catalog_target(target, tmp_path):
    identity, recipient = _age.generate_identity()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_text("data\n")
    output = run_target(target, tmp_path, {"identity": identity, "recipient": recipient})
    assert identity not in output
