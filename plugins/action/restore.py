# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifeboat.backup.restore on the controller: the host gets the file key of the backup it restores, never the
identity (plugin_utils/file_key.py)."""

from __future__ import annotations

from ansible_collections.lifeboat.backup.plugins.plugin_utils.file_key import FileKeyAction


class ActionModule(FileKeyAction):

    failure = {"rolled_back": False, "safety_backup_id": None}

    def pinned(self, args, found):
        if args.get("latest") or args.get("deploy_id"):
            args = {name: value for name, value in args.items() if name not in ("latest", "deploy_id")}
            args["id"] = found["id"]
        return args
