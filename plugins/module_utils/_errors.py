# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the backup engine.

Every error carries a message an operator can act on. Only a module's main()
turns them into fail_json, only the on-host command into exit codes.
"""

from __future__ import annotations


class BackupError(Exception):
    """Base class of every error the engine raises on purpose.

    result: fields a module returns beside msg and stage (_option_groups.run_module), set by the code that
    knows them, e.g. a failed database restore's rolled_back and safety_backup_id. Never a secret.
    """

    exit_code = 1

    def __init__(self, msg, stage=None, result=None):
        super().__init__(msg)
        self.msg = msg
        self.stage = stage
        self.result = dict(result or {})

    def __str__(self):
        if self.stage:
            return "%s: %s" % (self.stage, self.msg)
        return self.msg


class UsageError(BackupError):
    """Options that contradict each other or name something impossible."""

    exit_code = 2


class SourceError(BackupError):
    """A source path is missing or unreadable."""


class MissingDependencyError(BackupError):
    """A Python package or a binary the engine needs is not installed."""


class LockedError(BackupError):
    """Another run holds the backup directory's lock."""

    exit_code = 4


class StorageError(BackupError):
    """Writing the artifact failed (full disk, permissions, ...)."""


class CryptoError(BackupError):
    """The age layer refused the input: wrong key, tampered or truncated data."""


class WrongKeyError(CryptoError):
    """No identity or passphrase given opens the file: the key is wrong, the file is not damaged."""


class IntegrityError(BackupError):
    """An artifact does not match its checksum or its manifest."""


class NotFoundError(BackupError):
    """A backup, artifact or job that was asked for does not exist."""


class VaultError(BackupError):
    """A vault refused or lost a request: unreachable, wrong credentials, a missing bucket, an unusable setting.

    The message names the vault (never a secret) and says what to fix; the local catalog is never touched by it.
    """
