# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""replicate, and catalog_info, verify, restore and prune with a vault, through real ansible-playbook runs against a
directory vault (file://): the engine paths the S3 and SFTP stores share."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time

import pytest

from test_modules import run_playbook

from ansible_collections.lifeboat.backup.plugins.module_utils import _age, _catalog, _prune
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._tools import PRIVATE_PREFIX
from testlib import IDENTITY, backup, fingerprint, make_tree

HOST = "web1"


@pytest.fixture
def site(tmp_path):
    """A tree, its catalog with two backups of job app, and an empty directory vault for host web1."""
    source = tmp_path / "src"
    make_tree(str(source))
    backup_dir = tmp_path / "backups"
    made = [backup(source, backup_dir)["id"], backup(source, backup_dir)["id"]]
    (tmp_path / "vault" / "fleet").mkdir(parents=True)
    settings = {"url": "file://%s/vault/fleet" % tmp_path, "host": HOST}
    return {"source": source, "backup_dir": backup_dir, "ids": made, "vault": settings, "tmp": tmp_path,
            "job_dir": tmp_path / "vault" / "fleet" / HOST / "app", "vault_dir": tmp_path / "vault"}


def task(name, module, check_mode=False, diff=False, **args):
    """A task of a lifeboat.backup module, registered under name; its failure is looked at, not fatal."""
    return {"name": name, "lifeboat.backup." + module: args, "register": name, "ignore_errors": True,
            "check_mode": check_mode, "diff": diff}


def play(site, *tasks):
    """Run the tasks in one playbook; returns {task name: registered result}."""
    return play_with_output(site, *tasks)[0]


def play_with_output(site, *tasks, environment=None):
    """Run the tasks in one playbook; returns ({task name: registered result}, the playbook's output)."""
    results = site["tmp"] / "results.json"
    keep = {"name": "Keep the results", "ansible.builtin.copy": {
        "dest": str(results), "mode": "0600",
        "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (item["name"], item["name"]) for item in tasks)}}
    playbook = site["tmp"] / "vault-play.yml"
    playbook.write_text(json.dumps([{"name": "Vault modules", "hosts": "localhost", "gather_facts": False,
                                     "tasks": list(tasks) + [keep]}]))
    output = run_playbook(playbook, site["tmp"], {}, environment)
    return json.loads(results.read_text()), output


def replicate_task(site, name="sent", **options):
    return task(name, "replicate", job="app", backup_dir=str(site["backup_dir"]), vault=site["vault"], **options)


def state(site):
    """The vault and the catalog's backups: everything a module could change but the lock and how the last
    replication went (.replication.json), which every replication that runs records."""
    catalog = str(site["backup_dir"])
    bookkeeping = [os.path.join(catalog, name) for name in (".lock", ".replication.json")]
    return fingerprint(str(site["vault_dir"])), fingerprint(catalog, exclude=bookkeeping)


def test_replicate_sends_once_and_check_mode_changes_nothing(site):
    newest_first = site["ids"][::-1]
    before = state(site)
    results = play(site, replicate_task(site, "check", check_mode=True))
    assert state(site) == before
    check = results["check"]
    assert check["changed"] and check["sent"] == newest_first and check["present"] == [] and check["host"] == HOST
    assert "2 to send" in check["msg"]

    results = play(site, replicate_task(site))
    sent = results["sent"]
    assert sent["changed"] and sent["sent"] == newest_first and sent["recorded"] == newest_first
    assert sent["vault"] == site["vault"]["url"]
    names = set(os.listdir(str(site["job_dir"])))
    for backup_id in site["ids"]:
        metadata = _catalog.find_backup(str(site["backup_dir"]), backup_id)
        assert {metadata["artifact"], backup_id + ".json", backup_id + ".sha256"} <= names
        assert metadata["vaults"][site["vault"]["url"]]["sha256"] == metadata["sha256"]

    after = state(site)
    results = play(site, replicate_task(site, "again"), replicate_task(site, "check_again", check_mode=True))
    for name in ("again", "check_again"):
        assert not results[name]["changed"] and results[name]["sent"] == [] and results[name]["recorded"] == []
        assert results[name]["present"] == newest_first
    assert state(site) == after


def test_replicate_to_a_missing_vault_fails_naming_it_and_changes_nothing(site):
    missing = dict(site["vault"], url="file://%s/nowhere" % site["tmp"], name="offsite")
    before = state(site)
    results = play(site, task("gone", "replicate", job="app", backup_dir=str(site["backup_dir"]), vault=missing),
                   task("no_vault", "replicate", job="app", backup_dir=str(site["backup_dir"])))
    gone = results["gone"]
    assert gone["failed"] and "vault offsite" in gone["msg"] and "does not exist" in gone["msg"]
    assert gone["stage"] == "replicate" and gone["sent"] == [] and gone["vault"] == "offsite"
    assert results["no_vault"]["failed"] and "give the vault" in results["no_vault"]["msg"]
    assert state(site) == before


def partial_upload(site, backup_id, age_s=0):
    """What an upload interrupted before its sidecar leaves: the artifact alone."""
    site["job_dir"].mkdir(parents=True, exist_ok=True)
    path = site["job_dir"] / (backup_id + ".tar.zst.age")
    path.write_bytes(b"the first bytes of an upload")
    when = time.time() - age_s
    os.utime(str(path), (when, when))
    return path


def test_catalog_info_lists_the_copies_and_reports_a_partial_upload(site):
    play(site, replicate_task(site))
    partial_upload(site, "app-20200101T000000Z")
    before = state(site)
    results = play(site, task("listed", "catalog_info", backup_dir=str(site["backup_dir"]), vault=site["vault"]),
                   task("files", "catalog_info", backup_dir=str(site["backup_dir"]), vault=site["vault"],
                        kind="files", check_mode=True))
    assert state(site) == before
    listed = results["listed"]
    assert not listed["changed"] and listed["vault"] == site["vault"]["url"] and listed["host"] == HOST
    assert [entry["id"] for entry in listed["backups"]] == site["ids"][::-1] + ["app-20200101T000000Z"]
    complete = listed["backups"][0]
    assert complete["complete"] and complete["kind"] == "files" and complete["job"] == "app"
    assert complete["created_at"] and complete["problems"] == [] and "retain_until" in complete
    assert not listed["backups"][-1]["complete"] and "did not finish" in listed["backups"][-1]["problems"][0]
    assert not listed["health"]["ok"] and listed["health"]["level"] == "warning"
    [problem] = listed["health"]["problems"]
    assert problem["code"] == "vault_incomplete" and problem["id"] == "app-20200101T000000Z"
    # an incomplete copy has no metadata: it matches no filter
    assert [entry["id"] for entry in results["files"]["backups"]] == site["ids"][::-1]


def test_verify_checks_the_copy_and_names_a_damaged_one(site):
    play(site, replicate_task(site))
    first = site["ids"][0]
    checks = [task("checksum", "verify", id=first, backup_dir=str(site["backup_dir"]), vault=site["vault"]),
              task("full", "verify", id=first, level="full", identity=IDENTITY, vault=site["vault"])]
    before = state(site)
    refused = [task("source", "verify", id=first, level="source", vault=site["vault"]),
               task("by_path", "verify", path="/tmp/x.tar.zst.age", vault=site["vault"])]
    results, output = play_with_output(site, *checks, *refused)
    assert state(site) == before and IDENTITY not in output
    for level in ("checksum", "full"):
        result = results[level]
        assert not result["changed"] and result["verified"] and result["level"] == level
        assert result["id"] == first and result["vault"] == site["vault"]["url"] and result["method"] == "read"
        assert "passed %s verification" % level in result["msg"]
    assert results["full"]["members"] > 0
    assert results["source"]["failed"] and "checksum, full" in results["source"]["msg"]
    assert results["by_path"]["failed"] and "mutually exclusive" in results["by_path"]["msg"]

    artifact = site["job_dir"] / _catalog.find_backup(str(site["backup_dir"]), first)["artifact"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 1
    artifact.write_bytes(bytes(data))
    results = play(site, *checks)
    for level in ("checksum", "full"):
        assert results[level]["failed"] and first in results[level]["msg"]
        assert "failed %s verification" % level in results[level]["msg"]
    # the local backup is intact and its record untouched: verify with a vault records nothing
    assert _catalog.find_backup(str(site["backup_dir"]), first).get("verification", {}).get("state") != "failed"


def downloads(site):
    private = site["backup_dir"] / _catalog.PRIVATE_NAME
    return [name for name in os.listdir(str(private)) if name.startswith(PRIVATE_PREFIX)] if private.exists() else []


def test_restore_of_a_backup_only_the_vault_holds(site):
    play(site, replicate_task(site))
    first = site["ids"][0]
    _prune.prune(str(site["backup_dir"]), build_policy(keep_last=1), job="app")
    assert [meta["id"] for meta in _catalog.list_metadata(str(site["backup_dir"]), "app")] == [site["ids"][1]]
    dest = site["tmp"] / "dest"
    dest.mkdir()
    restore = dict(id=first, backup_dir=str(site["backup_dir"]), identity=IDENTITY, dest=str(dest),
                   safety_backup=False, vault=site["vault"])
    by_job = dict({key: value for key, value in restore.items() if key != "id"}, job="app", latest=True)
    wrong_key = dict(restore)
    wrong_key["identity"] = _age.generate_identity()[0]
    no_vault = {key: value for key, value in restore.items() if key != "vault"}
    vault_before = fingerprint(str(site["vault_dir"]))
    results, output = play_with_output(site, task("check", "restore", check_mode=True, **restore),
                                       task("wrong_key", "restore", **wrong_key),
                                       task("latest", "restore", **by_job),
                                       task("no_vault", "restore", from_vault=True, **no_vault))
    assert IDENTITY not in output
    assert results["check"]["changed"] and results["check"]["vault"] == site["vault"]["url"]
    assert results["check"]["differences"]["added"] and os.listdir(str(dest)) == []
    assert results["wrong_key"]["failed"] and "no identity matches" in results["wrong_key"]["msg"]
    assert os.listdir(str(dest)) == []
    assert results["latest"]["failed"] and "name the backup by its id" in results["latest"]["msg"]
    assert results["no_vault"]["failed"] and "give the vault" in results["no_vault"]["msg"]
    assert downloads(site) == []

    results = play(site, task("restored", "restore", **restore))
    restored = results["restored"]
    assert restored["changed"] and restored["id"] == first and restored["vault"] == site["vault"]["url"]
    assert "path" not in restored
    assert fingerprint(str(dest / str(site["source"]).lstrip("/"))) == fingerprint(str(site["source"]))
    assert downloads(site) == [] and fingerprint(str(site["vault_dir"])) == vault_before
    # the download did not enter the catalog
    assert [meta["id"] for meta in _catalog.list_metadata(str(site["backup_dir"]), "app")] == [site["ids"][1]]

    # over a damaged tree, the safety backup lands in the host's catalog, not in the scratch space removed after
    damaged = dest / str(site["source"]).lstrip("/") / "text.txt"
    damaged.write_text("damaged\n")
    with_safety = dict(restore)
    with_safety["safety_backup"] = True
    results = play(site, task("again", "restore", **with_safety))
    safety_id = results["again"]["safety_backup_id"]
    assert results["again"]["changed"] and results["again"]["differences"]["changed"]
    assert _catalog.find_backup(str(site["backup_dir"]), safety_id)["tags"] == ["safety"]
    assert fingerprint(str(dest / str(site["source"]).lstrip("/"))) == fingerprint(str(site["source"]))
    assert downloads(site) == []


def test_restore_prefers_the_local_backup_unless_told_otherwise(site):
    play(site, replicate_task(site))
    restore = dict(id=site["ids"][1], backup_dir=str(site["backup_dir"]), identity=IDENTITY, safety_backup=False,
                   vault=site["vault"])
    for name in ("a", "b"):
        (site["tmp"] / name).mkdir()
    results = play(site, task("local", "restore", check_mode=True, dest=str(site["tmp"] / "a"), **restore),
                   task("remote", "restore", check_mode=True, dest=str(site["tmp"] / "b"), from_vault=True,
                        **restore))
    assert results["local"]["vault"] is None and results["local"]["path"].startswith(str(site["backup_dir"]))
    assert results["remote"]["vault"] == site["vault"]["url"] and "path" not in results["remote"]
    assert results["local"]["differences"] == results["remote"]["differences"]
    assert downloads(site) == []


def test_prune_with_a_vault_applies_retention_there_and_leaves_the_catalog_alone(site):
    play(site, replicate_task(site))
    old = partial_upload(site, "app-20200101T000000Z", age_s=2 * 86400)
    fresh = partial_upload(site, "app-20200102T000000Z")
    other_host = site["vault_dir"] / "fleet" / "db1" / "app"
    shutil.copytree(str(site["job_dir"]), str(other_host))
    other_files = sorted(os.listdir(str(other_host)))
    prune = dict(backup_dir=str(site["backup_dir"]), keep_last=1, vault=site["vault"])
    before = state(site)
    results = play(site, task("check", "prune", check_mode=True, **prune))
    assert state(site) == before
    predicted = results["check"]["hosts"]
    entry = predicted[HOST]["app"]
    assert results["check"]["changed"] and list(predicted) == [HOST]
    assert entry["kept"] == [site["ids"][1]] and entry["removed"] == [site["ids"][0]]
    assert entry["swept"] == ["app-20200101T000000Z"] and entry["locked"] == []

    catalog = fingerprint(str(site["backup_dir"]))
    results = play(site, task("pruned", "prune", diff=True, **prune), task("again", "prune", **prune),
                   task("all_local", "prune", backup_dir=str(site["backup_dir"]), all_hosts=True))
    pruned = results["pruned"]
    assert pruned["changed"] and pruned["hosts"] == predicted
    assert pruned["diff"]["after"] == "%s/%s\n" % (HOST, site["ids"][1])
    names = os.listdir(str(site["job_dir"]))
    assert not any(name.startswith(site["ids"][0] + ".") for name in names)
    assert any(name.startswith(site["ids"][1] + ".tar") for name in names)
    assert old.name not in names and fresh.name in names
    assert not results["again"]["changed"]
    assert results["all_local"]["failed"] and "give the vault" in results["all_local"]["msg"]
    assert fingerprint(str(site["backup_dir"])) == catalog
    assert sorted(os.listdir(str(other_host))) == other_files  # another host's copies are not this host's to prune

    results = play(site, task("everyone", "prune", all_hosts=True, **prune))
    assert sorted(results["everyone"]["hosts"]) == ["db1", HOST]
    assert results["everyone"]["hosts"]["db1"]["app"]["removed"] == [site["ids"][0]]


def test_vault_credentials_stay_out_of_every_kept_file_and_of_the_results(site):
    """With pipelining off Ansible writes the module and its arguments into the remote temporary directory, and
    ANSIBLE_KEEP_REMOTE_FILES keeps them: what the module itself writes, returns or prints must hold no secret."""
    access_key, secret_key = "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    remote_tmp = site["tmp"] / "remote-tmp"
    environment = {"ANSIBLE_PIPELINING": "0", "ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": str(remote_tmp)}
    vault = dict(site["vault"], access_key=access_key, secret_key=secret_key)
    results, output = play_with_output(site, task("sent", "replicate", job="app", backup_dir=str(site["backup_dir"]),
                                                  vault=vault), environment=environment)
    assert results["sent"]["sent"] == site["ids"][::-1]
    text = json.dumps(results) + output
    assert access_key not in text and secret_key not in text
    holding = []
    for root in (remote_tmp, site["backup_dir"], site["vault_dir"], site["tmp"] / "ansible-tmp"):
        for directory, _dirs, files in os.walk(str(root)):
            for name in files:
                with open(os.path.join(directory, name), "rb") as handle:
                    content = handle.read()
                if access_key.encode() in content or secret_key.encode() in content:
                    holding.append(os.path.relpath(os.path.join(directory, name), str(site["tmp"])))
    # Ansible's own wrapper carries the task's arguments (it is what pipelining, the default here, never writes):
    # it shows the search would find a secret, and it is the only file that holds one.
    assert holding and all(os.path.basename(path) == "AnsiballZ_replicate.py" for path in holding), holding
