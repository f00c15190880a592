# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SFTP vault store without a server: directory replies parsed strictly (odd and hostile names, truncated
replies), ssh's complaints turned into sentences, and the options a vault refuses."""

from __future__ import annotations

import stat
import struct

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils._errors import UsageError
from ansible_collections.lifeboat.backup.plugins.module_utils._vault import parse_url, sftp, sftpwire

URL = "sftp://web1@vault.example:2222/backups"


def entry(name, size=None, mode=None, mtime=None, extended=()):
    flags, fields = 0, b""
    if size is not None:
        flags |= sftpwire.ATTR_SIZE
        fields += struct.pack(">Q", size)
    flags |= sftpwire.ATTR_UIDGID
    fields += struct.pack(">II", 999, 995)
    if mode is not None:
        flags |= sftpwire.ATTR_PERMISSIONS
        fields += struct.pack(">I", mode)
    if mtime is not None:
        flags |= sftpwire.ATTR_ACMODTIME
        fields += struct.pack(">II", mtime, mtime)
    if extended:
        flags |= sftpwire.ATTR_EXTENDED
        fields += struct.pack(">I", len(extended)) + b"".join(sftpwire.encode_string(k) + sftpwire.encode_string(v) for k, v in extended)
    raw = name if isinstance(name, bytes) else name.encode("utf-8")
    long_name = b"-r--r--r--    1 999      995      12 Jan  1 00:00 " + raw
    return sftpwire.encode_string(raw) + sftpwire.encode_string(long_name) + struct.pack(">I", flags) + fields


def names(*entries):
    return struct.pack(">I", len(entries)) + b"".join(entries)


FILE, DIR, LINK = stat.S_IFREG | 0o444, stat.S_IFDIR | 0o700, stat.S_IFLNK | 0o777


def test_names_and_exact_sizes_and_times_come_from_the_attributes_not_the_long_name():
    parsed = sftpwire.parse_names(names(
        entry("web1-20261204T010203Z.tar.zst.age", size=5 << 40, mode=FILE, mtime=1_796_000_123),
        entry("daily", mode=DIR, mtime=1), entry(".", mode=DIR), entry("..", mode=DIR),
        entry("x.json", size=2, mode=FILE, mtime=7, extended=[("a@b", "c")])))
    assert [(name, attrs.size, attrs.is_file, attrs.is_dir) for name, attrs in parsed] == [
        ("web1-20261204T010203Z.tar.zst.age", 5 << 40, True, False), ("daily", None, False, True),
        (".", None, False, True), ("..", None, False, True), ("x.json", 2, True, False)]
    assert parsed[0][1].modified.isoformat() == "2026-11-30T00:55:23+00:00"
    assert [name for name, attrs in parsed if sftpwire.listable(name, attrs)] == [
        "web1-20261204T010203Z.tar.zst.age", "daily", "x.json"]


@pytest.mark.parametrize("name, mode", [
    ("two words.json", FILE), ("new\nline.json", FILE), ("-r--r--r-- 1 0 0 9 Jan 1 00:00 x", FILE),
    ("\u00e9t\u00e9.json", FILE), (b"\xff\xfe.json", FILE), ("a/b", FILE), ("", FILE), ("link.json", LINK),
    ("fifo", stat.S_IFIFO | 0o600), ("nomode.json", None), ("..", DIR)])
def test_a_name_the_product_never_writes_or_an_entry_that_is_no_file_is_skipped(name, mode):
    parsed = sftpwire.parse_names(names(entry("ok.json", 1, FILE, 1), entry(name, 1, mode, 1)))
    assert [entry_name for entry_name, attrs in parsed if sftpwire.listable(entry_name, attrs)] == ["ok.json"]


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_a_truncated_or_lying_reply_ends_the_session(cut):
    reply = names(entry("a.json", 1, FILE, 1))
    with pytest.raises(sftpwire.ConnectionLost, match="the server sent a truncated reply"):
        sftpwire.parse_names(reply[:-cut])
    with pytest.raises(sftpwire.ConnectionLost, match="the server sent a truncated reply"):
        sftpwire.parse_names(struct.pack(">I", 1000) + reply[4:])  # claims more entries than it holds


