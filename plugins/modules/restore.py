#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restore
short_description: Restore a files or database backup, verified, atomically, with a safety backup to undo it
version_added: 0.1.0
description:
  - Selects a backup by O(path), by O(id), or by O(job) with O(latest) or O(deploy_id), and restores it.
  - "Files: every file is checked against the SHA-256 of the archive's manifest while it is written into a hidden
    staging directory beside each restored path (C(.<name>.lifeboat-staging-XXXX)). Only when the whole archive
    was read and verified is each path swapped in by two renames; the replaced tree is kept aside
    (C(.<name>.lifeboat-old-XXXX)) until every path is swapped, then removed. Any failure puts the targets back
    exactly as they were."
  - Absolute member names, C(..) components, members below a symlink, relative symlinks pointing out of the
    restored tree, hard links to anything but a file of the archive, device nodes, fifos, setuid and setgid
    bits (unless O(preserve_special)) and members missing from the manifest are refused before anything is
    written outside staging; the message names the member. Absolute symlink targets are restored verbatim,
    as GNU tar and restic do; the restore never writes through a symlink.
  - "Databases: PostgreSQL custom dumps through C(pg_restore --clean --if-exists --single-transaction
    --no-owner), plain dumps into a recreated database through C(psql) in one transaction after C(\\restrict), so
    that the dump cannot run psql meta-commands such as C(\\!) (psql 13.22, 14.19, 15.14, 16.10, 17.6 or newer),
    MariaDB/MySQL through the C(mariadb) client with C(--binary-mode) and C(--sandbox) where the client has it,
    SQLite by renaming a checked copy over the live file."
  - With O(safety_backup), the current content is backed up first (tag C(safety)); a database restore that
    fails is rolled back from it automatically. Its id is returned so a successful restore can be undone too.
  - A restore over a tree that already matches the backup changes nothing and reports no change.
  - "The catalog (O(backup_dir), and the catalog the backup is read from) is never removed, replaced or written
    into: a restored tree that holds it (C(/var) with C(/var/backups/lifeboat)) is restored below it, the
    directories on the way to it in place; paths of the backup that lie in it are left out, with a warning."
  - With O(vault), a backup named by O(id) that O(backup_dir) does not hold (pruned, or the host was rebuilt), or
    any with O(from_vault), is restored from its copy on the vault. The copy is downloaded into private scratch
    space under O(backup_dir) (C(.tmp/), mode 0700), checked against its sidecar as it comes, restored as a local
    backup is (the lock, journal and safety backups of O(backup_dir)), and removed afterwards, also when the restore
    fails. A files backup is restored while its copy arrives; a database once all of it arrived. O(path),
    O(latest) and O(deploy_id) name local backups only; M(lifeboat.backup.catalog_info) with
    O(lifeboat.backup.catalog_info#module:vault) lists the ids on the vault.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.decryption
  - lifeboat.backup.connection
  - lifeboat.backup.vault
attributes:
  check_mode:
    support: full
    details: Reads the manifest (the start of the artifact only) and reports what would be added, changed and
      removed; for a database, checks that the server is reachable. Nothing is written. Of a copy on O(vault),
      check mode downloads what the plan needs (a database's whole artifact), and removes it afterwards.
  diff_mode:
    support: full
    details: Lists the paths that are (or would be) added, changed and removed.
options:
  path:
    description:
      - Path of the artifact. Mutually exclusive with O(id), O(latest) and O(deploy_id).
    type: path
  backup_dir:
    description:
      - Catalog directory holding the backup; safety backups are written there too.
    type: path
    default: /var/backups/lifeboat
  id:
    description:
      - Id of the backup in O(backup_dir).
    type: str
  job:
    description:
      - Job whose backup to restore, with O(latest) or O(deploy_id). Safety backups are never selected this way.
    type: str
  latest:
    description:
      - Restore the newest backup of O(job).
    type: bool
    default: false
  deploy_id:
    description:
      - Restore the newest backup of O(job) made with this deploy id.
    type: str
  kind:
    description:
      - With O(job), restore the job's files backup or its database dump.
      - Needed when the job has both, or several databases (then with O(database)); the task fails and
        names the backups it could mean rather than guess.
    type: str
    choices: [files, database]
  database:
    description:
      - With O(job), restore the dump of this database (for SQLite, the path of its file).
      - Implies O(kind=database).
    type: str
  safety_backup:
    description:
      - Back up what is about to be replaced first, tagged C(safety), in O(backup_dir).
    type: bool
    default: true
  dest:
    description:
      - Files only. Directory to restore into; an archived path C(/srv/app/x) goes to O(dest)C(/srv/app/x).
      - By default every path goes back where it was backed up from.
    type: path
  include:
    description:
      - Files only. Restore only the archived paths matching one of these globs (and, for a directory, what is
        in it). Globs match the original absolute path; without C(/) they match a base name at any depth,
        C(**) spans directories.
    type: list
    elements: str
    default: []
  delete_extra:
    description:
      - Files only. Remove what exists under the restored paths but is not in the backup. Without it, such
        entries are kept.
    type: bool
    default: false
  numeric_owner:
    description:
      - Files only, as root. Restore the recorded numeric uid and gid; V(false) maps the recorded user and group
        names to this host's ids (falling back to the numbers).
      - On a rebuilt host a uid may belong to another user, or to nobody yet; the task warns, naming the uids and
        gids of restored files that have no name on the host.
    type: bool
    default: true
  preserve_special:
    description:
      - Files only. Allow setuid and setgid bits; without it a backup holding them is refused.
    type: bool
    default: false
  allow_foreign_owner:
    description:
      - Files only. Restore into O(dest), or below a directory, that a user other than root (and other than the user
        running the restore) owns, or through a symbolic link such a user owns.
      - Such a user can rename what the restore works in and put a link in its place, so by default the restore
        refuses and names the directory. The restore works through directory descriptors it opened and never
        follows a link below O(dest) either way; set this only when that user is trusted.
    type: bool
    default: false
  target_database:
    description:
      - Databases only. Restore into this database (created if missing) instead of the one dumped; for SQLite,
        a file path.
    type: str
  allow_unencrypted:
    description:
      - Restore a backup that is not encrypted although O(identity) or O(passphrase) is given.
      - "Without it such a backup is refused: whoever can write into O(backup_dir) could have put a plain
        artifact, and metadata saying C(encryption: none), in place of an encrypted backup."
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the lock of the backup's catalog, which the restore holds from start to end (backups,
        prunes and other restores from the catalog take it too).
    type: float
    default: 0
  from_vault:
    description:
      - With O(vault), restore from the vault's copy even when O(backup_dir) holds the backup (a local artifact
        that is suspect, or a drill of the off-site copy).
    type: bool
    default: false
