# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifeboat.backup.encrypt on the controller: decrypting gets the file key of that one file, never the identity or
the passphrase; encrypting with a passphrase needs the passphrase itself (plugin_utils/file_key.py)."""

from __future__ import annotations

from ansible_collections.lifeboat.backup.plugins.plugin_utils.file_key import FileKeyAction


class ActionModule(FileKeyAction):

    def decrypts(self, args):
        return args.get("state", "encrypted") == "decrypted"

    def kept(self, args):
        return () if self.decrypts(args) else ("passphrase",)
