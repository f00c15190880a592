# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifeboat.backup.verify on the controller: a full or source verification gets the file key of the backup it
checks, never the identity; a checksum verification gets no key at all (plugin_utils/file_key.py)."""

from __future__ import annotations

from ansible_collections.lifeboat.backup.plugins.plugin_utils.file_key import FileKeyAction


class ActionModule(FileKeyAction):

    def decrypts(self, args):
        return args.get("level", "checksum") != "checksum"
