# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The append-only SFTP vault (sftp://USER@HOST[:PORT]/PATH) through the system's OpenSSH client.

The transport is `ssh -s HOST sftp`, the very command the `sftp` program runs, so ssh_config, agents, ProxyJump
and known_hosts work as the operator knows them; sftpwire.py speaks SFTP version 3 over its pipes. The `sftp`
program itself cannot stream: its put refuses anything but a regular file and its get seeks in its output.
Speaking the protocol also gives an exclusive create (a name is never written twice), exact sizes and times
without parsing `ls`, pipelined writes and reads, and each request's own status.

The vault's server (OpenSSH internal-sftp, -u 0222, remove, rename and attribute changes denied) refuses a host
anything but adding files: an interrupted upload stays as a shorter file for the vault host to sweep.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import re
import stat
import struct

from .._errors import IntegrityError, UsageError, VaultError
from .._tools import find_client
from .sftpwire import (FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, OPEN_CREATE, OPEN_EXCLUSIVE, OPEN_READ, OPEN_WRITE, REMOVE,
                       WINDOW, WRITE, Download, Session, StatusError, encode_string, listable)
from .store import ObjectInfo, Store

# Set by the store, never by ssh_options: the vault's identity is always checked, nothing ever asks a question.
FORCED_OPTIONS = ("BatchMode=yes", "StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
                  "PasswordAuthentication=no", "KbdInteractiveAuthentication=no", "ForwardX11=no",
                  "ForwardAgent=no", "ClearAllForwardings=yes", "PermitLocalCommand=no", "RequestTTY=no")
FORCED_KEYS = {option.split("=", 1)[0].lower() for option in FORCED_OPTIONS} | {
    "userknownhostsfile", "identitiesonly", "identityfile", "connecttimeout", "serveraliveinterval",
    "serveralivecountmax"}
OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[^\r\n\0]+$")


def explain(stderr, vault, host, port, known_hosts):
    """The sentence for an ssh that could not connect or lost its connection, from the end of its stderr."""
    keyscan = "ssh-keyscan -p %d %s >> %s" % (port, host, known_hosts)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        sentence = ("the host key of %s port %d is not the one %s holds: the server was reinstalled, or someone "
                    "is in between; once its new fingerprint is checked with the vault's administrator, replace "
                    "the line (ssh-keygen -R '[%s]:%d' -f %s, then %s)"
                    % (host, port, known_hosts, host, port, known_hosts, keyscan))
    elif "host key is known for" in stderr or "Host key verification failed" in stderr:
        sentence = ("the host key of %s port %d is not in %s: add it with %s after checking its fingerprint with "
                    "the vault's administrator" % (host, port, known_hosts, keyscan))
    elif "Permission denied (" in stderr:
        sentence = ("the server refused this host's key: add the public key of identity_file to the account's "
                    "authorized keys on the vault host, or correct identity_file or the account in the url")
    elif "Connection refused" in stderr:
        sentence = "nothing accepts connections on %s port %d: start sshd there, or correct the url" % (host, port)
    elif "timed out" in stderr:
        sentence = ("no answer from %s port %d within connect_timeout: check the address, the firewall and that "
                    "the vault host is up" % (host, port))
    elif "Could not resolve hostname" in stderr:
        sentence = "the name %s does not resolve: correct the url, or the DNS or /etc/hosts" % host
    elif "No route to host" in stderr or "Network is unreachable" in stderr:
        sentence = "%s cannot be reached from this host (no route): check the network" % host
    elif "subsystem request failed" in stderr:
        sentence = "the server offers no sftp subsystem: configure the account with ForceCommand internal-sftp"
    else:
        sentence = "the connection was lost: the vault host or the network went away"
    last = stderr.strip().splitlines()[-1].strip() if stderr.strip() else "no message"
    return "%s: %s (ssh: %s)" % (vault, sentence, last)


