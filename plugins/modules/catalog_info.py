#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: catalog_info
short_description: List the backups of a host, with statistics and a health report
version_added: 0.1.0
description:
  - Lists the backups in O(backup_dir), newest first, filtered by O(job), O(kind), O(tags), O(deploy_id) and
    O(since), and returns their metadata, statistics and the health of every job.
  - Only O(job) narrows the health report; the other filters narrow RV(backups) and RV(stats).
  - "Health problems and their levels: V(critical): C(disk_full) when the filesystem is fuller than
    O(disk_usage_threshold) and than 95 %."
  - "V(error): C(no_backup) (a job without a good backup), C(too_old) (the newest good backup is older than
    O(max_age)), C(failed) (a backup failed its verification), C(broken_chain) (an incremental backup that cannot be
    restored because a backup of its chain is missing or failed its verification; one problem per such backup, with
    C(id) and the C(member) at fault), C(bad_metadata) (a C(.json) that cannot be trusted), C(missing_checksum) (a
    backup without its C(.sha256)), C(vault_failed) and C(vault_backlog) (replication to a vault)."
  - "V(warning): C(disk_full) over O(disk_usage_threshold) up to 95 %, C(too_small) (the newest good full backup is
    smaller than O(min_size_ratio) of the median of the previous good full ones, with at least 3 of them; an
    incremental backup stores only what changed, so it is not checked),
    C(unverified) (backups never verified), C(orphan) (sidecars without their artifact), C(no_metadata) (an
    artifact without metadata) and C(temp_file) (a temporary file of a killed run)."
  - Only regular files in O(backup_dir)/<job>/ whose names look like catalog files are looked at.
  - With O(vault), lists this host's backups on the vault instead (those filed under O(vault.host)), newest first,
    filtered the same way; a copy whose upload did not finish has no metadata and matches no filter but O(job).
    The health report is then the vault's problems, C(vault_rewritten) (V(critical)) for a key of a complete copy
    that was deleted (a delete marker hides it) or written again after the copy, and C(vault_incomplete)
    (V(warning)) for a copy whose upload did not finish or cannot be used, and C(broken_chain) (V(error)) for a copy
    of an incremental backup whose chain has a backup without a complete copy there. O(max_age), O(min_size_ratio) and
    O(disk_usage_threshold) judge the local catalog and are not used with O(vault).
  - Never changes anything, on the host or on the vault.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
  - lifeboat.backup.vault
attributes:
  check_mode:
    support: full
    details: Nothing is ever changed; the module returns the same in check mode.
  diff_mode:
    support: none
    details: Nothing changes, so there is nothing to show.