KNOWN = "/etc/lifeboat/vault_known_hosts"
# What OpenSSH 9.2's ssh writes on stderr in each case.
STDERR = {
    "changed": "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION "
               "HAS CHANGED!     @\r\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\nIT IS POSSIBLE THAT "
               "SOMEONE IS DOING SOMETHING NASTY!\r\nHost key for [vault.example]:2222 has changed and you have "
               "requested strict checking.\r\nHost key verification failed.",
    "unknown": "No ED25519 host key is known for [vault.example]:2222 and you have requested strict checking.\r\n"
               "Host key verification failed.",
    "key": "web1@vault.example: Permission denied (publickey).",
    "refused": "ssh: connect to host vault.example port 2222: Connection refused",
    "timeout": "ssh: connect to host vault.example port 2222: Connection timed out",
    "dns": "ssh: Could not resolve hostname vault.example: Name or service not known",
    "route": "ssh: connect to host vault.example port 2222: No route to host",
    "subsystem": "subsystem request failed on channel 0",
    "lost": "client_loop: send disconnect: Broken pipe",
    "nothing": "",
}
SENTENCES = {
    "changed": "the host key of vault.example port 2222 is not the one %s holds: the server was reinstalled, or "
               "someone is in between; once its new fingerprint is checked with the vault's administrator, replace "
               "the line (ssh-keygen -R '[vault.example]:2222' -f %s, then ssh-keyscan -p 2222 vault.example >> %s) "
               "(ssh: Host key verification failed.)" % (KNOWN, KNOWN, KNOWN),
    "unknown": "the host key of vault.example port 2222 is not in %s: add it with ssh-keyscan -p 2222 vault.example "
               ">> %s after checking its fingerprint with the vault's administrator (ssh: Host key verification "
               "failed.)" % (KNOWN, KNOWN),
    "key": "the server refused this host's key: add the public key of identity_file to the account's authorized "
           "keys on the vault host, or correct identity_file or the account in the url (ssh: web1@vault.example: "
           "Permission denied (publickey).)",
    "refused": "nothing accepts connections on vault.example port 2222: start sshd there, or correct the url (ssh: "
               "ssh: connect to host vault.example port 2222: Connection refused)",
    "timeout": "no answer from vault.example port 2222 within connect_timeout: check the address, the firewall and "
               "that the vault host is up (ssh: ssh: connect to host vault.example port 2222: Connection timed out)",
    "dns": "the name vault.example does not resolve: correct the url, or the DNS or /etc/hosts (ssh: ssh: Could not "
           "resolve hostname vault.example: Name or service not known)",
    "route": "vault.example cannot be reached from this host (no route): check the network (ssh: ssh: connect to "
             "host vault.example port 2222: No route to host)",
    "subsystem": "the server offers no sftp subsystem: configure the account with ForceCommand internal-sftp (ssh: "
                 "subsystem request failed on channel 0)",
    "lost": "the connection was lost: the vault host or the network went away (ssh: client_loop: send disconnect: "
            "Broken pipe)",
    "nothing": "the connection was lost: the vault host or the network went away (ssh: no message)",
}


@pytest.mark.parametrize("case", sorted(STDERR))
def test_each_complaint_of_ssh_becomes_a_sentence_that_names_the_vault_and_the_fix(case):
    assert sftp.explain(STDERR[case], URL, "vault.example", 2222, KNOWN) == "%s: %s" % (URL, SENTENCES[case])


@pytest.mark.parametrize("settings, message", [
    ({}, "vault %s: known_hosts_file is required: the file that holds the vault's host key (ssh-keyscan -p 2222 "
         "vault.example > FILE, after checking its fingerprint)" % URL),
    ({"known_hosts_file": KNOWN, "connect_timeout": 0},
     "vault %s: connect_timeout must be a whole number of seconds, at least 1" % URL),
    ({"known_hosts_file": KNOWN, "connect_timeout": "30"},
     "vault %s: connect_timeout must be a whole number of seconds, at least 1" % URL),
    ({"known_hosts_file": KNOWN, "ssh_options": "ProxyJump=bastion"},
     "vault %s: ssh_options must be a list of Key=Value strings" % URL),
    ({"known_hosts_file": KNOWN, "ssh_options": ["ProxyJump bastion"]},
     "vault %s: ssh option 'ProxyJump bastion' is not Key=Value" % URL),
    ({"known_hosts_file": KNOWN, "ssh_options": ["ProxyJump=a\nStrictHostKeyChecking=no"]},
     "vault %s: ssh option 'ProxyJump=a\\nStrictHostKeyChecking=no' is not Key=Value" % URL),
    ({"known_hosts_file": KNOWN, "ssh_options": ["stricthostkeychecking=accept-new"]},
     "vault %s: ssh option 'stricthostkeychecking=accept-new' cannot be changed: the store sets it (host keys are "
     "always checked against known_hosts_file, the key is identity_file)" % URL),
    ({"known_hosts_file": KNOWN, "ssh_options": ["UserKnownHostsFile=/dev/null"]},
     "vault %s: ssh option 'UserKnownHostsFile=/dev/null' cannot be changed: the store sets it (host keys are "
     "always checked against known_hosts_file, the key is identity_file)" % URL),
])
def test_options_that_would_weaken_or_break_the_connection_are_refused(settings, message):
    with pytest.raises(UsageError) as caught:
        sftp.SftpStore(parse_url(URL), settings)
    assert caught.value.msg == message


def test_the_ssh_command_checks_the_host_key_and_never_asks():
    store = sftp.SftpStore(parse_url(URL), {"url": URL, "known_hosts_file": KNOWN,
                                            "identity_file": "/etc/lifeboat/vault_key",
                                            "ssh_options": ["ProxyJump=bastion.example"], "connect_timeout": 7})
    argv = store._argv()  # pylint: disable=protected-access
    options = [argv[index + 1] for index, value in enumerate(argv) if value == "-o"]
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=" + KNOWN,
                   "GlobalKnownHostsFile=/dev/null", "PasswordAuthentication=no", "KbdInteractiveAuthentication=no",
                   "IdentitiesOnly=yes", "ConnectTimeout=7", "ProxyJump=bastion.example"):
        assert option in options
    # ssh takes the first value of an option: the store's come before the operator's
    assert options.index("StrictHostKeyChecking=yes") < options.index("ProxyJump=bastion.example")
    assert argv[-8:] == ["-p", "2222", "-l", "web1", "-s", "--", "vault.example", "sftp"]
