# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the age format: keys, round trips, and every way a file can be refused."""

from __future__ import annotations

import array
import io
import os
import random
import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.lifeboat.backup.plugins.module_utils import _age
from ansible_collections.lifeboat.backup.plugins.module_utils._age.header import b64encode, encode_header
from ansible_collections.lifeboat.backup.plugins.module_utils._age.keys import recipient_key
from ansible_collections.lifeboat.backup.plugins.module_utils._age.recipients import _x25519_stanza
from ansible_collections.lifeboat.backup.plugins.module_utils._age.stream import _CHUNK_NONCE, _payload_cipher
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import CryptoError, UsageError

CHUNK = _age.CHUNK_SIZE
ENCRYPTED_CHUNK = _age.ENCRYPTED_CHUNK_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5]
FAST_SCRYPT = 10
PASSPHRASE = "correct horse battery staple"
# The example key pair of the age specification.
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def fixed_key(seed):
    """A key pair that is the same in every run (test ids must not change between xdist workers)."""
    identity = _age.bech32_encode("age-secret-key-", bytes([seed]) * 32).upper()
    return identity, _age.recipient_from_identity(identity)


KEYS = [fixed_key(seed) for seed in (1, 2, 3)]
IDENTITIES = [identity for identity, recipient in KEYS]
RECIPIENTS = [recipient for identity, recipient in KEYS]
IDENTITY, RECIPIENT = KEYS[0]
KEY = _age.Key(identities=[IDENTITY])


def encrypt(data, recipients=(RECIPIENT,), passphrase=None, piece=None):
    """Return the age file of data, written in pieces of `piece` bytes (all at once if None)."""
    sink = io.BytesIO()
    if passphrase is None:
        writer = _age.AgeWriter(sink, recipients=list(recipients))
    else:
        writer = _age.AgeWriter(sink, passphrase=passphrase, _scrypt_log_n=FAST_SCRYPT)
    step = piece or max(len(data), 1)
    for start in range(0, len(data), step):
        assert writer.write(data[start:start + step]) == len(data[start:start + step])
    writer.close()
    return sink.getvalue()


def decrypt(blob, identities=(IDENTITY,), passphrase=None):
    if passphrase is None:
        return _age.AgeReader(io.BytesIO(blob), _age.Key(identities=list(identities))).read()
    return _age.AgeReader(io.BytesIO(blob), _age.Key(passphrase=passphrase)).read()


def header_length(blob):
    return blob.index(b"\n", blob.index(b"\n--- ") + 1) + 1


def chunk_offset(blob, index):
    return header_length(blob) + _age.PAYLOAD_NONCE_SIZE + index * ENCRYPTED_CHUNK


def mangle(key):
    """Change the last character of a bech32 key, which breaks its checksum."""
    return key[:-1] + ("Q" if key[-1] != "Q" else "P")


def flip(blob, offset):
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1:]


def change_base64_character(blob, offset):
    """Replace a base64 character of the header by another one, keeping the header well-formed."""
    replacement = b"B" if blob[offset:offset + 1] == b"A" else b"A"
    return blob[:offset] + replacement + blob[offset + 1:]


