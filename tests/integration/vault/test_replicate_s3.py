"""Replication to a real S3 store with Object Lock (SeaweedFS, s3server.py): copies locked by the bucket's default
retention, what a host's own key can still do to them and how it is reported, an upload cut short by the store going
away, the trusted side's retention that extends locks and cannot remove a locked copy."""

from __future__ import annotations

import datetime
import os
import threading
import time

import pytest

from s3server import seaweed, vault_dir  # noqa: F401  pylint: disable=unused-import

from ansible_collections.lifeboat.backup.plugins.module_utils import _catalog, _restore, _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError, VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import copies, maintain, reading, replicate

from testlib import KEY, backup, fingerprint, make_tree


@pytest.fixture
def host(tmp_path, seaweed, vault_dir):  # noqa: F811  pylint: disable=redefined-outer-name
    source = tmp_path / "src"
    make_tree(str(source))
    backup_dir = str(tmp_path / "backups")
    vault = _vault.Vault(dict(seaweed.settings(prefix=vault_dir), host="web1", name="s3"))
    admin = _vault.Vault(dict(seaweed.settings("admin", prefix=vault_dir), host="web1", name="s3"))
    yield source, backup_dir, vault, admin, seaweed, vault_dir


def test_every_copy_is_locked_recorded_and_a_second_run_changes_nothing(host):
    source, backup_dir, vault, _admin, _server, _prefix = host
    made = [backup(source, backup_dir)["id"] for _number in range(2)]
    result = replicate.replicate(backup_dir, "app", [vault])
    assert result["vaults"][0]["sent"] == made[::-1]
    for backup_id in made:
        record = _catalog.read_metadata(os.path.join(backup_dir, "app", backup_id + ".json"))["vaults"]["s3"]
        assert record["lock_mode"] == "COMPLIANCE" and record["version"] and record["retain_until"] > record["at"]
    listing = reading.list_backups(vault)
    assert [entry["id"] for entry in listing["backups"]] == made[::-1] and listing["problems"] == []
    again = replicate.replicate(backup_dir, "app", [vault])
    assert not again["changed"] and again["vaults"][0]["present"] == made[::-1]
    assert reading.verify_copy(vault, made[0], backup_dir=backup_dir)["method"] == "store"


def test_what_the_hosts_own_key_does_to_a_copy_is_reported_and_the_locked_copy_still_restores(host, tmp_path):
    source, backup_dir, vault, _admin, server, prefix = host
    made = backup(source, backup_dir)["id"]
    replicate.replicate(backup_dir, "app", [vault])
    artifact = _catalog.read_metadata(os.path.join(backup_dir, "app", made + ".json"))["artifact"]
    as_host = server.client("host")
    base = "%s/web1/app/" % prefix
    as_host.delete_object(Bucket="vault", Key=base + artifact)  # a delete marker, nothing more
    as_host.put_object(Bucket="vault", Key=base + made + ".json", Body=b"{}")  # a version over the metadata
    with pytest.raises(Exception) as refused:
        versions = as_host.list_object_versions(Bucket="vault", Prefix=base + artifact)["Versions"]
        as_host.delete_object(Bucket="vault", Key=base + artifact, VersionId=versions[0]["VersionId"])
    assert "AccessDenied" in str(refused.value) or "locked" in str(refused.value).lower()
    listing = reading.list_backups(vault)
    assert [entry["id"] for entry in listing["backups"]] == [made]
    codes = sorted((problem["code"], problem["level"]) for problem in listing["problems"])
    assert codes == [("vault_rewritten", "critical"), ("vault_rewritten", "critical")]
    assert any("deleted 1 time(s)" in problem["message"] for problem in listing["problems"])
    with pytest.raises(IntegrityError) as caught:
        reading.verify_copy(vault, made)
    assert "passed checksum verification, but" in str(caught.value) and "sign of tampering" in str(caught.value)
    scratch = str(tmp_path / "fetched")
    dest = tmp_path / "dest"
    dest.mkdir()
    _restore.restore_backup(_restore.RestoreRequest(path=reading.fetch_copy(vault, made, scratch), dest=str(dest),
                                                    key=KEY, backup_dir=scratch, safety_backup=False))
    assert fingerprint(str(dest / str(source).lstrip("/"))) == fingerprint(str(source))


def test_a_copy_changed_through_the_trusted_side_fails_verification(host):
    source, backup_dir, vault, _admin, server, prefix = host
    made = backup(source, backup_dir)["id"]
    replicate.replicate(backup_dir, "app", [vault])
    artifact = _catalog.read_metadata(os.path.join(backup_dir, "app", made + ".json"))["artifact"]
    server.corrupt("%s/web1/app/%s" % (prefix, artifact))
    for level, options in (("checksum", {}), ("full", {"key": KEY})):
        with pytest.raises(IntegrityError) as caught:
            reading.verify_copy(vault, made, level, **options)
        assert made in str(caught.value) and "written 2 times" in str(caught.value)


def test_an_upload_cut_short_leaves_nothing_complete_and_the_next_run_completes_it(host):
    source, backup_dir, vault, _admin, server, _prefix = host
    with open(os.path.join(str(source), "big.bin"), "wb") as handle:
        handle.write(os.urandom(48 << 20))
    made = backup(source, backup_dir)["id"]
    local = fingerprint(os.path.join(backup_dir, "app"))
    stopper = threading.Timer(0.3, server.stop)
    stopper.start()
    try:
        with pytest.raises(VaultError) as caught:
            replicate.replicate(backup_dir, "app", [vault])
    finally:
        stopper.join()
        server.start()
    assert vault.describe() in str(caught.value)
    assert fingerprint(os.path.join(backup_dir, "app")) == local
    assert copies.usable(copies.read_host(vault.store, "web1", "app").get("app", {}).get(made, [])) is None
    result = replicate.replicate(backup_dir, "app", [vault])
    assert result["vaults"][0]["sent"] == [made]
    assert reading.verify_copy(vault, made, "full", key=KEY)["verified"]


def test_retention_on_the_vault_extends_what_it_keeps_and_cannot_remove_a_locked_copy(host):
    source, backup_dir, vault, admin, _server, _prefix = host
    made = [backup(source, backup_dir)["id"] for _number in range(2)]
    replicate.replicate(backup_dir, "app", [vault])
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    extended = maintain.maintain(admin, build_policy(keep_last=5), now=later)
    assert sorted(extended["hosts"]["web1"]["app"]["extended"]) == sorted(made)
    copy = reading.find_copy(admin, made[0])
    assert copy.artifact.retain_until > later  # locked beyond the new "now": extended, not shortened
    result = maintain.maintain(admin, build_policy(keep_last=1))
    entry = result["hosts"]["web1"]["app"]
    assert entry["kept"] == [made[1]] and entry["locked"] == [made[0]] and entry["removed"] == []
    assert reading.verify_copy(vault, made[0])["verified"]
    time.sleep(0)  # the lock, not the clock, kept it
