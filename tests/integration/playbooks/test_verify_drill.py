# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/verify.yml's scratch space: made fresh, private and unpredictable; never one another user prepared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from testlib import COLLECTIONS, IDENTITY, NOBODY, RECIPIENT, ROOT, as_nobody, custom_stats

from ansible_collections.lifeboat.backup.plugins.module_utils import _archive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="another user's steps need root to switch to nobody")


def drill(tmp_path, scratch_dir):
    source = tmp_path / "src"
    source.mkdir()
    (source / "file.txt").write_text("data\n")
    _archive.run_archive(_archive.ArchiveRequest([str(source)], "app", backup_dir=str(tmp_path / "backups"),
                                                 recipients=[RECIPIENT]))
    variables = {"backup_dir": str(tmp_path / "backups"), "backup_identity": IDENTITY,
                 "verify_scratch_dir": scratch_dir, "verify_report_file": str(tmp_path / "report.json"),
                 "ansible_python_interpreter": sys.executable}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_SHOW_CUSTOM_STATS="1")
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([binary, "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
                           os.path.join(ROOT, "playbooks", "verify.yml")], env=env, capture_output=True, text=True,
                          check=False, cwd=str(tmp_path))


@pytest.fixture(name="base")
def base_fixture():
    """A directory like /var/tmp: root's, 1777."""
    base = tempfile.mkdtemp(dir="/var/tmp", prefix="lifeboat-drill-test-")
    os.chmod(base, 0o1777)
    yield base
    shutil.rmtree(base)


def test_a_scratch_dir_another_user_made_first_fails_the_drill_before_any_restore(tmp_path, base):
    """The old fixed name: the other user creates it first and fills it with links to live trees."""
    scratch = os.path.join(base, "lifeboat-drill")
    as_nobody(lambda: os.mkdir(scratch, 0o777) or os.symlink("/etc", os.path.join(scratch, "app")))
    played = drill(tmp_path, scratch)
    assert played.returncode != 0
    assert "verify_scratch_dir %s must be a directory of root's that other users cannot rename entries in" % scratch \
        in played.stdout
    assert os.listdir(scratch) == ["app"] and os.lstat(scratch).st_uid == NOBODY


def test_the_drill_makes_a_fresh_private_scratch_dir_in_a_sticky_one_and_removes_it(tmp_path, base):
    as_nobody(lambda: os.symlink("/etc", os.path.join(base, "lifeboat-drill-localhost-")))
    played = drill(tmp_path, base)
    assert played.returncode == 0, played.stdout[-4000:]
    assert "Restore drill passed: 1 backup(s) on 1 host(s)" in played.stdout
    stats = custom_stats(played.stdout)
    assert stats["lifeboat_verify"]["hosts"] == {"localhost": "passed"}  # what a workflow's next job gets
    assert os.listdir(base) == ["lifeboat-drill-localhost-"]
