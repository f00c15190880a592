# -*- coding: utf-8 -*-
"""One file's key: unwrapped from the header alone, it opens that file and no other."""

from __future__ import annotations

import io

import pytest

from ansible_collections.lifeboat.backup.plugins.module_utils import _age
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import CryptoError, UsageError, WrongKeyError

# Fixed keys: test ids built from them must be the same in every pytest-xdist worker.
IDENTITY = _age.bech32_encode("age-secret-key-", bytes(range(1, 33))).upper()
RECIPIENT = _age.recipient_from_identity(IDENTITY)
KEY = _age.Key(identities=[IDENTITY])


def _encrypted(data, **options):
    sink = io.BytesIO()
    writer = _age.AgeWriter(sink, **options)
    writer.write(data)
    writer.close()
    return sink.getvalue(), writer.file_key


def test_the_header_alone_gives_the_file_key_that_opens_the_file():
    other, _other_recipient = _age.generate_identity()
    blob, written_key = _encrypted(b"payload" * 5000, recipients=[_age.recipient_from_identity(other), RECIPIENT])
    header = _age.read_header_bytes(io.BytesIO(blob))
    assert blob.startswith(header) and header.endswith(b"\n") and len(header) < 400
    file_key = _age.unwrap(header, KEY)
    assert file_key == written_key and len(file_key) == _age.FILE_KEY_SIZE
    text = _age.encode_file_key(file_key)
    assert text.startswith("LIFEBOAT-FILE-KEY-1") and _age.parse_file_key(" %s\n" % text.lower()) == file_key
    for given in (file_key, text):
        assert _age.AgeReader(io.BytesIO(blob), _age.Key(file_key=given)).read() == b"payload" * 5000
    assert repr(_age.Key(file_key=file_key)) == "Key(file key)"


def test_a_passphrase_file_key_is_unwrapped_the_same_way():
    blob, written_key = _encrypted(b"secret", passphrase="correct horse", _scrypt_log_n=10)
    header = _age.read_header_bytes(io.BytesIO(blob))
    assert _age.unwrap(header, _age.Key(passphrase="correct horse")) == written_key
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        _age.unwrap(header, _age.Key(passphrase="wrong"))


def test_the_file_key_of_one_artifact_does_not_open_another():
    first, first_key = _encrypted(b"A" * 100, recipients=[RECIPIENT])
    second, _second_key = _encrypted(b"B" * 100, recipients=[RECIPIENT])
    with pytest.raises(WrongKeyError) as refused:
        _age.AgeReader(io.BytesIO(second), _age.Key(file_key=first_key))
    assert "does not open this file: it is the key of another artifact" in str(refused.value)
    assert _age.AgeReader(io.BytesIO(first), _age.Key(file_key=first_key)).read() == b"A" * 100


def test_a_header_with_a_changed_stanza_is_refused_with_the_file_key():
    blob, file_key = _encrypted(b"data", recipients=[RECIPIENT])
    header = _age.read_header_bytes(io.BytesIO(blob))
    changed = blob.replace(b"X25519 ", b"X25519 A", 1)[:len(header) + 1]  # one more byte in the share
    with pytest.raises(CryptoError):
        _age.AgeReader(io.BytesIO(changed + blob[len(header):]), _age.Key(file_key=file_key))


@pytest.mark.parametrize("text, expected", [
    ("LIFEBOAT-FILE-KEY-1QQQQ", "the file key is not valid"),
    (IDENTITY, "an identity was given where a file key is expected"),
    (RECIPIENT, "this is not a file key"),
    ("", "give exactly one of identity, passphrase or file key"),
])
def test_a_malformed_file_key_is_refused_without_showing_it(text, expected):
    with pytest.raises(UsageError) as refused:
        _age.Key(file_key=text)
    assert expected in str(refused.value)
    assert IDENTITY not in str(refused.value)


def test_unwrapping_refuses_a_file_key_and_trailing_bytes():
    blob, file_key = _encrypted(b"data", recipients=[RECIPIENT])
    header = _age.read_header_bytes(io.BytesIO(blob))
    with pytest.raises(UsageError, match="needs the identity or the passphrase"):
        _age.unwrap(header, _age.Key(file_key=file_key))
    with pytest.raises(CryptoError, match="bytes after its MAC line"):
        _age.unwrap(header + b"x", KEY)


def test_several_file_keys_each_open_their_own_file_and_nothing_else():
    first, first_key = _encrypted(b"A" * 100, recipients=[RECIPIENT])
    second, second_key = _encrypted(b"B" * 100, recipients=[RECIPIENT])
    third, _third_key = _encrypted(b"C" * 100, recipients=[RECIPIENT])
    both = _age.Key(file_key=" %s\n%s " % (_age.encode_file_key(first_key), _age.encode_file_key(second_key)))
    assert _age.AgeReader(io.BytesIO(first), both).read() == b"A" * 100
    assert _age.AgeReader(io.BytesIO(second), both).read() == b"B" * 100
    with pytest.raises(WrongKeyError, match="none of the 2 file keys given opens this file"):
        _age.AgeReader(io.BytesIO(third), both)
    with pytest.raises(UsageError, match="an identity was given where a file key is expected"):
        _age.Key(file_key="%s %s" % (_age.encode_file_key(first_key), IDENTITY))


def test_the_headers_of_a_chain_are_read_one_after_the_other_and_an_artifact_gives_one():
    blobs = [_encrypted(bytes([65 + number]) * 100, recipients=[RECIPIENT]) for number in range(3)]
    headers = [_age.read_header_bytes(io.BytesIO(blob)) for blob, _key in blobs]
    assert _age.read_headers(io.BytesIO(b"".join(headers))) == headers
    assert _age.read_headers(io.BytesIO(blobs[0][0])) == headers[:1]  # the payload after it is no header
    assert [_age.unwrap(header, KEY) for header in headers] == [key for _blob, key in blobs]
