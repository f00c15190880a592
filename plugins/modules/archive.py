#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: archive
short_description: Back up files and directories into one compressed, encrypted, checksummed artifact
version_added: 0.1.0
description:
  - Walks O(paths), writes a POSIX tar stream whose first member is a manifest with every file's SHA-256,
    compresses it, encrypts it in the age format and writes it atomically to O(backup_dir)/O(job)/ with a
    C(.sha256) sidecar in C(sha256sum -c) format and a C(.json) metadata sidecar.
  - One streaming pass with bounded memory; nothing appears in the catalog until the artifact is complete and, with
    O(read_back), was read back from the disk and every file in it checked against the manifest.
  - The artifact opens by hand with C(age -d -i key.txt FILE | zstd -d | tar -x).
  - Symlinks are stored, never followed; hard links are kept; sockets, fifos and devices are skipped and counted.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.output
  - lifeboat.backup.encryption
attributes:
  check_mode:
    support: full
    details: Reports the selection (files, bytes, excluded) and whether a backup would be written.
  diff_mode:
    support: none
options:
  paths:
    description:
      - Absolute paths of the files and directories to back up.
    type: list
    elements: path
    required: true
  exclude:
    description:
      - Glob patterns to leave out. V(**) matches any depth, V(*) does not cross V(/).
      - A pattern with a V(/) is matched against the absolute path, one without against each base name.
    type: list
    elements: str
    default: []
  exclude_if_present:
    description:
      - Marker file names, for example V(.nobackup) or V(CACHEDIR.TAG); a directory that holds one is left out.
    type: list
    elements: str
    default: []
  respect_gitignore:
    description:
      - Leave out what C(.gitignore) files (nested ones included) and C(.git/info/exclude) ignore, with git's rules.
    type: bool
    default: false
  default_excludes:
    description:
      - Leave out the usual junk, VCS directories, virtualenvs, C(__pycache__), C(*.pyc), C(node_modules),
        C(*.tmp), C(.DS_Store), C(Thumbs.db), editor directories.
      - The backup directory itself is never part of a backup.
    type: bool
    default: true
  skip_unchanged:
    description:
      - When the selected tree is identical to the job's newest backup (same paths, types, modes, owners, times
        and contents), write nothing and report C(changed=false) with that backup's id.
    type: bool
    default: false
  on_unreadable:
    description:
      - What a file or directory that cannot be read does to the run. V(fail) stops before anything is written,
        V(warn) leaves it out and reports it.
    type: str
    choices: [fail, warn]
    default: fail
  incremental:
    description:
      - Store only the files that changed since the newest backup of the job's chain, and every directory's listing,
        as GNU tar's incremental format does; the first backup of a chain is a full one (level 0).
      - A file counts as changed when its type, size, mtime, ctime or inode differs from what the chain's newest
        backup recorded on this host (the state in C(<backup_dir>/.incremental/), which never leaves the host);
        unchanged files are not read.
      - Restoring a backup of a chain needs every backup of its chain (the C(chain) of its RV(metadata)); prune
        keeps them. By hand, each artifact of the chain in order through
        C(age -d | zstd -d | tar -x --listed-incremental=/dev/null) recreates the tree.
      - A full backup is made instead when the chain cannot be continued (no state, a backup of the chain missing or
        failed, other paths or selection rules), its full backup is older than O(full_every), or it holds
        O(max_chain) incremental backups; C(full_reason) in its RV(metadata) says why.
    type: bool
    default: false
  full_every:
    description:
      - With O(incremental), start a new chain with a full backup once the chain's full backup is this old, for
        example V(7d) (units y, m for months, d, h).
    type: str
    default: 7d
  max_chain:
    description:
      - With O(incremental), the most incremental backups on one full backup; the next one starts a new chain.
    type: int
    default: 30
requirements:
  - python >= 3.9 on the managed host
  - cryptography (for encryption)
  - zstandard (for O(compression=zstd))
  - pathspec (for O(respect_gitignore=true))
seealso:
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.keypair
"""

EXAMPLES = r"""
- name: Back up the application before a deploy
  lifeboat.backup.archive:
    job: app
    paths:
      - /srv/app
      - /etc/app
    exclude:
      - "**/cache/**"
      - "*.log"
    respect_gitignore: true
    recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    tags: [pre-deploy]
    deploy_id: v42

- name: Nightly backup that writes nothing when nothing changed
  lifeboat.backup.archive:
    job: etc
    paths: [/etc]
    compression: gzip
    recipients: "{{ backup_recipients }}"
    skip_unchanged: true
"""

RETURN = r"""
id:
  description: Id of the backup written, or of the identical newest one when O(skip_unchanged) applied.
  returned: success, not in check mode
  type: str
  sample: app-20261122T021500Z
path:
  description: Absolute path of the artifact.
  returned: success, not in check mode
  type: str
  sample: /var/backups/lifeboat/app/app-20261122T021500Z.tar.zst.age
sha256:
  description: SHA-256 of the artifact file, as in its C(.sha256) sidecar.
  returned: success, not in check mode
  type: str
size:
  description: Size of the artifact in bytes.
  returned: success, not in check mode
  type: int
input_size:
  description: Sum of the sizes of the regular files selected.
  returned: always
  type: int
files:
  description: Number of regular files selected.
  returned: always
  type: int
counts:
  description: Number of entries per type (file, dir, symlink, hardlink).
  returned: always
  type: dict
excluded:
  description: Number of files and directories left out by a rule (a directory left out counts once).
  returned: always
  type: int
special_files:
  description: Special files that are never archived, per kind (socket, fifo, device).
  returned: always
  type: dict
metadata:
  description:
    - The metadata sidecar of the backup. Its C(verification) is C(state=verified), C(level=full),
      C(method=read-back) when the artifact was read back (O(read_back)), else C(state=unverified).
    - With O(incremental), C(level) (0 for a full backup), C(base) (the chain's full backup), C(chain) (the ids of
      the backups a restore needs, the full backup first and this one last), C(stored) (C(files) and C(bytes) this
      backup stored itself) and, for a full backup made instead of an incremental one, C(full_reason).
  returned: success, not in check mode
  type: dict
skipped_unchanged:
  description: True when no artifact was written because the tree is identical to the newest backup.
  returned: when O(skip_unchanged) applied
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._archive import ArchiveRequest, run_archive
from ..module_utils._option_groups import ARCHIVE_OPTIONS, run_module


def main():
    module = AnsibleModule(supports_check_mode=True, **ARCHIVE_OPTIONS.module_kwargs())
    run_module(module, ARCHIVE_OPTIONS,
               lambda arguments: run_archive(ArchiveRequest(**arguments), check_mode=module.check_mode))


if __name__ == "__main__":
    main()