class SftpStore(Store):
    """An append-only SFTP vault. Settings: url, known_hosts_file (required), identity_file, ssh_options (a list
    of extra Key=Value ssh options, e.g. ProxyJump=bastion), connect_timeout (seconds, 30)."""

    scheme = "sftp"
    versioned = False
    reusable_names = False

    def __init__(self, address, settings):
        super().__init__(address, settings)
        self.known_hosts = settings.get("known_hosts_file")
        if not self.known_hosts or not isinstance(self.known_hosts, str):
            raise UsageError("vault %s: known_hosts_file is required: the file that holds the vault's host key "
                             "(ssh-keyscan -p %d %s > FILE, after checking its fingerprint)"
                             % (self.describe(), address.port, address.host))
        self.identity = settings.get("identity_file")
        self.timeout = settings.get("connect_timeout", 30)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int) or self.timeout < 1:
            raise UsageError("vault %s: connect_timeout must be a whole number of seconds, at least 1"
                             % self.describe())
        self.ssh_options = settings.get("ssh_options") or []
        if not isinstance(self.ssh_options, list):
            raise UsageError("vault %s: ssh_options must be a list of Key=Value strings" % self.describe())
        for option in self.ssh_options:
            if not isinstance(option, str) or not OPTION_RE.match(option):
                raise UsageError("vault %s: ssh option %r is not Key=Value" % (self.describe(), option))
            if option.split("=", 1)[0].lower() in FORCED_KEYS:
                raise UsageError("vault %s: ssh option %r cannot be changed: the store sets it (host keys are "
                                 "always checked against known_hosts_file, the key is identity_file)"
                                 % (self.describe(), option))
        self._session = None

    def _path(self, key):
        return "/" + key

    def _argv(self):
        argv = [find_client(["ssh"], "openssh-client")]
        for option in FORCED_OPTIONS + ("UserKnownHostsFile=" + self.known_hosts,
                                        "ConnectTimeout=%d" % self.timeout,
                                        "ServerAliveInterval=%d" % self.timeout, "ServerAliveCountMax=3"):
            argv += ["-o", option]
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        for option in self.ssh_options:
            argv += ["-o", option]
        return argv + ["-p", str(self.address.port), "-l", self.address.user, "-s", "--", self.address.host, "sftp"]

    def _check_files(self):
        if not os.path.isfile(self.known_hosts):
            raise VaultError("%s: known_hosts_file %s does not exist: add the vault's host key with ssh-keyscan -p "
                             "%d %s >> %s after checking its fingerprint" % (
                                 self.describe(), self.known_hosts, self.address.port, self.address.host,
                                 self.known_hosts), stage="vault")
        if not self.identity:
            return
        try:
            st = os.stat(self.identity)
        except OSError as exc:
            raise VaultError("%s: identity_file %s cannot be read: %s" % (self.describe(), self.identity,
                                                                          exc.strerror), stage="vault") from None
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise VaultError("%s: identity_file %s is mode %04o, owned by uid %d: a private key must be readable by "
                             "its owner only (chmod 600, owned by uid %d)" % (
                                 self.describe(), self.identity, stat.S_IMODE(st.st_mode), st.st_uid, os.geteuid()),
                             stage="vault")

    def _lost(self, stderr, exc):
        detail = explain(stderr, self.describe(), self.address.host, self.address.port, self.known_hosts)
        if str(exc) and "ssh ended" not in str(exc) and not isinstance(exc, BrokenPipeError):
            detail += "; %s" % exc
        return VaultError(detail, stage="vault")

    @contextlib.contextmanager
    def _connected(self):
        """The store's session, made at the first use and kept; one that fails in the middle of a request is
        ended (what the server made of it is unknown), the next request connects again."""
        if self._session is None or self._session.busy:
            self._check_files()
            session = Session(self._argv(), self._lost)
            if self._session is None:
                self._session = session
        else:
            session = self._session
        session.busy = True
        try:
            yield session
        except BaseException as exc:
            session.end()
            if session is self._session:
                self._session = None
            if isinstance(exc, StatusError):
                raise VaultError("%s: the server refused a request: %s" % (self.describe(), exc.message),
                                 stage="vault") from None
            raise
        finally:
            session.busy = False
        if session is not self._session:
            session.close()

    def _refused(self, what, key, exc):
        if exc.code == FX_NO_SUCH_FILE:
            hint = ("the directory %s does not exist on the vault: the vault host creates each host's job "
                    "directories, writable by its account" % self._path(key.rsplit("/", 1)[0]))
        elif exc.code == FX_PERMISSION_DENIED:
            hint = "permission denied"
        else:
            hint = exc.message
        return VaultError("%s: cannot %s %s: %s" % (self.describe(), what, self._path(key), hint), stage="vault")

    def check(self, write=False):
        # write changes nothing: an append-only vault keeps whatever a probe would write, so writing is learnt
        # from the first upload.
        with self._connected() as session:
            attrs = session.lstat(self._path(self.address.prefix))
        if attrs is None or not attrs.is_dir:
            raise VaultError("%s: the directory %s does not exist on the vault: create it on the vault host, or "
                             "correct the url" % (self.describe(), self._path(self.address.prefix)), stage="vault")
        return {}

    def list(self, directory):
        found = []
        with self._connected() as session:
            pending = [directory]
            while pending:
                current = pending.pop()
                try:
                    handle = session.opendir(self._path(current))
                except StatusError as exc:
                    if exc.code == FX_NO_SUCH_FILE:
                        continue  # nothing there yet, or removed by the vault host meanwhile
                    raise self._refused("list", current, exc) from None
                try:
                    entries = session.readdir(handle)
                    while entries is not None:
                        for name, attrs in entries:
                            if not listable(name, attrs):
                                continue
                            key = current + "/" + name
                            if attrs.is_dir:
                                pending.append(key)
                            else:
                                found.append(ObjectInfo(key, attrs.size, attrs.modified))
                        entries = session.readdir(handle)
                except StatusError as exc:
                    raise self._refused("list", current, exc) from None
                session.close_handle(handle)
        return found

    def upload(self, key, stream, size, sha256):
        path = self._path(key)
        with self._connected() as session:
            if session.lstat(path) is not None:
                raise VaultError("%s: %s is already on the vault, and a name on an append-only vault is never "
                                 "written twice: the copy takes another name" % (self.describe(), path),
                                 stage="vault")
            try:
                # Exclusive: a name that appears meanwhile is refused by the server, never overwritten.
                handle = session.open(path, OPEN_WRITE | OPEN_CREATE | OPEN_EXCLUSIVE, 0o600)
            except StatusError as exc:
                raise self._refused("create", key, exc) from None
            digest = hashlib.sha256()
            in_flight = collections.deque()
            offset = 0
            held = b""  # the last chunk read, sent only once the whole stream is known to be right
            try:
                while True:
                    chunk = stream.read(session.write_size)
                    if not chunk:
                        break
                    digest.update(chunk)
                    if held:
                        self._write(session, handle, offset, held, in_flight)
                        offset += len(held)
                    held = chunk
                    if offset + len(held) > size:
                        break
                read = offset + len(held)
                if read != size or digest.hexdigest() != sha256:
                    # Without its last chunk the file on the vault is shorter than any copy: never counted.
                    session.end()
                    raise IntegrityError("%s changed while it was copied to %s (%s): the partial %s stays on the "
                                         "vault until the vault host sweeps it" % (
                                             key, self.describe(), "%s bytes read, %d expected" % (
                                                 read if read <= size else "more than %d" % size, size)
                                             if read != size else "its SHA-256 is not the one expected", path),
                                         stage="vault")
                if held:
                    self._write(session, handle, offset, held, in_flight)
                while in_flight:
                    session.reply(in_flight.popleft())
                session.close_handle(handle)
            except StatusError as exc:
                raise self._refused("write", key, exc) from None
            attrs = session.lstat(path)
        if attrs is None or attrs.size != size:
            raise VaultError("%s: %s holds %s bytes after its upload, %d were sent" % (
                self.describe(), path, attrs.size if attrs else "no", size), stage="vault")
        return ObjectInfo(key, size, attrs.modified, sha256=sha256)

    @staticmethod
    def _write(session, handle, offset, data, in_flight):
        in_flight.append(session.send(WRITE, encode_string(handle), struct.pack(">QI", offset, len(data)), data))
        while len(in_flight) * session.write_size > WINDOW:
            session.reply(in_flight.popleft())

    @contextlib.contextmanager
    def open(self, info):
        path = self._path(info.key)

        def failure(sentence):
            return VaultError("%s: reading %s: %s" % (self.describe(), path, sentence), stage="vault")

        with self._connected() as session:
            try:
                handle = session.open(path, OPEN_READ)
            except StatusError as exc:
                raise self._refused("read", info.key, exc) from None
            raw = Download(session, handle, info, failure)
            reader = io.BufferedReader(raw, buffer_size=session.read_size)
            try:
                yield reader
            finally:
                reader.close()

    def remove(self, info):
        with self._connected() as session:
            try:
                session.request(REMOVE, encode_string(self._path(info.key)))
            except StatusError as exc:
                if exc.code == FX_NO_SUCH_FILE:
                    return
                if exc.code == FX_PERMISSION_DENIED:
                    raise VaultError("%s: the vault refused to remove %s (permission denied): an append-only vault "
                                     "keeps what hosts write; retention and sweeping run on the vault host itself, "
                                     "over its directory" % (self.describe(), self._path(info.key)),
                                     stage="vault") from None
                raise self._refused("remove", info.key, exc) from None

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None
