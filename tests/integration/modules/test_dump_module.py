# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dump module through real ansible-playbook runs (targets/dump), and its artifacts opened by hand."""

from __future__ import annotations

import glob
import subprocess

from testlib import IDENTITY, RECIPIENT, sqlite_rows, sqlite_sample, age_decrypt_cli
from test_modules import run_target


def test_dump_target(tmp_path):
    identity, recipient = IDENTITY, RECIPIENT
    database = tmp_path / "app.db"
    sqlite_sample(database)
    output = run_target("dump", tmp_path, {"identity": identity, "recipient": recipient, "database": str(database)})
    assert identity not in output
    # the two dumps; the target's restore with the wrong kind of key failed on the controller and took no safety dump
    artifacts = sorted(glob.glob(str(tmp_path / "backups" / "app-db" / "*.sqlite.zst.age")))
    assert len(artifacts) == 2
    for number, artifact in enumerate(artifacts):
        compressed = age_decrypt_cli(artifact, identity, tmp_path)
        restored = tmp_path / ("restored%d.db" % number)
        restored.write_bytes(subprocess.run(["zstd", "-d", "-c"], input=compressed, capture_output=True,
                                            check=True).stdout)
        assert sqlite_rows(restored) == sqlite_rows(database)
