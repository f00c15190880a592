# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""examples/awx as AWX runs it: its collections/requirements.yml installed from the built collection into the
project's collections path, the identity injected as its credential type says, and its wrapper playbooks run against
localhost as the jobs of a workflow: backup, then verify and rollback fed the deploy id of the backup's custom stats."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import jinja2
import pytest
import yaml

from testlib import IDENTITY, RECIPIENT, ROOT, custom_stats, make_tree, tree_digest

EXAMPLE = os.path.join(ROOT, "examples", "awx")
BINARIES = os.path.dirname(sys.executable)


@pytest.fixture(name="project", scope="module")
def project_fixture(tmp_path_factory):
    """The example project with its requirements installed as AWX installs them, and an inventory of this machine
    with the example's group_vars."""
    work = tmp_path_factory.mktemp("awx")
    subprocess.run([os.path.join(BINARIES, "ansible-galaxy"), "collection", "build", "--output-path",
                    str(work / "dist"), ROOT], check=True, capture_output=True)
    built = glob.glob(str(work / "dist" / "lifeboat-backup-*.tar.gz"))[0]
    project = work / "project"
    shutil.copytree(EXAMPLE, project)
    # The example's requirements, with lifeboat.backup taken from the built tarball instead of Galaxy: its version
    # range must admit the version built. Only the project's collections path is searched, as in a job: a copy of
    # the collection installed elsewhere would count as installed.
    with open(project / "collections" / "requirements.yml", encoding="utf-8") as handle:
        requirements = yaml.safe_load(handle)
    entry = next(item for item in requirements["collections"] if item["name"] == "lifeboat.backup")
    entry.update(name=built, type="file")
    (work / "requirements.yml").write_text(yaml.safe_dump(requirements))
    installed = subprocess.run([os.path.join(BINARIES, "ansible-galaxy"), "collection", "install", "-r",
                                str(work / "requirements.yml"), "-p", str(project / "collections")],
                               capture_output=True, text=True, check=False,
                               env=dict(os.environ, ANSIBLE_HOME=str(work / "ansible-home"),
                                        ANSIBLE_COLLECTIONS_PATH=str(project / "collections")))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    (project / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return project


def identity_credential(tmp_path):
    """The environment a job gets from a credential of the example's type holding IDENTITY: its file injector
    written into the job's private data directory, its env injector rendered with that file's name."""
    with open(os.path.join(EXAMPLE, "credential_types", "lifeboat_identity.yml"), encoding="utf-8") as handle:
        credential_type = yaml.safe_load(handle)
    inputs = {"identity": IDENTITY}
    assert [field["id"] for field in credential_type["inputs"]["fields"]] == list(inputs)
    files = {}
    for name, template in credential_type["injectors"]["file"].items():
        path = tmp_path / "private-data" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(jinja2.Template(template).render(**inputs))
        files[name.split(".", 1)[1]] = str(path)
    return {name: jinja2.Template(template).render(tower={"filename": files}, **inputs)
            for name, template in credential_type["injectors"]["env"].items()}


def run_job(project, tmp_path, playbook, variables, credential=None):
    """ansible-playbook PLAYBOOK of the project, from the project's directory as AWX runs a job, with the project's
    collections only and the custom stats shown as AWX records them: the run."""
    (tmp_path / "extra-vars.json").write_text(json.dumps(variables))
    env = {name: value for name, value in os.environ.items() if name != "LIFEBOAT_IDENTITY_FILE"}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(project / "collections"), LC_ALL="C.UTF-8", LANG="C.UTF-8",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_SHOW_CUSTOM_STATS="1",
               **(credential or {}))
    return subprocess.run([os.path.join(BINARIES, "ansible-playbook"), "-i", "inventory/hosts.yml", "-e",
                           "@%s" % (tmp_path / "extra-vars.json"), playbook], cwd=str(project), env=env,
                          capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)