options:
  backup_dir:
    description:
      - The catalog directory on the managed host.
    type: path
    default: /var/backups/lifeboat
  job:
    description:
      - Only this job, in the list and in the health report. A job without any backup is a C(no_backup) problem.
    type: str
  kind:
    description:
      - Only backups of this kind, for example V(files) or V(database).
    type: str
  tags:
    description:
      - Only backups carrying any of these tags.
    type: list
    elements: str
    default: []
  deploy_id:
    description:
      - Only backups made for this deploy.
    type: str
  since:
    description:
      - Only backups created at or after this time, an ISO 8601 date or time (V(2026-05-01),
        V(2026-05-01T12:00:00+02:00); without an offset, the host's local time) or a duration back from now in
        the units V(y), V(m) (months), V(d), V(h), for example V(2d) or V(12h).
    type: str
  max_age:
    description:
      - The oldest acceptable age of a job's newest good (not failed) backup, a duration such as V(26h) or V(8d).
    type: str
    default: 26h
  min_size_ratio:
    description:
      - A newest full backup smaller than this fraction of the median size of the previous full ones is a
        C(too_small) warning. V(0) turns the check off.
    type: float
    default: 0.5
  disk_usage_threshold:
    description:
      - Percentage of the filesystem holding O(backup_dir) in use above which C(disk_full) is reported.
    type: float
    default: 85
requirements:
  - python >= 3.9 on the managed host
  - boto3 for an S3 vault, the OpenSSH client (C(sftp)) for an SFTP vault
seealso:
  - module: lifeboat.backup.prune
  - module: lifeboat.backup.verify
  - module: lifeboat.backup.replicate
"""

EXAMPLES = r"""
- name: Health of every job on the host
  lifeboat.backup.catalog_info:
  register: catalog

- name: Fail loudly when a job is unhealthy
  ansible.builtin.assert:
    that: catalog.health.ok
    fail_msg: "{{ catalog.health.problems | map(attribute='message') | join('; ') }}"

- name: Backups made before deploy v42
  lifeboat.backup.catalog_info:
    job: app
    deploy_id: v42
    tags: [pre-deploy]
  register: before_deploy

- name: Weekly jobs may be a week and a day old
  lifeboat.backup.catalog_info:
    job: archive
    max_age: 8d
    since: 30d

- name: The host's copies on the off-site vault, and what was done to them
  lifeboat.backup.catalog_info:
    job: app
    vault:
      url: s3://backups-example/fleet
      host: "{{ inventory_hostname }}"
      access_key: "{{ vaulted_s3_access_key }}"
      secret_key: "{{ vaulted_s3_secret_key }}"
  register: offsite

- name: Every copy is complete and untouched
  ansible.builtin.assert:
    that: offsite.health.ok
    fail_msg: "{{ offsite.health.problems | map(attribute='message') | join('; ') }}"
"""

RETURN = r"""
backups:
  description:
    - Metadata of each backup listed, newest first (id, job, kind, created_at, local_time, artifact, size,
      sha256, tags, deploy_id, verification, ...); a backup made with incremental also has C(level) (0 for the full
      backup of its chain), C(base) (the id of that full backup), C(chain) (the ids its restore needs, the full
      backup first, its own last) and C(stored).
    - With O(vault), each copy on the vault with C(id), C(job), C(kind), C(created_at), C(tags), C(deploy_id),
      C(level), C(base) and C(chain) (null for a backup made without incremental), C(complete), C(artifact) (its
      key), C(version), C(size), C(sha256), C(retain_until), C(lock_mode), C(attempts), C(stem) and C(problems); an
      incomplete copy has no C(kind) nor C(created_at).
  returned: always
  type: list
  elements: dict
vault:
  description: The name of the vault listed.
  returned: with O(vault)
  type: str
host:
  description: The C(HOST) part of the layout listed.
  returned: with O(vault)
  type: str
stats:
  description: Statistics of the backups listed, C(overall) and per job in C(jobs).
  returned: without O(vault)
  type: dict
  contains:
    overall:
      description: C(count), C(total_size) (bytes), C(average_ratio), C(verified), C(failed), C(unverified),
        C(oldest), C(oldest_id), C(newest), C(newest_id) (times in UTC ISO 8601).
      type: dict
    jobs:
      description: The same summary for each job, by job name.
      type: dict
health:
  description: Health of the jobs and of the filesystem holding O(backup_dir); with O(vault), C(ok), C(level) and
    C(problems) of the copies on the vault.
  returned: always
  type: dict
  contains:
    ok:
      description: V(true) when there is no problem at all.
      type: bool
    level:
      description: The worst level among the problems, or V(ok).
      type: str
    problems:
      description: Each with C(level) (V(warning), V(error), V(critical)), C(code), C(message) (what to do),
        C(job) when it is about one, and C(id), C(ids) or C(paths) when it is about backups or files.
      type: list
      elements: dict
    jobs:
      description: Per job, C(backups), C(newest_good), C(newest_good_at), C(age_s) (seconds) and C(ok); not with
        O(vault).
      type: dict
    disk:
      description: C(path), C(total_bytes), C(free_bytes), C(used_percent) and C(threshold); not with O(vault).
      type: dict
leftovers:
  description: Files that are not a backup, each with C(job), C(kind) (V(orphan), V(no_metadata), V(temp_file),
    V(bad_metadata)), C(id), C(files), C(paths), C(age_s) and C(removable) (whether the next prune removes it).
  returned: without O(vault)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._health import catalog_info
from ..module_utils._option_groups import VAULT, OptionGroup, run_module
from ..module_utils._vault.reading import vault_info

OPTIONS = OptionGroup(dict(
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    job=dict(type="str"),
    kind=dict(type="str"),
    tags=dict(type="list", elements="str", default=[]),
    deploy_id=dict(type="str"),
    since=dict(type="str"),
    max_age=dict(type="str", default="26h"),
    min_size_ratio=dict(type="float", default=0.5),
    disk_usage_threshold=dict(type="float", default=85),
)) + VAULT
FILTERS = ("job", "kind", "tags", "deploy_id", "since")


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())

    def action(arguments):
        vault = arguments.pop("vault")
        if vault is None:
            return catalog_info(**arguments)
        return vault_info(vault, **{name: arguments[name] for name in FILTERS})

    run_module(module, OPTIONS, action)


if __name__ == "__main__":
    main()
