# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interoperability of the age format with the real age and age-keygen command line tools."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _age
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import CryptoError

pytestmark = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("age-keygen") is None,
    reason="the age and age-keygen command line tools are not installed (Debian: apt install age)")

CHUNK = _age.CHUNK_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5]
PASSPHRASE = "tr0ub4dor & 3 -- correct horse"
PROMPT = re.compile(rb"(?:Enter|Confirm) passphrase[^\n]*: ")


def run_on_terminal(argv, passphrase, stdout_path=None, timeout=120):
    """Run argv with a pseudo-terminal as its controlling terminal, answering every passphrase prompt.

    The age CLI reads passphrases only from /dev/tty, so a pipe on stdin cannot answer it.
    stdout goes to stdout_path if given (age -o creates no file for an empty plaintext).
    Return (exit code, everything the command wrote to the terminal).
    """
    pid, terminal = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes the command
        if stdout_path is not None:
            os.dup2(os.open(str(stdout_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
        os.execvp(argv[0], argv)
    transcript = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            readable = select.select([terminal], [], [], max(0.0, deadline - time.monotonic()))[0]
            if not readable:
                os.kill(pid, 9)
                raise AssertionError("%s timed out; terminal output: %r" % (argv, transcript))
            try:
                output = os.read(terminal, 4096)
            except OSError:  # the child closed the terminal (EIO on Linux)
                break
            if not output:
                break
            transcript += output
            while len(PROMPT.findall(transcript)) > answered:
                os.write(terminal, passphrase.encode() + b"\n")
                answered += 1
    finally:
        os.close(terminal)
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), transcript


def payload(size):
    return os.urandom(size)


@pytest.fixture(name="keyfile")
def fixture_keyfile(tmp_path):
    """An identity file written by age-keygen, and the public key it reported."""
    path = tmp_path / "key.txt"
    result = subprocess.run(["age-keygen", "-o", str(path)], capture_output=True, text=True, check=True)
    recipient = re.search(r"Public key: (age1\w+)", result.stderr).group(1)
    return path, recipient


def encrypt_with_us(data, **kwargs):
    sink = io.BytesIO()
    with _age.AgeWriter(sink, **kwargs) as writer:
        writer.write(data)
    return sink.getvalue()


def decrypt_with_us(path, **kwargs):
    with open(path, "rb") as source:
        return _age.AgeReader(source, _age.Key(**kwargs)).read()


def test_age_keygen_identity_parses_and_gives_the_same_recipient(keyfile):
    path, recipient = keyfile
    identities = _age.parse_identities(path.read_text())
    assert len(identities) == 1
    assert _age.recipient_from_identity(identities[0]) == recipient
    printed = subprocess.run(["age-keygen", "-y", str(path)], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == recipient


def test_age_keygen_derives_our_recipient_from_our_identity(tmp_path):
    identity, recipient = _age.generate_identity()
    path = tmp_path / "ours.txt"
    path.write_text("# public key: %s\n%s\n" % (recipient, identity))
    printed = subprocess.run(["age-keygen", "-y", str(path)], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == recipient


@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_what_we_encrypt(tmp_path, keyfile, size):
    path, recipient = keyfile
    data = payload(size)
    other_recipient = _age.generate_identity()[1]
    encrypted = tmp_path / "ours.age"
    encrypted.write_bytes(encrypt_with_us(data, recipients=[other_recipient, recipient]))
    result = subprocess.run(["age", "-d", "-i", str(path), str(encrypted)], capture_output=True, check=True)
    assert result.stdout == data


class _OutOfOrderFile(io.BytesIO):
    """A file where skip() leaves a gap to fill later, as the archive's artifact file does."""

    def skip(self, count):
        self.seek(count, io.SEEK_CUR)


@pytest.mark.parametrize("reserved,after", [
    (1, 1), (1, CHUNK - 1), (1, CHUNK), (CHUNK - 1, 1), (CHUNK - 1, 2), (CHUNK, 1), (CHUNK, CHUNK), (CHUNK + 1, 5),
    (2 * CHUNK, 3 * CHUNK + 5), (2 * CHUNK + 7, 3 * CHUNK - 7), (3 * CHUNK - 1, CHUNK + 1)])
def test_age_decrypts_a_payload_whose_start_was_sealed_last(tmp_path, keyfile, reserved, after):
    """reserve() then seal_reserved(): the room may end inside a chunk, and the data after it may end there too."""
    path, recipient = keyfile
    head, tail = payload(reserved), payload(after)
    sink = _OutOfOrderFile()
    writer = _age.AgeWriter(sink, recipients=[recipient])
    start = sink.tell()
    sink.skip(writer.reserve(reserved))
    writer.write(tail)
    writer.close()
    sink.seek(start)
    sink.write(writer.seal_reserved(head))
    encrypted = tmp_path / "ours.age"
    encrypted.write_bytes(sink.getvalue())
    result = subprocess.run(["age", "-d", "-i", str(path), str(encrypted)], capture_output=True, check=True)
    assert result.stdout == head + tail
    assert decrypt_with_us(encrypted, identities=_age.parse_identities(path.read_text())) == head + tail


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_what_age_encrypts(tmp_path, keyfile, size):
    path, recipient = keyfile
    data = payload(size)
    other_identity, other_recipient = _age.generate_identity()
    plain, encrypted = tmp_path / "plain", tmp_path / "theirs.age"
    plain.write_bytes(data)
    subprocess.run(["age", "-r", other_recipient, "-r", recipient, "-o", str(encrypted), str(plain)], check=True)
    assert decrypt_with_us(encrypted, identities=[path.read_text()]) == data
    assert decrypt_with_us(encrypted, identities=[other_identity]) == data
    with pytest.raises(CryptoError, match="no identity matches any recipient of this file"):
        decrypt_with_us(encrypted, identities=[_age.generate_identity()[0]])


@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_our_passphrase_files(tmp_path, size):
    data = payload(size)
    encrypted, decrypted = tmp_path / "ours.age", tmp_path / "plain"
    # A low work factor keeps the test fast; age accepts any up to its own limit.
    encrypted.write_bytes(encrypt_with_us(data, passphrase=PASSPHRASE, _scrypt_log_n=12))
    code, transcript = run_on_terminal(["age", "-d", str(encrypted)], PASSPHRASE, stdout_path=decrypted)
    assert code == 0, transcript
    assert decrypted.read_bytes() == data


@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_age_passphrase_files(tmp_path, size):
    data = payload(size)
    plain, encrypted = tmp_path / "plain", tmp_path / "theirs.age"
    plain.write_bytes(data)
    code, transcript = run_on_terminal(["age", "-p", "-o", str(encrypted), str(plain)], PASSPHRASE)
    assert code == 0, transcript
    assert re.match(rb"age-encryption\.org/v1\n-> scrypt \S+ 18\n", encrypted.read_bytes())
    assert decrypt_with_us(encrypted, passphrase=PASSPHRASE) == data


def test_age_refuses_a_wrong_passphrase_for_our_file_and_we_for_its_file(tmp_path):
    ours, theirs, plain = tmp_path / "ours.age", tmp_path / "theirs.age", tmp_path / "plain"
    plain.write_bytes(b"data")
    ours.write_bytes(encrypt_with_us(b"data", passphrase=PASSPHRASE, _scrypt_log_n=12))
    code, transcript = run_on_terminal(["age", "-d", "-o", str(tmp_path / "out"), str(ours)], "not it")
    assert code != 0 and b"incorrect passphrase" in transcript
    code, transcript = run_on_terminal(["age", "-p", "-o", str(theirs), str(plain)], PASSPHRASE)
    assert code == 0, transcript
    with pytest.raises(CryptoError, match="^wrong passphrase$"):
        decrypt_with_us(theirs, passphrase="not it")


def test_age_detects_our_truncated_file(tmp_path, keyfile):
    path, recipient = keyfile
    blob = encrypt_with_us(payload(2 * CHUNK), recipients=[recipient])
    encrypted = tmp_path / "cut.age"
    encrypted.write_bytes(blob[:-CHUNK - 16])
    result = subprocess.run(["age", "-d", "-i", str(path), str(encrypted)], capture_output=True, check=False)
    assert result.returncode != 0


def test_armored_age_output_is_refused_with_a_hint(tmp_path, keyfile):
    path, recipient = keyfile
    plain, encrypted = tmp_path / "plain", tmp_path / "armored.age"
    plain.write_bytes(b"data")
    subprocess.run(["age", "-a", "-r", recipient, "-o", str(encrypted), str(plain)], check=True)
    with pytest.raises(CryptoError, match="ASCII-armored"):
        decrypt_with_us(encrypted, identities=[path.read_text()])
