# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of the option groups that several modules share.

Each group has its twin doc fragment in plugins/doc_fragments/ with the same
option names; the validate-modules sanity test keeps the two in step.
"""

from __future__ import annotations

from ._catalog import DEFAULT_BACKUP_DIR
from ._compression import ALGORITHMS
from ._errors import BackupError


def output_spec():
    """Where and how a new artifact is written (archive, dump)."""
    return dict(
        job=dict(type="str", required=True),
        backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
        compression=dict(type="str", default="zstd", choices=list(ALGORITHMS)),
        compression_level=dict(type="int"),
        tags=dict(type="list", elements="str", default=[]),
        description=dict(type="str"),
        deploy_id=dict(type="str"),
        lock_timeout=dict(type="float", default=0),
    )


def encryption_spec():
    """Public-key or passphrase encryption of what is written."""
    return dict(
        recipients=dict(type="list", elements="str", default=[]),
        passphrase=dict(type="str", no_log=True),
    )


def identity_spec():
    """The secret that decrypts: it stays in memory and never lands on the host's disk."""
    return dict(identity=dict(type="str", no_log=True))


def connection_spec():
    """How to reach a PostgreSQL or MariaDB/MySQL server; the password only ever travels in memory."""
    return dict(
        login_host=dict(type="str"),
        login_port=dict(type="int"),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        login_unix_socket=dict(type="str"),
    )


def run_module(module, action):
    """Call action(); engine errors become fail_json with the stage that failed."""
    try:
        result = action()
    except BackupError as exc:
        module.fail_json(msg=str(exc), stage=exc.stage, error=type(exc).__name__)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
