# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make demo with Ansible's least careful settings (no pipelining, module files kept on the host): backup, vault
copy, verification and restores, and the operator's identity in none of the files the host was given or keeps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from testlib import COLLECTIONS, ROOT


def _files_holding(root, needle):
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                with open(path, "rb") as handle:
                    if needle in handle.read().lower():
                        found.append(os.path.relpath(path, root))
    return sorted(found)


def test_the_demo_never_gives_the_host_the_identity(tmp_path):
    shutil.copytree(os.path.join(ROOT, "demo"), tmp_path / "demo", ignore=shutil.ignore_patterns("work"))
    os.symlink(os.path.join(ROOT, "playbooks"), tmp_path / "playbooks")
    remote_tmp = tmp_path / "remote-tmp"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_PIPELINING="0",
               ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(remote_tmp))
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    played = subprocess.run([binary, "-i", "demo/inventory.yml", "demo/demo.yml"], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, check=False)
    assert played.returncode == 0, played.stdout[-6000:] + played.stderr[-3000:]
    work = tmp_path / "demo" / "work"
    identity = (work / "keys" / "operator.key").read_text().split("AGE-SECRET-KEY-1", 1)[1].split()[0].lower()
    assert len(identity) == 58 and identity.encode() not in played.stdout.lower().encode()
    # The restores ran with file keys, which the kept module files hold: the search finds what is there.
    assert _files_holding(remote_tmp, b"lifeboat-file-key-1")
    assert _files_holding(remote_tmp, identity.encode()) == []
    for kept in ("backups", "vault", "restored", "srv"):
        assert _files_holding(work / kept, identity.encode()) == [], kept
        assert _files_holding(work / kept, b"lifeboat-file-key-1") == [], kept
