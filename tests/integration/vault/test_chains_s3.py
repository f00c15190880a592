"""Incremental chains on a real S3 store with Object Lock (SeaweedFS, s3server.py): a copy the vault's retention
cannot remove, because its lock still holds, keeps the copies of its chain it needs."""

from __future__ import annotations

import datetime

from s3server import seaweed, vault_dir  # noqa: F401  pylint: disable=unused-import

from ansible_collections.lifeboat.backup.plugins.module_utils import _vault
from ansible_collections.lifeboat.backup.plugins.module_utils._option_groups import build_policy
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import maintain, reading, replicate

from testlib import incremental_chain


def test_a_locked_copy_keeps_the_base_its_chain_needs(tmp_path, seaweed, vault_dir):  # noqa: F811
    backup_dir = str(tmp_path / "backups")
    vault = _vault.Vault(dict(seaweed.settings(prefix=vault_dir), host="web1", name="s3"))
    admin = _vault.Vault(dict(seaweed.settings("admin", prefix=vault_dir), host="web1", name="s3"))
    old_base, old_top, new_base, new_top = [
        result["id"] for result in incremental_chain(tmp_path / "src", backup_dir, 4, max_chain=1)]
    replicate.replicate(backup_dir, "app", [vault])
    # two days on, the bucket's one-day locks have expired, but the trusted side locked the old chain's level 1 for
    # three days (as a rule that kept it, then no longer did, would have)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    top = reading.find_copy(admin, old_top)
    for info in (top.artifact, top.metadata_object, top.checksum_object):
        admin.store.retain(info, later + datetime.timedelta(days=1))
    plan = maintain.maintain(admin, build_policy(keep_last=1), now=later, check_mode=True)
    entry = plan["hosts"]["web1"]["app"]
    assert entry["locked"] == [old_top] and entry["removed"] == []
    assert entry["kept"] == [new_top, new_base, old_base]
    assert reading.verify_copy(vault, old_base)["verified"]