requirements:
  - python >= 3.9 on the managed host
  - cryptography (to decrypt)
  - zstandard (for zstd artifacts)
  - the database client tools (C(pg_restore), C(psql), C(mariadb)) for database backups
  - boto3 for an S3 vault, the OpenSSH client (C(sftp)) for an SFTP vault
seealso:
  - module: lifeboat.backup.archive
  - module: lifeboat.backup.dump
  - module: lifeboat.backup.verify
"""

EXAMPLES = r"""
- name: Roll the application's files back to the backup taken before the deploy
  lifeboat.backup.restore:
    job: app
    kind: files
    deploy_id: "{{ previous_release }}"
    identity: "{{ lookup('ansible.builtin.file', 'keys/backup.key') }}"
  no_log: true

- name: Restore one configuration directory into a scratch place to look at it
  lifeboat.backup.restore:
    id: app-20240501T020000Z
    dest: /root/restore
    include: ["/srv/app/config/**"]
    safety_backup: false
    identity: "{{ backup_identity }}"

- name: Put the database back to the latest dump
  lifeboat.backup.restore:
    job: shop
    database: shop
    latest: true
    login_user: postgres
    identity: "{{ backup_identity }}"
  register: restored

- name: Undo that restore
  lifeboat.backup.restore:
    id: "{{ restored.safety_backup_id }}"
    safety_backup: false
    login_user: postgres
    identity: "{{ backup_identity }}"

- name: Bring back a tree whose backup only the off-site vault still holds
  lifeboat.backup.restore:
    id: app-20240501T020000Z
    identity: "{{ backup_identity }}"
    vault:
      url: s3://backups-example/fleet
      host: "{{ inventory_hostname }}"
      access_key: "{{ vaulted_s3_access_key }}"
      secret_key: "{{ vaulted_s3_secret_key }}"
  no_log: true
"""

RETURN = r"""
chain_headers:
  description:
    - With O(header_only), for a backup of an incremental chain, the age headers of the earlier backups of its chain,
      which the task opens too (one file key each); empty for a full backup.
  returned: with O(header_only)
  type: list
  elements: str