def chunk_count(size):
    return max(1, -(-size // CHUNK))


class ShortReads:
    """A source that returns at most `limit` bytes per read, like a pipe."""

    def __init__(self, data, limit):
        self._stream = io.BytesIO(data)
        self._limit = limit

    def read(self, size=-1):
        return self._stream.read(self._limit if size < 0 else min(size, self._limit))


# --- keys and bech32 ----------------------------------------------------------------------------------------

def test_spec_example_identity_gives_spec_recipient():
    assert _age.recipient_from_identity(SPEC_IDENTITY) == SPEC_RECIPIENT


def test_generated_identity_and_recipient_match():
    identity, recipient = _age.generate_identity()
    assert re.fullmatch(r"AGE-SECRET-KEY-1[0-9A-Z]{58}", identity)
    assert re.fullmatch(r"age1[0-9a-z]{58}", recipient)
    assert _age.recipient_from_identity(identity) == recipient
    assert identity != _age.generate_identity()[0]


@given(hrp=st.sampled_from(["age", "age-secret-key-", "a", "bc"]), data=st.binary(max_size=80))
def test_bech32_round_trip(hrp, data):
    encoded = _age.bech32_encode(hrp, data)
    assert _age.bech32_decode(encoded) == (hrp, data)
    assert _age.bech32_decode(encoded.upper()) == (hrp, data)


@given(position=st.integers(min_value=4, max_value=len(SPEC_RECIPIENT) - 1), data=st.data())
def test_bech32_detects_a_changed_character(position, data):
    replacement = data.draw(st.sampled_from([c for c in "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
                                             if c != SPEC_RECIPIENT[position]]))
    mangled = SPEC_RECIPIENT[:position] + replacement + SPEC_RECIPIENT[position + 1:]
    with pytest.raises(ValueError, match="checksum"):
        _age.bech32_decode(mangled)


@pytest.mark.parametrize("text, reason", [
    ("age1ZVKYG2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", "mixed"),
    ("agezvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", "separator"),
    ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwq", "checksum"),
    ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwi", "invalid character"),
])
def test_bech32_rejects_malformed_strings(text, reason):
    with pytest.raises(ValueError, match=reason):
        _age.bech32_decode(text)


def test_parse_identities_reads_an_age_keygen_file():
    second, second_recipient = KEYS[1]
    text = ("# created: 2024-01-01T00:00:00Z\n# public key: %s\n%s\n\n  # another key\n%s\r\n"
            % (RECIPIENT, IDENTITY, second.lower()))
    assert _age.parse_identities(text) == [IDENTITY, second]
    assert _age.recipient_from_identity(_age.parse_identities(text)[1]) == second_recipient


@pytest.mark.parametrize("text, expected", [
    pytest.param("# only a comment\n\n", "no age identity found", id="comments only"),
    pytest.param("# key\n\n" + mangle(IDENTITY) + "\n", "line 3 of the identities is not a valid age identity",
                 id="bad checksum"),
    pytest.param(IDENTITY[:30], "line 1 of the identities is not a valid age identity", id="cut short"),
    pytest.param(RECIPIENT, "is a recipient (public key), not an identity", id="recipient"),
    pytest.param(_age.bech32_encode("age-plugin-yubikey-", bytes(32)).upper(), "not an X25519 age identity",
                 id="plugin identity"),
])
def test_parse_identities_errors_show_the_format_not_the_secret(text, expected):
    with pytest.raises(UsageError, match=re.escape(expected)) as caught:
        _age.parse_identities(text)
    message = str(caught.value)
    assert "AGE-SECRET-KEY-1" in message
    assert IDENTITY[16:] not in message and IDENTITY[16:-1] not in message
    # No chained exception carries the value either.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_parse_recipient_normalises_and_validates():
    assert _age.parse_recipient(" %s\n" % SPEC_RECIPIENT.upper()) == SPEC_RECIPIENT
    with pytest.raises(UsageError, match=r"'age1zz'.*'age1' followed by 58 lowercase"):
        _age.parse_recipient("age1zz")
    with pytest.raises(UsageError, match="not an X25519 age recipient"):
        _age.parse_recipient(_age.bech32_encode("age1pq", bytes(32)))
    with pytest.raises(UsageError, match="must be a string"):
        _age.parse_recipient(None)


def test_parse_recipient_refuses_a_secret_key_without_showing_it():
    with pytest.raises(UsageError, match="secret key .* was given where a recipient is expected") as caught:
        _age.parse_recipient(IDENTITY)
    assert IDENTITY[16:] not in str(caught.value)


def test_is_age_file():
    assert _age.is_age_file(encrypt(b"x")[:64])
    assert _age.is_age_file(memoryview(_age.MAGIC))
    assert not _age.is_age_file(_age.MAGIC[:-1])
    assert not _age.is_age_file(b"age-encryption.org/v2\n")
    assert not _age.is_age_file(b"\x28\xb5\x2f\xfd")


# --- round trips --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_round_trip_one_recipient(size):
    data = os.urandom(size)
    blob = encrypt(data)
    assert decrypt(blob) == data
    # A full last chunk is the final chunk: no empty chunk is appended after it.
    assert len(blob) == header_length(blob) + 16 + size + 16 * chunk_count(size)


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_several_recipients(size):
    data = os.urandom(size)
    blob = encrypt(data, recipients=RECIPIENTS, piece=7777)
    assert blob.count(b"\n-> X25519 ") == len(KEYS)
    for identity in IDENTITIES:
        assert decrypt(blob, identities=[identity]) == data
    assert decrypt(blob, identities=[_age.generate_identity()[0], KEYS[2][0]]) == data


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_passphrase(size):
    data = os.urandom(size)
    blob = encrypt(data, passphrase=PASSPHRASE, piece=CHUNK)
    assert re.match(rb"age-encryption\.org/v1\n-> scrypt \S{22} 10\n\S{43}\n--- ", blob)
    assert decrypt(blob, passphrase=PASSPHRASE) == data
    assert decrypt(blob, passphrase=PASSPHRASE.encode()) == data


def test_default_scrypt_work_factor_is_the_age_cli_one():
    sink = io.BytesIO()
    _age.AgeWriter(sink, passphrase=PASSPHRASE).close()
    assert re.match(rb"age-encryption\.org/v1\n-> scrypt \S{22} 18\n", sink.getvalue())


@settings(max_examples=30, deadline=None)
@given(size=st.integers(min_value=0, max_value=3 * CHUNK + 100), write_piece=st.integers(1, 2 * CHUNK + 3),
       read_piece=st.integers(1, 2 * CHUNK + 3), source_limit=st.integers(1, 2 * ENCRYPTED_CHUNK))
def test_round_trip_with_any_write_read_and_source_sizes(size, write_piece, read_piece, source_limit):
    data = random.Random(size).randbytes(size)
    blob = encrypt(data, piece=write_piece)
    reader = _age.AgeReader(ShortReads(blob, source_limit), KEY)
    parts = iter(lambda: reader.read(read_piece), b"")
    assert b"".join(parts) == data


@pytest.mark.parametrize("size", [0, 100, CHUNK, 2 * CHUNK + 7])
def test_readinto_fills_the_buffer_until_the_end(size):
    data = os.urandom(size)
    reader = _age.AgeReader(io.BytesIO(encrypt(data)), KEY)
    assert reader.readable() and not reader.seekable()
    buffer = bytearray(CHUNK + 1000)
    received = b""
    while True:
        count = reader.readinto(buffer)
        if not count:
            break
        assert count == len(buffer) or len(received) + count == size
        received += bytes(buffer[:count])
    assert received == data


def test_reader_works_under_a_buffered_reader():
    data = os.urandom(2 * CHUNK + 3)
    buffered = io.BufferedReader(_age.AgeReader(io.BytesIO(encrypt(data)), KEY))
    assert buffered.read(5) + buffered.read() == data


def test_writer_accepts_any_buffer():
    words = array.array("I", range(40000))
    sink = io.BytesIO()
    writer = _age.AgeWriter(sink, recipients=[RECIPIENT])
    assert writer.write(words) == len(words) * words.itemsize
    assert writer.write(bytearray(b"tail")) == 4
    writer.close()
    assert decrypt(sink.getvalue()) == words.tobytes() + b"tail"


def test_writer_copies_to_bytes_for_cryptography_releases_that_need_it():
    data = os.urandom(2 * CHUNK + 11)
    sink = io.BytesIO()
    writer = _age.AgeWriter(sink, recipients=[RECIPIENT])
    writer._needs_bytes = True  # what older releases (bytes-only AEAD input) get
    writer.write(memoryview(data)[:CHUNK + 5])
    writer.write(bytearray(data[CHUNK + 5:]))
    writer.close()
    assert decrypt(sink.getvalue()) == data


def test_reader_accepts_identity_file_text():
    text = "# created: now\n# public key: %s\n%s\n" % (RECIPIENT, IDENTITY)
    assert decrypt(encrypt(b"data"), identities=[text]) == b"data"


# --- writer usage -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, expected", [
    ({}, "give either recipients or a passphrase"),
    ({"recipients": [RECIPIENT], "passphrase": "x"}, "give either recipients or a passphrase"),
    ({"recipients": []}, "recipients must be a non-empty list"),
    ({"recipients": RECIPIENT}, "recipients must be a non-empty list"),
    ({"recipients": ["age1nope"]}, "invalid age recipient 'age1nope'"),
    ({"passphrase": ""}, "passphrase must be a non-empty string"),
])
def test_writer_usage_errors(kwargs, expected):
    sink = io.BytesIO()
    with pytest.raises(UsageError, match=re.escape(expected)):
        _age.AgeWriter(sink, **kwargs)
    assert sink.getvalue() == b""


