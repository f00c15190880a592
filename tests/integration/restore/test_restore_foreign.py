# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A restore never follows what another user controls: that user's steps run as nobody in a forked child, at the
exact moment a restore would be misled, and a root-owned 'shadow' file stands for /etc/shadow."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from test_restore_hostile import Entry, craft_backup
from testlib import NOBODY, as_nobody, fingerprint, restore

from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError, UsageError
from ansible_collections.lifeboat.backup.plugins.module_utils._restore import files

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="another user's steps need root to switch to nobody")


@pytest.fixture(name="place")
def place_fixture(tmp_path):
    """A world-traversable base (root, 0755) with a victim directory holding the 'shadow' file, and a backup."""
    base = tempfile.mkdtemp(dir="/var/tmp", prefix="lifeboat-foreign-")
    os.chmod(base, 0o755)
    victim = os.path.join(base, "victim")
    os.makedirs(os.path.join(victim, "app"))
    with open(os.path.join(victim, "shadow"), "w", encoding="utf-8") as handle:
        handle.write("root:secret\n")
    os.chmod(os.path.join(victim, "shadow"), 0o600)
    with open(os.path.join(victim, "app", "keep.txt"), "w", encoding="utf-8") as handle:
        handle.write("victim's\n")
    entries = [Entry("srv", "dir", mode=0o755), Entry("srv/app", "dir", mode=0o755),
               Entry("srv/app/keep.txt", "file", b"from backup\n")]
    backup_id = craft_backup(tmp_path / "backups", "app", ["/srv"], entries)
    yield {"base": base, "victim": victim, "backups": tmp_path / "backups", "id": backup_id}
    shutil.rmtree(base)


def foreign_dir(place, name):
    path = os.path.join(place["base"], name)
    os.mkdir(path, 0o755)
    os.chown(path, NOBODY, NOBODY)
    return path


def test_a_dest_another_user_owns_is_refused_unless_allowed(place):
    dest = foreign_dir(place, "dest")
    victim = fingerprint(place["victim"])
    with pytest.raises(UsageError) as refused:
        restore(place["backups"], place["id"], dest=dest, safety_backup=False)
    assert ("cannot restore into %s: the directory is owned by nobody (uid 65534), another user than root, who could "
            "swap what the restore writes there for a link to anywhere" % dest) in str(refused.value)
    assert "allow_foreign_owner: true" in str(refused.value)
    assert os.listdir(dest) == [] and fingerprint(place["victim"]) == victim
    assert restore(place["backups"], place["id"], dest=dest, safety_backup=False, allow_foreign_owner=True)["changed"]
    with open(os.path.join(dest, "srv", "app", "keep.txt"), encoding="utf-8") as handle:
        assert handle.read() == "from backup\n"


def test_a_dest_through_a_link_another_user_owns_is_refused(place):
    sticky = os.path.join(place["base"], "tmp")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    link = os.path.join(sticky, "drill")
    as_nobody(lambda: os.symlink(place["victim"], link))
    victim = fingerprint(place["victim"])
    with pytest.raises(UsageError) as refused:
        restore(place["backups"], place["id"], dest=link, safety_backup=False)
    assert "cannot restore into %s: the symbolic link is owned by nobody (uid 65534)" % link in str(refused.value)
    assert fingerprint(place["victim"]) == victim


def test_a_parent_of_a_target_another_user_owns_is_refused(place):
    dest = os.path.join(place["base"], "dest")
    os.makedirs(os.path.join(dest, "srv"))
    os.chown(os.path.join(dest, "srv"), NOBODY, NOBODY)
    with pytest.raises(UsageError) as refused:
        restore(place["backups"], place["id"], dest=dest, safety_backup=False, include=["/srv/app"])
    assert "cannot restore into %s: the directory is owned by nobody" % os.path.join(dest, "srv") in str(refused.value)
    assert os.listdir(os.path.join(dest, "srv")) == []


def test_a_link_swapped_in_between_plan_and_swap_is_not_followed(place, monkeypatch):
    """Allowed into a dest another user owns: that user replaces srv by a link to the victim just before the swap;
    the renames stay in the directory the restore opened, and the victim's tree is not replaced."""
    dest = foreign_dir(place, "dest")
    os.makedirs(os.path.join(dest, "srv", "app"))
    victim = fingerprint(place["victim"])
    real_sync = files.sync_filesystem

    def attack_then_sync(dir_fd):
        def steps():
            os.rename(os.path.join(dest, "srv"), os.path.join(dest, "moved"))
            os.symlink(place["victim"], os.path.join(dest, "srv"))
        as_nobody(steps)
        return real_sync(dir_fd)

    monkeypatch.setattr(files, "sync_filesystem", attack_then_sync)
    restore(place["backups"], place["id"], dest=dest, safety_backup=False, include=["/srv/app"], allow_foreign_owner=True)
    assert fingerprint(place["victim"]) == victim
    with open(os.path.join(dest, "moved", "app", "keep.txt"), encoding="utf-8") as handle:
        assert handle.read() == "from backup\n"


def test_a_directory_swapped_for_a_link_never_makes_root_hard_link_what_it_points_to(place, monkeypatch):
    """Another user's directory inside the restored tree holds an extra file; just before the extras are linked
    into the new tree, the user swaps the directory for a link to where 'shadow' lives."""
    dest = os.path.join(place["base"], "dest")
    app = os.path.join(dest, "srv", "app")
    os.makedirs(app)
    os.chown(app, NOBODY, NOBODY)
    with open(os.path.join(app, "keep.txt"), "w", encoding="utf-8") as handle:
        handle.write("live\n")
    as_nobody(lambda: os.mkdir(os.path.join(app, "sub")) or open(os.path.join(app, "sub", "shadow"), "w").close())
    victim = fingerprint(place["victim"])
    real_merge = files._merge_extras  # pylint: disable=protected-access

    def attack_then_merge(live, extractor):
        def steps():
            os.rename(os.path.join(app, "sub"), os.path.join(app, "sub-moved"))
            os.symlink(place["victim"], os.path.join(app, "sub"))
        as_nobody(steps)
        return real_merge(live, extractor)

    monkeypatch.setattr(files, "_merge_extras", attack_then_merge)
    with pytest.raises(BackupError) as refused:
        restore(place["backups"], place["id"], dest=dest, safety_backup=False)
    assert ("%s changed while it was restored (Not a directory): it was replaced, or swapped for a link, after the "
            "plan read it; nothing was restored" % os.path.join(app, "sub")) in str(refused.value)
    assert fingerprint(place["victim"]) == victim
    assert os.stat(os.path.join(place["victim"], "shadow")).st_nlink == 1
    with open(os.path.join(app, "keep.txt"), encoding="utf-8") as handle:
        assert handle.read() == "live\n"
    assert sorted(os.listdir(os.path.join(dest, "srv"))) == ["app"]
