# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which psql releases can restore a plain dump safely: those that know \\restrict (CVE-2025-8714)."""

from __future__ import annotations

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils._db.postgres import psql_restricts


@pytest.mark.parametrize("version, restricts", [
    ("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", True), ("psql (PostgreSQL) 15.13", False),
    ("psql (PostgreSQL) 17.6", True), ("psql (PostgreSQL) 17.5", False), ("psql (PostgreSQL) 13.22", True),
    ("psql (PostgreSQL) 12.22", False), ("psql (PostgreSQL) 18.1", True), ("psql (PostgreSQL) 19devel", True),
    ("psql (PostgreSQL) 9.6.24", False), ("psql", False)])
def test_psql_releases_that_know_restrict(version, restricts):
    assert psql_restricts(version) is restricts