def test_writer_close_is_idempotent_and_leaves_the_sink_open():
    sink = io.BytesIO()
    writer = _age.AgeWriter(sink, recipients=[RECIPIENT])
    writer.write(b"abc")
    writer.close()
    writer.close()
    assert not sink.closed
    assert decrypt(sink.getvalue()) == b"abc"
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_writer_context_manager_does_not_finish_a_file_after_an_exception():
    sink = io.BytesIO()
    with pytest.raises(RuntimeError):
        with _age.AgeWriter(sink, recipients=[RECIPIENT]) as writer:
            writer.write(os.urandom(3 * CHUNK))
            raise RuntimeError("source failed")
    with pytest.raises(CryptoError, match=re.escape("file is truncated (the final chunk is missing)")):
        decrypt(sink.getvalue())


# --- keys that do not fit -----------------------------------------------------------------------------------

def test_wrong_identity_fails_on_construction():
    with pytest.raises(CryptoError, match="^no identity matches any recipient of this file$"):
        _age.AgeReader(io.BytesIO(encrypt(b"secret")), _age.Key(identities=[KEYS[1][0]]))


def test_wrong_passphrase():
    with pytest.raises(CryptoError, match="^wrong passphrase$"):
        decrypt(encrypt(b"secret", passphrase=PASSPHRASE), passphrase=PASSPHRASE + "!")


