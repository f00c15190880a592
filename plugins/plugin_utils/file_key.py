# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of every module that decrypts (restore, verify, encrypt): the identity and the passphrase
never leave the controller.

Every age file has its own random file key, wrapped in the header for each recipient. The action asks the module
for the header of the artifact the task would open (header_only: public bytes, nothing else is read), unwraps the
file key here with the identity or passphrase, and runs the module with that file key alone, pinned to that
artifact. The file key opens that one artifact and nothing else; the module checks the header's MAC with it before
it reads a byte of payload.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.lifeboat.backup.plugins.module_utils import _age
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError

SECRETS = ("identity", "passphrase")


class FileKeyAction(ActionBase):
    """Runs the module of the same name; subclasses say when the task decrypts and how to pin its artifact."""

    _supports_check_mode = True
    _supports_async = True
    failure = {}  # the fields the module returns on every failure, returned on a failure here too

    def decrypts(self, args):
        """Whether the task, with these arguments, reads an artifact's plaintext."""
        return True

    def kept(self, args):
        """Secrets the module itself needs (the encrypt module's passphrase, to encrypt): sent as they are."""
        return ()

    def pinned(self, args, found):
        """The arguments that name exactly the artifact whose header was found (a newer backup may appear between
        the two runs of the module)."""
        return args

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        kept = self.kept(args)
        secrets = {name: args.pop(name) for name in SECRETS if name not in kept and args.get(name)}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        try:
            if secrets and self.decrypts(args):
                found = self._execute_module(module_args=dict(args, header_only=True), task_vars=task_vars)
                if found.get("failed"):
                    return merge_hash(result, found)
                if found.get("header") is not None:
                    # an incremental backup's chain is opened too: one file key per artifact, each opening its own
                    key = _age.Key(identities=secrets.get("identity"), passphrase=secrets.get("passphrase"))
                    file_keys = [_age.encode_file_key(_age.unwrap(header.encode("ascii"), key))
                                 for header in [found["header"]] + (found.get("chain_headers") or [])]
                    args = dict(self.pinned(args, found), file_key=" ".join(file_keys))
            result = merge_hash(result, self._execute_module(module_args=args, task_vars=task_vars,
                                                             wrap_async=wrap_async))
        except BackupError as exc:
            result.update(self.failure, failed=True, msg=str(exc), stage=exc.stage or "key", error=type(exc).__name__)
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
