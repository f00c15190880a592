# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the database connection options; twin of the lifeboat.backup.connection doc fragment."""

from __future__ import annotations


def connection_spec():
    """How to reach a PostgreSQL or MariaDB/MySQL server; the password only ever travels in memory."""
    return dict(
        login_host=dict(type="str"),
        login_port=dict(type="int"),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        login_unix_socket=dict(type="str"),
    )