def test_passphrase_given_for_a_recipient_file_and_the_reverse():
    with pytest.raises(CryptoError, match="encrypted to recipients .*give an identity"):
        decrypt(encrypt(b"x"), passphrase=PASSPHRASE)
    with pytest.raises(CryptoError, match="encrypted with a passphrase.*give the passphrase"):
        decrypt(encrypt(b"x", passphrase=PASSPHRASE))


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "give either identity or passphrase, exactly one of them"),
    ({"identities": [IDENTITY], "passphrase": "x"}, "give either identity or passphrase, exactly one of them"),
    ({"identities": []}, "give either identity or passphrase, exactly one of them"),
    ({"identities": ["AGE-SECRET-KEY-1NOPE"]}, "not a valid age identity"),
])
def test_key_usage_errors(kwargs, expected):
    with pytest.raises(UsageError, match=re.escape(expected)):
        _age.Key(**kwargs)


# --- damaged headers ----------------------------------------------------------------------------------------

def test_flipped_byte_in_the_header_mac():
    blob = encrypt(b"payload")
    with pytest.raises(CryptoError, match=re.escape("header is corrupted (MAC mismatch)")):
        decrypt(change_base64_character(blob, blob.index(b"\n--- ") + 15))


def test_flipped_byte_in_the_wrapped_file_key():
    blob = encrypt(b"payload")
    body_start = blob.index(b"\n", len(_age.MAGIC)) + 1
    with pytest.raises(CryptoError, match="^no identity matches any recipient of this file$"):
        decrypt(change_base64_character(blob, body_start + 5))


def test_inserted_stanza_breaks_the_mac():
    blob = encrypt(b"payload")
    tampered = blob.replace(b"\n--- ", b"\n-> unknown-type arg\nAAAA\n--- ", 1)
    with pytest.raises(CryptoError, match=re.escape("header is corrupted (MAC mismatch)")):
        decrypt(tampered)


def test_file_key_that_does_not_match_the_mac():
    stanza = _x25519_stanza(os.urandom(16), recipient_key(RECIPIENT))
    blob = encode_header(os.urandom(16), [stanza]) + os.urandom(16 + 32)
    with pytest.raises(CryptoError, match=re.escape("header is corrupted (MAC mismatch)")):
        decrypt(blob)