header:
  description:
    - With O(header_only), the age header of the artifact the task would open (its recipient stanzas and MAC, ending
      with a line C(--- MAC)); null when the artifact is not encrypted. It is public and opens nothing without the identity
      or passphrase. C(lifeboat unwrap) turns it into the artifact's file key.
  returned: with O(header_only)
  type: str
  sample: "age-encryption.org/v1\n-> X25519 ...\n--- ...\n"
id:
  description: Id of the backup restored, when it has metadata.
  returned: success
  type: str
path:
  description: Path of the artifact restored.
  returned: success, unless restored from O(vault)
  type: str
vault:
  description: The name of the vault whose copy was restored; V(null) when O(backup_dir) held the backup.
  returned: success, with O(vault)
  type: str
kind:
  description: V(files) or V(database).
  returned: success
  type: str
restored:
  description: Counts of what was written (V(files), V(dirs), V(symlinks), V(hardlinks), V(bytes)).
  returned: files backups
  type: dict
differences:
  description: Archive paths V(added), V(changed) and V(removed) by the restore (or that would be, in check mode).
  returned: files backups
  type: dict
safety_backup_id:
  description: Id of the safety backup taken before the restore; restore it to undo. V(null) when none was taken.
  returned: always
  type: str
rolled_back:
  description: V(true) when the restore failed and what it had changed was put back.
  returned: always
  type: bool
repaired:
  description: What a restore from the same catalog that was killed had left, put right before this restore
    began, each with C(targets), C(state) (V(started) put the targets back as they were, V(committed) kept the
    restored trees) and C(msg). Empty when there was nothing to put right.
  returned: unless in check mode
  type: list
  elements: dict
database:
  description: The database (or SQLite file) restored into.
  returned: database backups
  type: str
created:
  description: V(true) when the target database did not exist before.
  returned: database backups
  type: bool
duration:
  description: Seconds the restore took.
  returned: success
  type: float
stage:
  description: The step that failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._errors import UsageError
from ..module_utils._option_groups import CONNECTION, DECRYPTION, VAULT, OptionGroup, run_module
from ..module_utils._restore import RestoreRequest, backup_header, restore_backup
from ..module_utils._vault.reading import restore_copy, restore_header

SELECTORS = ("path", "id", "latest", "deploy_id")
OPTIONS = OptionGroup(dict(
    path=dict(type="path"),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    id=dict(type="str"),
    job=dict(type="str"),
    latest=dict(type="bool", default=False),
    deploy_id=dict(type="str"),
    kind=dict(type="str", choices=["files", "database"]),
    database=dict(type="str"),
    safety_backup=dict(type="bool", default=True),
    dest=dict(type="path"),
    include=dict(type="list", elements="str", default=[]),
    delete_extra=dict(type="bool", default=False),
    numeric_owner=dict(type="bool", default=True),
    preserve_special=dict(type="bool", default=False),
    allow_foreign_owner=dict(type="bool", default=False),
    target_database=dict(type="str"),
    allow_unencrypted=dict(type="bool", default=False),
    lock_timeout=dict(type="float", default=0),
    from_vault=dict(type="bool", default=False),
), rename={"id": "backup_id"}, mutually_exclusive=[SELECTORS], required_one_of=[SELECTORS],
    required_by={"deploy_id": "job", "kind": "job", "database": "job"}) + DECRYPTION + \
    CONNECTION.gathered("connection") + VAULT


def diff_text(differences):
    lines = ["+ /%s" % name for name in differences.get("added", [])]
    lines += ["~ /%s" % name for name in differences.get("changed", [])]
    lines += ["- /%s" % name for name in differences.get("removed", [])]
    return "\n".join(lines) + ("\n" if lines else "")


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        vault, from_vault, header_only = arguments.pop("vault"), arguments.pop("from_vault"), arguments.pop("header_only")
        request = RestoreRequest(**arguments)
        if from_vault and vault is None:
            raise UsageError("from_vault restores from a vault: give the vault")
        if header_only:
            return restore_header(vault, request, from_vault) if vault is not None else backup_header(request)
        if vault is not None:
            result = restore_copy(vault, request, check_mode=module.check_mode, from_vault=from_vault)
        else:
            result = restore_backup(request, check_mode=module.check_mode)
        if module._diff and "differences" in result:
            result["diff"] = {"before_header": result.get("dest") or "/", "after_header": result.get("id") or "backup",
                              "prepared": diff_text(result["differences"])}
        return result

    run_module(module, OPTIONS, action, failure={"rolled_back": False, "safety_backup_id": None})


if __name__ == "__main__":
    main()
