# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The age file format (age-encryption.org/v1): keys, a streaming writer and a streaming reader.

Files are interoperable with the age and rage command line tools. Supported recipient types are
X25519 (``age1...`` public keys, ``AGE-SECRET-KEY-1...`` identities) and scrypt (passphrase).
The payload is encrypted in 64 KiB ChaCha20-Poly1305 chunks; the last chunk carries a flag in its
nonce, so a truncated file is detected, not silently accepted. Callers use ``from . import _age``
and the names below.

primitives.py  what the others share: the check for the cryptography package, HKDF-SHA-256, the zero nonce
bech32.py      bech32 as age uses it for keys
keys.py        X25519 identities (AGE-SECRET-KEY-1...) and recipients (age1...): parsed, derived, generated
header.py      the header (version line, stanzas, MAC) written and read, and base64 as age requires it
key.py         Key: what opens a file (identities, a passphrase, or that file's own key); a header's file key
               unwrapped apart from the file
recipients.py  the X25519 and scrypt stanzas: wrapping the file key and unwrapping it
stream.py      AgeWriter and AgeReader: the payload's nonce and its chunk cipher
"""

from __future__ import annotations

from .bech32 import bech32_decode, bech32_encode
from .header import MAGIC, is_age_file
from .key import (FILE_KEY_FORMAT, FILE_KEY_SIZE, Key, Seal, encode_file_key, file_key_of, parse_file_key,
                  read_header_bytes, read_headers, unwrap)
from .keys import generate_identity, parse_identities, parse_recipient, recipient_from_identity
from .primitives import HAS_CRYPTOGRAPHY
from .recipients import MAX_SCRYPT_LOG_N, SCRYPT_LOG_N
from .stream import CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PAYLOAD_NONCE_SIZE, TAG_SIZE, AgeReader, AgeWriter

__all__ = [
    "CHUNK_SIZE", "ENCRYPTED_CHUNK_SIZE", "FILE_KEY_SIZE", "HAS_CRYPTOGRAPHY", "MAGIC", "MAX_SCRYPT_LOG_N",
    "PAYLOAD_NONCE_SIZE", "SCRYPT_LOG_N", "TAG_SIZE", "AgeReader", "AgeWriter", "bech32_decode", "bech32_encode",
    "FILE_KEY_FORMAT", "Key", "Seal", "encode_file_key", "file_key_of", "generate_identity", "is_age_file", "parse_file_key",
    "parse_identities", "parse_recipient", "read_header_bytes", "read_headers", "recipient_from_identity", "unwrap",
]