def test_scrypt_work_factor_above_the_limit_is_refused():
    blob = encrypt(b"x", passphrase=PASSPHRASE).replace(b" 10\n", b" 23\n", 1)
    with pytest.raises(CryptoError, match=r"work factor 2\^23 exceeds the limit of 2\^22"):
        decrypt(blob, passphrase=PASSPHRASE)
    with pytest.raises(CryptoError, match=r"work factor 2\^123456 exceeds"):
        decrypt(blob.replace(b" 23\n", b" 123456\n", 1), passphrase=PASSPHRASE)


def test_scrypt_stanza_must_be_alone():
    blob = encrypt(b"x", passphrase=PASSPHRASE)
    stanza = _x25519_stanza(os.urandom(16), recipient_key(RECIPIENT))
    blob = blob.replace(b"\n--- ", b"\n" + stanza + b"--- ", 1)
    with pytest.raises(CryptoError, match="passphrase stanza must be the only stanza"):
        decrypt(blob, passphrase=PASSPHRASE)


MALFORMED_HEADERS = [
    (b"", "not an age file"),
    (b"PK\x03\x04" + bytes(range(100)), "not an age file"),
    (b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n", "ASCII-armored"),
    (b"age-encryption.org/v2\n-> X25519 x\n", "unsupported age format version"),
    (_age.MAGIC + b"-> X25519", "file is truncated (the header is incomplete)"),
    (_age.MAGIC + b"--- " + b"A" * 43 + b"\n", "no recipient stanza"),
    (_age.MAGIC + b"garbage\n", "expected a '-> ' stanza"),
    (_age.MAGIC + b"-> X25519  double-space\n", "expected a '-> ' stanza"),
    (_age.MAGIC + b"-> X25519 a\n" + b"A" * 65 + b"\n", "stanza body line"),
    (_age.MAGIC + b"-> X25519 a\nAAA=\n", "stanza body line"),
    (_age.MAGIC + b"-> X25519 a\nAAB\n--- " + b"A" * 43 + b"\n", "not canonical base64"),
    (_age.MAGIC + b"-> X25519 " + b"x" * 70000, "longer than"),
]


@pytest.mark.parametrize("blob, expected", MALFORMED_HEADERS, ids=[expected for blob, expected in MALFORMED_HEADERS])
def test_malformed_headers(blob, expected):
    with pytest.raises(CryptoError, match=re.escape(expected)):
        decrypt(blob)


def test_low_order_ephemeral_share_is_refused():
    blob = encrypt(b"x")
    share = blob.split(b"\n")[1].split(b" ")[2]
    with pytest.raises(CryptoError, match="low-order"):
        decrypt(blob.replace(share, b64encode(bytes(32)), 1))


# --- damaged payloads ---------------------------------------------------------------------------------------

def test_flipped_byte_in_a_middle_chunk_fails_after_the_good_chunks():
    data = os.urandom(3 * CHUNK + 5)
    blob = encrypt(data)
    blob = flip(blob, chunk_offset(blob, 1) + 1000)
    reader = _age.AgeReader(io.BytesIO(blob), KEY)
    assert reader.read(CHUNK) == data[:CHUNK]
    with pytest.raises(CryptoError, match=re.escape(
            "chunk 2 of the payload failed authentication (corrupted or tampered); "
            "its plaintext starts at byte 65536")):
        reader.read(1)


@pytest.mark.parametrize("size", [1, CHUNK, 3 * CHUNK + 5])
def test_flipped_byte_in_the_last_chunk(size):
    blob = encrypt(os.urandom(size))
    last = chunk_count(size)
    with pytest.raises(CryptoError, match=r"^chunk %d of the payload failed authentication" % last):
        decrypt(flip(blob, len(blob) - 3))


def test_flipped_payload_nonce():
    blob = encrypt(b"data")
    with pytest.raises(CryptoError, match="chunk 1 of the payload failed authentication"):
        decrypt(flip(blob, header_length(blob)))


def test_cut_in_the_middle_of_a_chunk():
    blob = encrypt(os.urandom(3 * CHUNK + 5))
    cut = blob[:chunk_offset(blob, 1) + 5000]
    expected = "chunk 2 of the payload failed authentication (corrupted or tampered, or the file was cut short"
    with pytest.raises(CryptoError, match=re.escape(expected)):
        decrypt(cut)


@pytest.mark.parametrize("chunks_kept", [1, 2, 3])
def test_cut_at_a_chunk_boundary(chunks_kept):
    blob = encrypt(os.urandom(3 * CHUNK + 5))
    with pytest.raises(CryptoError, match=re.escape("file is truncated (the final chunk is missing)")):
        decrypt(blob[:chunk_offset(blob, chunks_kept)])


@pytest.mark.parametrize("cut, expected", [
    (0, "file is truncated (the payload nonce is missing)"),
    (7, "file is truncated (the payload nonce is missing)"),
    (16, "file is truncated (the final chunk is missing)"),
    (16 + 9, "file is truncated (chunk 1 of the payload is cut short)"),
])
def test_cut_right_after_the_header(cut, expected):
    blob = encrypt(b"some data")
    with pytest.raises(CryptoError, match=re.escape(expected)):
        decrypt(blob[:header_length(blob) + cut])


@pytest.mark.parametrize("size", [CHUNK, 2 * CHUNK])
@pytest.mark.parametrize("extra", [b"\n", b"\xff" * (ENCRYPTED_CHUNK + 10)], ids=["newline", "chunk"])
def test_trailing_data_after_a_full_final_chunk(size, extra):
    data = os.urandom(size)
    reader = _age.AgeReader(io.BytesIO(encrypt(data) + extra), KEY)
    assert reader.read(size - CHUNK) == data[:size - CHUNK]
    with pytest.raises(CryptoError, match="^trailing data after the final chunk$"):
        reader.read()


def test_trailing_data_after_a_short_final_chunk_fails_authentication():
    with pytest.raises(CryptoError, match="chunk 1 of the payload failed authentication"):
        decrypt(encrypt(b"short") + b"junk")


def test_empty_final_chunk_after_a_full_one_is_refused():
    file_key, nonce = os.urandom(16), os.urandom(16)
    stanza = _x25519_stanza(file_key, recipient_key(RECIPIENT))
    cipher = _payload_cipher(file_key, nonce)
    payload = (cipher.encrypt(_CHUNK_NONCE.pack(0, False), bytes(CHUNK), None)
               + cipher.encrypt(_CHUNK_NONCE.pack(1, True), b"", None))
    blob = encode_header(file_key, [stanza]) + nonce + payload
    with pytest.raises(CryptoError, match="final chunk is empty"):
        decrypt(blob)


def test_read_after_close_is_refused():
    reader = _age.AgeReader(io.BytesIO(encrypt(b"data")), KEY)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read()


# --- secrets stay out of messages ---------------------------------------------------------------------------

def failure_messages():
    """Messages of failures that had the identity or the passphrase in hand."""
    attempts = [
        lambda: _age.parse_identities("x\n" + IDENTITY[:-2]),
        lambda: _age.parse_identities(mangle(IDENTITY)),
        lambda: _age.parse_recipient(IDENTITY),
        lambda: _age.parse_recipient(IDENTITY.lower()),
        lambda: _age.recipient_from_identity(IDENTITY + "X"),
        lambda: _age.AgeWriter(io.BytesIO(), recipients=[IDENTITY]),
        lambda: decrypt(encrypt(b"x", recipients=[KEYS[1][1]])),
        lambda: decrypt(encrypt(b"x", passphrase=PASSPHRASE), passphrase=PASSPHRASE[::-1]),
        lambda: decrypt(encrypt(b"x") + b"tail"),
    ]
    messages = []
    for attempt in attempts:
        with pytest.raises((UsageError, CryptoError)) as caught:
            attempt()
        messages.append(str(caught.value))
    return messages


def test_secret_keys_and_passphrases_never_appear_in_messages():
    secrets = [IDENTITY[16:30], IDENTITY[16:30].lower(), PASSPHRASE, PASSPHRASE[::-1]]
    for message in failure_messages():
        assert not any(secret in message for secret in secrets), message
