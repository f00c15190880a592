"""module_defaults: group/lifeboat.backup.catalog gives every module of the group its catalog (backup_dir)."""

from __future__ import annotations

import yaml

from test_modules import run_playbook
from testlib import IDENTITY, RECIPIENT

PLAY = """
- name: Every catalog module from one module_defaults entry
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/lifeboat.backup.catalog:
      backup_dir: "{{ work_dir }}/catalog"
  tasks:
    - name: Back up
      lifeboat.backup.archive:
        job: app
        paths: ["{{ work_dir }}/src"]
        recipients: ["{{ recipient }}"]
      register: made
    - name: Verify it
      lifeboat.backup.verify:
        id: "{{ made.id }}"
        level: full
        identity: "{{ identity }}"
      register: checked
    - name: List it
      lifeboat.backup.catalog_info:
      register: listed
    - name: Restore it elsewhere
      lifeboat.backup.restore:
        id: "{{ made.id }}"
        dest: "{{ work_dir }}/restored"
        identity: "{{ identity }}"
      no_log: true
    - name: Keep what happened
      ansible.builtin.copy:
        dest: "{{ work_dir }}/outcome.yml"
        content: "{{ {'made': made.path, 'verified': checked.verified, 'listed': listed.backups | map(attribute='id')
          | list} | to_nice_yaml }}"
        mode: "0600"
"""


def test_one_module_defaults_group_gives_every_catalog_module_its_backup_dir(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_text("data\n")
    (tmp_path / "play.yml").write_text(PLAY)
    run_playbook(tmp_path / "play.yml", tmp_path, {"identity": IDENTITY, "recipient": RECIPIENT})
    outcome = yaml.safe_load((tmp_path / "outcome.yml").read_text())
    assert outcome["made"].startswith(str(tmp_path / "catalog" / "app") + "/")
    assert outcome["verified"] is True and len(outcome["listed"]) == 1
    assert (tmp_path / "restored" / str(tmp_path / "src").lstrip("/") / "file.txt").read_text() == "data\n"
