"""Break-glass on a host without its operator's identity: lifeboat header there, lifeboat unwrap where the identity
is, lifeboat restore --file-key with that one artifact's key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_cli import host  # noqa: F401  pylint: disable=unused-import
from testlib import COLLECTIONS, IDENTITY


def _archives(host):  # noqa: F811  pylint: disable=redefined-outer-name
    found = [meta for meta in json.loads(host("list", "--json").stdout) if meta["kind"] == "files"]
    return [dict(meta, path=str(host.tmp / "backups" / "app" / meta["artifact"])) for meta in found]


def test_a_file_key_unwrapped_elsewhere_restores_its_backup_and_no_other(host):  # noqa: F811
    assert host("run", "app").returncode == 0
    (host.app / "index.html").write_text("<h1>second</h1>\n")
    assert host("run", "app").returncode == 0
    newer, older = _archives(host)
    header = host("header", older["id"])
    assert header.returncode == 0 and header.stdout.startswith("age-encryption.org/v1\n-> X25519 ")
    assert "AGE-SECRET-KEY" not in header.stdout and header.stdout.splitlines()[-1].startswith("--- ")

    # Where the identity is (the controller, with the collection installed): the header in, the file key out; the
    # artifact itself does as well.
    (host.tmp / "header.txt").write_text(header.stdout)
    unwrapped = subprocess.run([sys.executable, "-m", "ansible_collections.lifeboat.backup.plugins.module_utils._cli",
                                "unwrap", str(host.tmp / "header.txt"), "--identity-file", str(host.tmp / "key.txt")],
                               env=dict(os.environ, PYTHONPATH=COLLECTIONS), capture_output=True, text=True,
                               check=False)
    assert unwrapped.returncode == 0, unwrapped.stderr
    file_key = unwrapped.stdout.strip()
    assert file_key.startswith("LIFEBOAT-FILE-KEY-1") and IDENTITY not in unwrapped.stdout
    assert host("unwrap", older["path"], "--identity-file", "-", stdin=IDENTITY).stdout.strip() == file_key

    # The older backup's key does not open the newer one: refused before anything is written.
    target = host.tmp / "restored"
    refused = host("restore", newer["id"], "--to", str(target), "--file-key", "-", stdin=file_key + "\n")
    assert refused.returncode == 1
    assert "the file key given does not open this file: it is the key of another artifact" in refused.stderr
    assert file_key not in refused.stderr + refused.stdout
    assert not target.exists()

    restored = host("restore", older["id"], "--to", str(target), "--file-key", "-", stdin=file_key + "\n")
    assert restored.returncode == 0, restored.stderr
    assert (target / str(host.app).lstrip("/") / "index.html").read_text() == "<h1>app</h1>\n"
    checked = host("verify", older["id"], "--full", "--file-key", "-", stdin=file_key)
    assert checked.returncode == 0 and "passed full verification" in checked.stdout
    assert (host.app / "index.html").read_text() == "<h1>second</h1>\n"  # --to left the live tree alone


def test_unwrap_and_restore_say_what_is_missing_or_wrong(host):  # noqa: F811
    assert host("run", "app").returncode == 0
    archive = _archives(host)[0]
    no_key = host("restore", archive["id"])
    assert no_key.returncode == 2 and "--file-key FILE" in no_key.stderr
    both = host("unwrap", "-", "--identity-file", "-", stdin=IDENTITY)
    assert both.returncode == 2 and "cannot both come from standard input" in both.stderr
    not_a_key = host("restore", archive["id"], "--file-key", "-", stdin=IDENTITY)
    assert not_a_key.returncode == 2 and "an identity was given where a file key is expected" in not_a_key.stderr
    assert IDENTITY not in not_a_key.stderr
    wrong = host("unwrap", archive["path"], "--passphrase-file", "-", stdin="a passphrase\n")
    assert wrong.returncode == 1 and "encrypted to recipients" in wrong.stderr


def test_an_incremental_backup_restores_with_the_file_keys_of_its_chain(host):  # noqa: F811
    """An incremental job: lifeboat header prints the chain's headers, unwrap one key per line, restore takes
    them all; without the key of one artifact of the chain the restore is refused, naming it."""
    job_file = host.tmp / "etc" / "jobs.d" / "app.json"
    job_file.write_text(json.dumps(dict(json.loads(job_file.read_text()), incremental=True, retention=None)))
    for version in ("first", "second", "third"):  # each backup of the chain holds a page the newest needs
        (host.app / ("%s.html" % version)).write_text("<h1>%s</h1>\n" % version)
        assert host("run", "app").returncode == 0
    newest = _archives(host)[0]
    assert newest["level"] == 2
    headers = host("header", newest["id"])
    assert headers.returncode == 0 and headers.stdout.count("age-encryption.org/v1\n") == 3
    keys = host("unwrap", "--identity-file", str(host.tmp / "key.txt"), stdin=headers.stdout)
    assert keys.returncode == 0, keys.stderr
    file_keys = keys.stdout.split()
    assert len(file_keys) == 3 and all(key.startswith("LIFEBOAT-FILE-KEY-1") for key in file_keys)

    target = host.tmp / "restored"
    refused = host("restore", newest["id"], "--to", str(target), "--file-key", "-", stdin="\n".join(file_keys[:2]))
    assert refused.returncode == 1
    # lifeboat header prints the backup's own header first, then its chain's from the full backup on: the second
    # backup's key is the one left out
    assert "needs %s (level 1 of its chain), which the key given does not open: none of the 2 file keys given " \
        "opens this file" % newest["chain"][1] in refused.stderr
    assert not target.exists()
    restored = host("restore", newest["id"], "--to", str(target), "--file-key", "-", stdin=keys.stdout)
    assert restored.returncode == 0, restored.stderr
    restored_app = target / str(host.app).lstrip("/")
    assert [(restored_app / ("%s.html" % page)).read_text() for page in ("first", "second", "third")] == \
        ["<h1>first</h1>\n", "<h1>second</h1>\n", "<h1>third</h1>\n"]
