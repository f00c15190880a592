# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Session fixtures: one throwaway PostgreSQL and one MariaDB server for the whole test run."""

from __future__ import annotations

import pytest

import dbservers


def _session_server(request, server_class):
    try:
        server = dbservers.started(server_class)
    except dbservers.ServerUnavailable as exc:
        pytest.skip(str(exc))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def postgres_server(request):
    """A running PostgreSQL server (see dbservers.PostgresServer), stopped and removed after the session."""
    return _session_server(request, dbservers.PostgresServer)


@pytest.fixture(scope="session")
def mariadb_server(request):
    """A running MariaDB server (see dbservers.MariadbServer), stopped and removed after the session."""
    return _session_server(request, dbservers.MariadbServer)
