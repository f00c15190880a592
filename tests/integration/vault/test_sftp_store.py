# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SFTP vault store against a real append-only OpenSSH vault (sshvault.py): what a host can do there, what it
cannot, and the sentence of each refusal."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess

import pytest

from sshvault import ssh_vault  # noqa: F401  pylint: disable=unused-import

from ansible_collections.lifeboat.backup.plugins.module_utils._errors import IntegrityError, VaultError
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import open_store
from ansible_collections.lifeboat.backup.plugins.module_utils._vault.store import ObjectInfo


LOST = "%s: the connection was lost: the vault host or the network went away (ssh: "


def upload(store, key, data):
    return store.upload(key, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


def read_back(store, info):
    with store.open(info) as stream:
        return stream.read()


@pytest.fixture
def store(ssh_vault):  # noqa: F811  pylint: disable=redefined-outer-name
    opened = open_store(ssh_vault.settings)
    yield opened
    opened.close()


def test_round_trip_reads_back_byte_for_byte(ssh_vault, store):  # noqa: F811
    small = b"abc\n"
    large = os.urandom(5 * (1 << 20) + 12345)  # several reads and writes, and a last one that is short
    infos = [upload(store, ssh_vault.key("daily", "app-1.sha256"), small),
             upload(store, ssh_vault.key("daily", "app-1.tar.zst.age"), large),
             upload(store, ssh_vault.key("db", "empty.json"), b"")]
    assert [(info.size, info.sha256) for info in infos] == [
        (len(data), hashlib.sha256(data).hexdigest()) for data in (small, large, b"")]
    assert [read_back(store, info) for info in infos] == [small, large, b""]
    assert store.read_small(infos[0]) == small
    on_disk = ssh_vault.files()
    assert on_disk == {infos[0].key: small, infos[1].key: large, infos[2].key: b""}
    # the server's umask: nothing the host wrote can be written again, even by itself
    assert all(os.stat(ssh_vault.path(info.key)).st_mode & 0o222 == 0 for info in infos)


def test_a_stream_that_is_not_the_announced_one_is_refused_and_never_looks_whole(ssh_vault, store):  # noqa: F811
    data = os.urandom(3 << 20)
    key = ssh_vault.key("daily", "app-2.tar.zst.age")
    with pytest.raises(IntegrityError) as caught:
        store.upload(key, io.BytesIO(data), len(data), hashlib.sha256(b"other").hexdigest())
    assert caught.value.msg == (
        "%s changed while it was copied to %s (its SHA-256 is not the one expected): the partial /%s stays on the "
        "vault until the vault host sweeps it" % (key, ssh_vault.url, key))
    assert len(ssh_vault.files()[key]) < len(data)  # the last chunk is held back: a shorter file, never counted
    shorter = ssh_vault.key("daily", "app-3.tar.zst.age")
    with pytest.raises(IntegrityError, match=r"\(%d bytes read, %d expected\)" % (len(data), len(data) + 1)):
        store.upload(shorter, io.BytesIO(data), len(data) + 1, hashlib.sha256(data).hexdigest())
    longer = ssh_vault.key("daily", "app-4.tar.zst.age")
    with pytest.raises(IntegrityError, match=r"\(more than 1000 bytes read, 1000 expected\)"):
        store.upload(longer, io.BytesIO(data), 1000, hashlib.sha256(data).hexdigest())
    assert len(ssh_vault.files().get(longer, b"")) < 1000
    # the store goes on working after each refusal
    assert read_back(store, upload(store, ssh_vault.key("daily", "app-5.json"), b"{}")) == b"{}"


def test_listing_descends_and_skips_what_the_product_never_writes(ssh_vault, store):  # noqa: F811
    keys = [ssh_vault.key("daily", "app-1.json"), ssh_vault.key("daily", "app-1~2.tar.zst.age"),
            ssh_vault.key("db", "db-1.sqlite.zst.age")]
    for number, key in enumerate(keys):
        upload(store, key, b"x" * number)
    # The vault host's own files with names no host writes, and a link: skipped, and nothing breaks.
    daily = ssh_vault.path(ssh_vault.key("daily"))
    for odd in ("two words", "new\nline", "-rw-r--r-- 1 0 0 9 Jan 1 00:00 fake", "\u00e9t\u00e9"):
        with open(os.path.join(daily, odd), "wb") as handle:
            handle.write(b"odd")
    os.symlink("/etc/passwd", os.path.join(daily, "link.json"))
    with open(os.path.join(ssh_vault.path(ssh_vault.key("db")), b"\xff\xfe.json".decode("utf-8", "surrogateescape")),
              "wb") as handle:
        handle.write(b"not utf-8")
    expected = sorted((key, number) for number, key in enumerate(keys))
    for directory in ("vault", ssh_vault.key(), ssh_vault.key("daily")):
        listed = store.list(directory)
        assert sorted((info.key, info.size) for info in listed) == [
            (key, size) for key, size in expected if key.startswith(directory + "/")]
    info = store.list(ssh_vault.key("db"))[0]
    assert info.modified.timestamp() == int(os.stat(ssh_vault.path(info.key)).st_mtime)  # to the second
    assert store.list(ssh_vault.key("nothing-here")) == []
    assert store.list("elsewhere") == []


def test_an_append_only_vault_refuses_every_change_and_keeps_the_file(ssh_vault, store):  # noqa: F811
    data = os.urandom(100_000)
    info = upload(store, ssh_vault.key("daily", "app-1.tar.zst.age"), data)
    path = "/" + info.key
    with pytest.raises(VaultError) as caught:
        store.remove(info)
    assert caught.value.msg == (
        "%s: the vault refused to remove %s (permission denied): an append-only vault keeps what hosts write; "
        "retention and sweeping run on the vault host itself, over its directory" % (ssh_vault.url, path))
    with pytest.raises(VaultError, match="is already on the vault, and a name on an append-only vault is never "
                                         "written twice"):
        upload(store, info.key, b"replacement")
    # The same, by hand, with the host's own key and the system's sftp: each refused, none done.
    attempts = {"rm %s" % path: "Permission denied",
                "rename %s %s.old" % (path, path): "Permission denied",
                "put /etc/hostname %s" % path: "Permission denied",
                "chmod 666 %s" % path: "Permission denied",
                "rmdir /%s" % ssh_vault.key("db"): "Permission denied",
                "symlink %s /%s" % (path, ssh_vault.key("daily", "link")): "Permission denied",
                "ln %s /%s" % (path, ssh_vault.key("daily", "hard")): "Server does not support hardlink"}
    for command, refusal in attempts.items():
        result = ssh_vault.sftp(command + "\n")
        assert result.returncode != 0 and refusal in result.stderr, (command, result.stderr)
    shell = subprocess.run(ssh_vault.client_argv("ssh") + ["-l", ssh_vault.account, "127.0.0.1",
                                                           "id; echo shell-reached"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert "shell-reached" not in shell.stdout and "uid=" not in shell.stdout
    tty = subprocess.run(ssh_vault.client_argv("ssh") + ["-tt", "-l", ssh_vault.account, "127.0.0.1"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert "PTY allocation request failed" in tty.stderr
    assert ssh_vault.files() == {info.key: data}
    assert os.stat(ssh_vault.path(info.key)).st_mode & 0o777 == 0o400
    assert sorted(os.listdir(ssh_vault.path(ssh_vault.key()))) == ["daily", "db"]


def test_a_host_key_other_than_the_known_one_is_refused(ssh_vault, tmp_path):  # noqa: F811
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ssh_vault.trust((tmp_path / "other_key.pub").read_text())
    store = open_store(ssh_vault.settings)
    known = ssh_vault.known_hosts_file
    with pytest.raises(VaultError) as caught:
        upload(store, ssh_vault.key("daily", "app-1.json"), b"{}")
    assert caught.value.msg.startswith(
        "%s: the host key of 127.0.0.1 port %d is not the one %s holds: the server was reinstalled, or someone is "
        "in between; once its new fingerprint is checked with the vault's administrator, replace the line "
        "(ssh-keygen -R '[127.0.0.1]:%d' -f %s, then ssh-keyscan -p %d 127.0.0.1 >> %s) (ssh: "
        % (ssh_vault.url, ssh_vault.port, known, ssh_vault.port, known, ssh_vault.port, known))
    with open(known, "w", encoding="ascii"):
        pass  # a known_hosts that knows nothing of the vault
    with pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg == (
        "%s: the host key of 127.0.0.1 port %d is not in %s: add it with ssh-keyscan -p %d 127.0.0.1 >> %s after "
        "checking its fingerprint with the vault's administrator (ssh: Host key verification failed.)"
        % (ssh_vault.url, ssh_vault.port, known, ssh_vault.port, known))
    os.unlink(known)
    with pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg == (
        "%s: known_hosts_file %s does not exist: add the vault's host key with ssh-keyscan -p %d 127.0.0.1 >> %s "
        "after checking its fingerprint" % (ssh_vault.url, known, ssh_vault.port, known))
    assert ssh_vault.files() == {}


def test_a_key_the_vault_does_not_know_and_a_key_others_can_read_are_refused(ssh_vault, tmp_path):  # noqa: F811
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    store = open_store(dict(ssh_vault.settings, identity_file=str(stranger)))
    with pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg == (
        "%s: the server refused this host's key: add the public key of identity_file to the account's authorized "
        "keys on the vault host, or correct identity_file or the account in the url (ssh: %s@127.0.0.1: Permission "
        "denied (publickey).)" % (ssh_vault.url, ssh_vault.account))
    os.chmod(ssh_vault.identity_file, 0o644)
    store = open_store(ssh_vault.settings)
    with pytest.raises(VaultError) as caught:
        upload(store, ssh_vault.key("daily", "app-1.json"), b"{}")
    assert caught.value.msg == (
        "%s: identity_file %s is mode 0644, owned by uid 0: a private key must be readable by its owner only "
        "(chmod 600, owned by uid 0)" % (ssh_vault.url, ssh_vault.identity_file))
    assert "Accepted publickey" not in ssh_vault.log_text()  # refused before any connection
    assert ssh_vault.files() == {}


def test_a_missing_directory_and_a_stopped_server_say_what_to_fix(ssh_vault):  # noqa: F811
    assert open_store(ssh_vault.settings).check(write=True) == {}
    elsewhere = open_store(dict(ssh_vault.settings, url=ssh_vault.url + "/nowhere"))
    with pytest.raises(VaultError) as caught:
        elsewhere.check()
    assert caught.value.msg == ("%s/nowhere: the directory /vault/nowhere does not exist on the vault: create it on "
                                "the vault host, or correct the url" % ssh_vault.url)
    store = open_store(ssh_vault.settings)
    with pytest.raises(VaultError) as caught:
        upload(store, ssh_vault.key("weekly", "app-1.json"), b"{}")
    assert caught.value.msg == (
        "%s: cannot create /%s: the directory /%s does not exist on the vault: the vault host creates each host's "
        "job directories, writable by its account" % (ssh_vault.url, ssh_vault.key("weekly", "app-1.json"),
                                                      ssh_vault.key("weekly")))
    ssh_vault.stop()
    with pytest.raises(VaultError) as caught:
        store.check()
    assert caught.value.msg == (
        "%s: nothing accepts connections on 127.0.0.1 port %d: start sshd there, or correct the url (ssh: ssh: "
        "connect to host 127.0.0.1 port %d: Connection refused)" % (ssh_vault.url, ssh_vault.port, ssh_vault.port))
    ssh_vault.start()
    assert store.check() == {}
    assert ssh_vault.files() == {}


class StopsServer(io.RawIOBase):
    """A file's bytes that stop the vault's server once `after` bytes were read."""

    def __init__(self, path, vault, after):
        super().__init__()
        self.handle = open(path, "rb")  # pylint: disable=consider-using-with
        self.vault = vault
        self.after = after
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.count >= self.after and self.vault.process is not None:
            self.vault.stop()
        count = self.handle.readinto(buffer)
        self.count += count
        return count

    def close(self):
        self.handle.close()
        super().close()


def test_a_server_that_goes_away_during_an_upload_or_a_read(ssh_vault, store, tmp_path):  # noqa: F811
    source = tmp_path / "artifact"
    data = os.urandom(16 << 20)
    source.write_bytes(data)
    key = ssh_vault.key("daily", "app-1.tar.zst.age")
    with pytest.raises(VaultError) as caught, StopsServer(source, ssh_vault, 4 << 20) as stream:
        store.upload(key, stream, len(data), hashlib.sha256(data).hexdigest())
    assert caught.value.msg.startswith(LOST % ssh_vault.url)
    assert len(ssh_vault.files()[key]) < len(data)
    assert source.read_bytes() == data
    ssh_vault.start()
    info = upload(store, ssh_vault.key("daily", "app-1~2.tar.zst.age"), data)  # the next attempt, a new name
    with pytest.raises(VaultError) as caught, store.open(info) as stream:
        assert stream.read(1 << 20) == data[:1 << 20]
        ssh_vault.stop()
        stream.read()
    assert caught.value.msg.startswith(LOST % ssh_vault.url)
    ssh_vault.start()
    partial = ObjectInfo(key, len(data), info.modified)  # as the partial's first listing would have said
    with pytest.raises(VaultError) as caught:
        read_back(store, partial)
    assert caught.value.msg == "%s: reading /%s: the file ended after %d bytes, the listing said %d: it is " \
        "shorter than when listed" % (ssh_vault.url, key, len(ssh_vault.files()[key]), len(data))
    assert read_back(store, info) == data
