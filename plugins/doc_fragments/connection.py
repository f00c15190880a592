# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module reaches a database server; twin of _option_groups.CONNECTION.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the database server.
      - Without it (and without O(login_unix_socket)) the client's default applies, usually the local socket.
      - Ignored for SQLite.
    type: str
  login_port:
    description:
      - TCP port of the database server; the client's default (V(5432), V(3306)) when not given.
    type: int
  login_user:
    description:
      - User to connect as; the client's default (the user the module runs as) when not given.
    type: str
  login_password:
    description:
      - Password of O(login_user).
      - It reaches the client tools through their environment (C(PGPASSWORD)) or a private V(0600) option file
        that exists only while the tool runs, never through their command line, and it is masked in every message.
    type: str
  login_unix_socket:
    description:
      - Unix socket to connect through instead of TCP. For PostgreSQL, the socket's directory or the socket file.
    type: str
"""
