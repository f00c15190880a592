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
from ._dump import ENGINES
from ._dumpers import PG_FORMATS, ROW_COUNT_MODES
from ._errors import BackupError
from ._retention import Policy


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


def archive_spec():
    """What the archive module backs up and how the tree is walked."""
    return dict(
        paths=dict(type="list", elements="path", required=True),
        exclude=dict(type="list", elements="str", default=[]),
        exclude_if_present=dict(type="list", elements="str", default=[]),
        respect_gitignore=dict(type="bool", default=False),
        default_excludes=dict(type="bool", default=True),
        skip_unchanged=dict(type="bool", default=False),
        on_unreadable=dict(type="str", default="fail", choices=["fail", "warn"]),
    )


def dump_spec():
    """Which database the dump module dumps, and how."""
    return dict(
        engine=dict(type="str", required=True, choices=list(ENGINES)),
        database=dict(type="str", required=True),
        format=dict(type="str", choices=list(PG_FORMATS)),
        jobs=dict(type="int", default=1),
        include_globals=dict(type="bool", default=False),
        row_counts=dict(type="str", default="exact", choices=list(ROW_COUNT_MODES)),
    )


def retention_spec():
    """What prune keeps."""
    return dict(
        keep_last=dict(type="int", default=0),
        keep_hourly=dict(type="int", default=0),
        keep_daily=dict(type="int", default=0),
        keep_weekly=dict(type="int", default=0),
        keep_monthly=dict(type="int", default=0),
        keep_yearly=dict(type="int", default=0),
        keep_within=dict(type="str"),
        keep_tags=dict(type="list", elements="str", default=[]),
        min_keep=dict(type="int", default=1),
    )


def build_policy(keep_last=0, keep_hourly=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0,
                 keep_within=None, keep_tags=(), min_keep=1):
    """A retention Policy from the module's option names; invalid values raise UsageError."""
    policy = Policy(last=keep_last, hourly=keep_hourly, daily=keep_daily, weekly=keep_weekly, monthly=keep_monthly,
                    yearly=keep_yearly, within=keep_within, tags=tuple(keep_tags or ()), min_keep=min_keep)
    policy.validate()
    return policy


def run_module(module, action):
    """Call action(); engine errors become fail_json with the stage that failed."""
    try:
        result = action()
    except BackupError as exc:
        module.fail_json(msg=str(exc), stage=exc.stage, error=type(exc).__name__)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
