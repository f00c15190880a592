"""Every module through real ansible-playbook runs: check mode, run, check-mode idempotence, idempotence."""

import json
import os
import subprocess
import sys

import pytest

import testlib
from testlib import COLLECTIONS, IDENTITY, RECIPIENT
from ansible_collections.lifeboat.backup.plugins.module_utils import _age


def run_target(target, tmp_path, extra_vars):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Target %s\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Run the target\n      ansible.builtin.include_tasks: %s\n"
        % (target, os.path.join(testlib.TESTS, "integration", "targets", target, "tasks", "main.yml")))
    return run_playbook(playbook, tmp_path, extra_vars)


def run_playbook(playbook, tmp_path, extra_vars, environment=None):
    """ansible-playbook on localhost with the checkout as the collection; environment adds to Ansible's settings.
    Fails the test unless the playbook succeeds; returns its output."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", **(environment or {}))
    variables = dict(extra_vars, work_dir=str(tmp_path), ansible_python_interpreter=sys.executable)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    process = subprocess.run([binary, "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
                              str(playbook)], env=env, capture_output=True, text=True, check=False)
    assert process.returncode == 0, process.stdout[-6000:] + process.stderr[-3000:]
    return process.stdout


@pytest.mark.parametrize("target", ["archive", "verify", "encrypt", "keypair"])
def test_module_target(target, tmp_path):
    identity, recipient = IDENTITY, RECIPIENT
    other_identity = _age.generate_identity()[0]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_text("data\n")
    output = run_target(target, tmp_path, {"identity": identity, "recipient": recipient,
                                           "other_identity": other_identity})
    assert identity not in output and other_identity not in output
