#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hook
short_description: Run one stage of a backup job's hooks on the host
version_added: 0.2.0
description:
  - Runs the commands of one stage of a job's O(hooks) on the managed host, in order, and stops at the first that
    fails (a non-zero exit, its timeout, a program that cannot be started), which fails the task with the stage, the
    command, its exit status or timeout and the end of its output.
  - The whole O(hooks) mapping is checked first, whatever the stage; a bad entry fails the task before anything runs.
  - Each command runs without a shell (an argv list) unless it is a mapping with C(shell) (C(/bin/sh -c)), with
    stdin C(/dev/null), in C(/), in a session of its own, and gets only C(PATH), C(HOME), C(LANG), C(LC_ALL),
    C(LC_CTYPE), C(TZ), C(USER) and C(LOGNAME) of the module's environment, plus C(LIFEBOAT_HOOK) (the stage),
    C(LIFEBOAT_JOB), C(LIFEBOAT_BACKUP_DIR), C(LIFEBOAT_BACKUP_IDS) and C(LIFEBOAT_BACKUP_ID) (the last of them) when
    O(backup_ids) is given, C(LIFEBOAT_OUTCOME) and C(LIFEBOAT_ERROR) when given. At its timeout its whole process
    group is sent SIGTERM, then SIGKILL.
  - For V(after_backup) and V(after_restore), O(outcome) and O(error) say how the job went; the message of a failing
    hook then says that too (the error first, or that the backups O(backup_ids) were made, or restored).
  - The playbooks C(backup.yml) and C(rollback.yml) run it around each job; the on-host command C(lifeboat) runs the
    same hooks itself. C(docs/hooks.md) describes the stages and their order.
author:
  - Lifeboat maintainers (@lifeboat)
extends_documentation_fragment:
  - lifeboat.backup.attributes
attributes:
  check_mode:
    support: full
    details: Checks O(hooks) and returns in RV(commands) what would run, running nothing.
  diff_mode:
    support: none
options:
  stage:
    description:
      - The stage to run.
    type: str
    required: true
    choices: [before_backup, after_backup, on_failure, before_restore, after_restore]
  hooks:
    description:
      - The job's hooks (the agent role's C(agent_jobs[].hooks)); a mapping of stage to a list of commands. A
        command is a list of strings (the argv, run without a shell) or a mapping with exactly one of C(argv) (a
        list) and C(shell) (a string run by C(/bin/sh -c)) and an optional C(timeout) in seconds (300 when not set).
      - A plain string is refused, so that a space in an argument never splits it by surprise.
      - No hooks, or none for O(stage), runs nothing.
    type: raw
  job:
    description:
      - The job's name, given to the hooks in C(LIFEBOAT_JOB).
    type: str
    required: true
  backup_dir:
    description:
      - The catalog directory on the managed host, given to the hooks in C(LIFEBOAT_BACKUP_DIR).
    type: path
    default: /var/backups/lifeboat
  backup_ids:
    description:
      - The backups made (V(after_backup), V(on_failure)) or restored (V(before_restore), V(after_restore)), given to
        the hooks in C(LIFEBOAT_BACKUP_IDS), separated by spaces, and the last in C(LIFEBOAT_BACKUP_ID).
    type: list
    elements: str
    default: []
  outcome:
    description:
      - How the job went, for V(after_backup), V(after_restore) and V(on_failure), given to the hooks in
        C(LIFEBOAT_OUTCOME).
    type: str
    choices: [success, failure]
  error:
    description:
      - The job's failure, given to the hooks in C(LIFEBOAT_ERROR).
    type: str
requirements:
  - python >= 3.9 on the managed host
seealso:
  - module: lifeboat.backup.archive
  - module: lifeboat.backup.restore
"""

EXAMPLES = r"""
- name: Put the app in maintenance mode before its database is restored
  lifeboat.backup.hook:
    stage: before_restore
    job: app
    backup_ids: [app-20261122T021500Z]
    hooks:
      before_restore:
        - [/usr/local/bin/app-maintenance, "on"]
      after_restore:
        - [/usr/local/bin/app-maintenance, "off"]

- name: Flush the queue before the backup, through a shell, within a minute
  lifeboat.backup.hook:
    stage: before_backup
    job: app
    hooks:
      before_backup:
        - shell: /usr/local/bin/queue-flush && sync
          timeout: 60
"""

RETURN = r"""
hooks:
  description: One record per command run, in order, the failing one last. C(rc) is null when the command could not
    be started; C(output) is its stdout and stderr together, the last 64 KiB of it.
  returned: always
  type: list
  elements: dict
  sample: [{"stage": "before_restore", "command": ["/usr/local/bin/app-maintenance", "on"], "rc": 0,
            "duration": 0.21, "timed_out": false, "output": "maintenance mode on\n"}]
commands:
  description: The commands of the stage (an argv list, or the shell string), run or, in check mode, that would run.
  returned: always
  type: list
  elements: raw
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils._catalog import DEFAULT_BACKUP_DIR
from ..module_utils._hooks import STAGES, run_stage
from ..module_utils._option_groups import OptionGroup, run_module

OPTIONS = OptionGroup(dict(
    stage=dict(type="str", required=True, choices=list(STAGES)),
    hooks=dict(type="raw"),
    job=dict(type="str", required=True),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    backup_ids=dict(type="list", elements="str", default=[]),
    outcome=dict(type="str", choices=["success", "failure"]),
    error=dict(type="str"),
))


def main():
    module = AnsibleModule(supports_check_mode=True, **OPTIONS.module_kwargs())
    run_module(module, OPTIONS, lambda arguments: run_stage(check_mode=module.check_mode, **arguments),
               failure={"hooks": []})


if __name__ == "__main__":
    main()