def test_every_wrapper_finds_its_playbook_in_the_installed_collection(project, tmp_path):
    wrappers = sorted(os.path.basename(path) for path in glob.glob(str(project / "*.yml")))
    assert wrappers == ["backup.yml", "recover.yml", "rollback.yml", "verify.yml"]
    for wrapper in wrappers:
        checked = subprocess.run([os.path.join(BINARIES, "ansible-playbook"), "--syntax-check", "-i",
                                  "inventory/hosts.yml", wrapper], cwd=str(project), capture_output=True, text=True,
                                 check=False, env=dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                                                       ANSIBLE_COLLECTIONS_PATH=str(project / "collections")))
        assert checked.returncode == 0, wrapper + checked.stdout + checked.stderr
    installed = project / "collections" / "ansible_collections" / "lifeboat" / "backup" / "MANIFEST.json"
    assert json.loads(installed.read_text())["collection_info"]["name"] == "backup"  # from the tarball


def test_a_workflow_hands_the_backup_s_deploy_id_to_verify_and_rollback(project, tmp_path):
    source = tmp_path / "srv" / "app"
    make_tree(str(source))
    backed_up = tree_digest(str(source))
    host = {"backup_dir": str(tmp_path / "backups"), "backup_report_file": str(tmp_path / "backup-report.json"),
            "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT]}]}
    played = run_job(project, tmp_path, "backup.yml", host)
    assert played.returncode == 0, played.stdout[-4000:]
    artifacts = custom_stats(played.stdout)  # what AWX keeps of the job and passes to the workflow's next nodes
    backup = artifacts["lifeboat_backup"]
    assert backup["hosts"] == {"localhost": "ok"}
    assert backup["report"] == host["backup_report_file"]
    assert json.loads((tmp_path / "backup-report.json").read_text())["deploy_id"] == backup["deploy_id"]

    (source / "text.txt").write_text("the deploy's version\n")  # the deploy job
    credential = identity_credential(tmp_path)
    played = run_job(project, tmp_path, "verify.yml", dict(
        artifacts, backup_dir=host["backup_dir"], verify_report_file=str(tmp_path / "verify-report.json")),
        credential)
    assert played.returncode == 0, played.stdout[-4000:]
    assert custom_stats(played.stdout)["lifeboat_verify"]["hosts"] == {"localhost": "passed"}

    # The deploy failed: the workflow's failure path runs the rollback job with the artifacts of the backup job and
    # the job template's extra variables.
    played = run_job(project, tmp_path, "rollback.yml", dict(
        artifacts, backup_jobs=host["backup_jobs"], backup_dir=host["backup_dir"], rollback_confirm=True,
        rollback_services=[], rollback_health_url="", rollback_health_command="test -d %s" % source,
        rollback_report_file=str(tmp_path / "rollback-report.json")), credential)
    assert played.returncode == 0, played.stdout[-4000:]
    assert "Every host is rolled back to deploy %s." % backup["deploy_id"] in played.stdout
    assert tree_digest(str(source)) == backed_up
    rollback = custom_stats(played.stdout)["lifeboat_rollback"]
    assert (rollback["deploy_id"], rollback["hosts"]) == (backup["deploy_id"], {"localhost": "rolled_back"})


def test_a_rollback_job_without_the_identity_credential_changes_nothing(project, tmp_path):
    source = tmp_path / "srv" / "app"
    make_tree(str(source))
    host = {"backup_dir": str(tmp_path / "backups"), "backup_report_file": str(tmp_path / "backup-report.json"),
            "backup_jobs": [{"name": "app", "paths": [str(source)], "recipients": [RECIPIENT]}]}
    played = run_job(project, tmp_path, "backup.yml", dict(host, deploy_id="v1"))
    assert played.returncode == 0, played.stdout[-4000:]
    (source / "text.txt").write_text("the deploy's version\n")
    deployed, catalog = tree_digest(str(source)), sorted(os.listdir(tmp_path / "backups" / "app"))
    played = run_job(project, tmp_path, "rollback.yml", dict(
        host, lifeboat_backup={"deploy_id": "v1"}, rollback_confirm=True, rollback_services=[],
        rollback_health_url="", rollback_report_file=str(tmp_path / "rollback-report.json")))
    assert played.returncode != 0
    assert "this artifact is encrypted: give identity (an AGE-SECRET-KEY-1... string) or passphrase to read it" \
        in played.stdout, played.stdout[-4000:]
    assert custom_stats(played.stdout)["lifeboat_rollback"]["hosts"] == {"localhost": "reverted"}
    assert tree_digest(str(source)) == deployed
    assert sorted(os.listdir(tmp_path / "backups" / "app")) == catalog  # not even a safety backup was taken
