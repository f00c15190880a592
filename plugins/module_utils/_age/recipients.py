# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""age recipient stanzas: X25519 (public keys) and scrypt (passphrase) wrap the file key, and unwrap it."""

from __future__ import annotations

import os
import re

from .._errors import CryptoError, UsageError, WrongKeyError
from .header import b64decode, b64encode, encode_stanza
from .keys import (IDENTITY_FORMAT, RECIPIENT_FORMAT, encode_recipient, identity_key, parse_identities, public_bytes,
                   recipient_key)
from .primitives import ZERO_NONCE, hkdf

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # pragma: no cover - require_cryptography() reports it before any use
    pass

SCRYPT_LOG_N = 18  # what the age CLI uses: about a second of work
MAX_SCRYPT_LOG_N = 22  # 2^22 * 1 KiB = 4 GiB of memory; beyond that a file is a denial of service

_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_WORK_FACTOR = re.compile(rb"[1-9][0-9]*\Z")


def _scrypt_key(passphrase, salt, log_n):
    return Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1).derive(passphrase)


def _passphrase_bytes(passphrase):
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes) or not passphrase:
        raise UsageError("the passphrase must be a non-empty string")
    return passphrase


def _check_one_key_source(keys, passphrase, keys_name):
    if (keys is None) == (passphrase is None):
        raise UsageError("give either %s or a passphrase, exactly one of them" % keys_name)


# --- wrapping -----------------------------------------------------------------------------------------------

def _x25519_stanza(file_key, public_key):
    ephemeral = X25519PrivateKey.generate()
    share = public_bytes(ephemeral)
    try:
        shared_secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        raise UsageError("the recipient %s is not a usable X25519 public key (low-order point)"
                         % encode_recipient(public_key)) from None
    wrap_key = hkdf(shared_secret, share + public_key, _X25519_INFO)
    return encode_stanza([b"X25519", b64encode(share)], ChaCha20Poly1305(wrap_key).encrypt(ZERO_NONCE, file_key, None))


def _scrypt_stanza(file_key, passphrase, log_n):
    salt = os.urandom(16)
    wrap_key = _scrypt_key(passphrase, salt, log_n)
    body = ChaCha20Poly1305(wrap_key).encrypt(ZERO_NONCE, file_key, None)
    return encode_stanza([b"scrypt", b64encode(salt), str(log_n).encode("ascii")], body)


def recipient_stanzas(file_key, recipients, passphrase, scrypt_log_n):
    _check_one_key_source(recipients, passphrase, "recipients")
    if passphrase is not None:
        return [_scrypt_stanza(file_key, _passphrase_bytes(passphrase), scrypt_log_n)]
    if isinstance(recipients, str) or not recipients:
        raise UsageError("recipients must be a non-empty list; %s" % RECIPIENT_FORMAT)
    return [_x25519_stanza(file_key, recipient_key(recipient)) for recipient in recipients]


# --- unwrapping ---------------------------------------------------------------------------------------------

def _x25519_keys(identities):
    """Return [(private key, public bytes)] for a list of identities (each a key or an identity file's text)."""
    if isinstance(identities, str):
        identities = [identities]
    keys = []
    for text in identities:
        for identity in parse_identities(text):
            private_key = X25519PrivateKey.from_private_bytes(identity_key(identity))
            keys.append((private_key, public_bytes(private_key)))
    if not keys:
        raise UsageError("no identity given to decrypt with; %s" % IDENTITY_FORMAT)
    return keys


def _x25519_shared_secret(private_key, share):
    try:
        shared_secret = private_key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:
        shared_secret = bytes(32)
    if not any(shared_secret):
        raise CryptoError("header is corrupted (an X25519 stanza has a low-order ephemeral share)")
    return shared_secret


def _unwrap_x25519(stanza, keys):
    """Return the file key if one of keys opens this X25519 stanza, else None."""
    if len(stanza.arguments) != 2 or len(stanza.body) != 32:
        raise CryptoError("header is corrupted (malformed X25519 stanza)")
    share = b64decode(stanza.arguments[1], "an X25519 ephemeral share")
    if len(share) != 32:
        raise CryptoError("header is corrupted (malformed X25519 stanza)")
    for private_key, public_key in keys:
        wrap_key = hkdf(_x25519_shared_secret(private_key, share), share + public_key, _X25519_INFO)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            continue
    return None


def _scrypt_work_factor(argument):
    if _WORK_FACTOR.match(argument) is None:
        raise CryptoError("header is corrupted (malformed scrypt work factor)")
    if len(argument) > 2 or int(argument) > MAX_SCRYPT_LOG_N:
        raise CryptoError("the file's passphrase work factor 2^%s exceeds the limit of 2^%d (it would need more "
                          "than 4 GiB of memory); refusing to decrypt it"
                          % (argument.decode("ascii"), MAX_SCRYPT_LOG_N))
    return int(argument)


def _unwrap_scrypt(stanza, passphrase):
    if len(stanza.arguments) != 3 or len(stanza.body) != 32:
        raise CryptoError("header is corrupted (malformed scrypt stanza)")
    salt = b64decode(stanza.arguments[1], "the scrypt salt")
    if len(salt) != 16:
        raise CryptoError("header is corrupted (malformed scrypt stanza)")
    wrap_key = _scrypt_key(passphrase, salt, _scrypt_work_factor(stanza.arguments[2]))
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        raise WrongKeyError("wrong passphrase") from None


def unwrap_file_key(stanzas, identities, passphrase):
    _check_one_key_source(identities, passphrase, "identities")
    is_passphrase_file = any(stanza.arguments[0] == b"scrypt" for stanza in stanzas)
    if is_passphrase_file and len(stanzas) > 1:
        raise CryptoError("header is corrupted (a passphrase stanza must be the only stanza)")
    if passphrase is not None:
        if not is_passphrase_file:
            raise WrongKeyError("this file is encrypted to recipients (public keys), not with a passphrase; "
                                "give an identity to decrypt it")
        return _unwrap_scrypt(stanzas[0], _passphrase_bytes(passphrase))
    if is_passphrase_file:
        raise WrongKeyError("this file is encrypted with a passphrase, not to recipients; give the passphrase")
    keys = _x25519_keys(identities)
    for stanza in stanzas:
        if stanza.arguments[0] == b"X25519":
            file_key = _unwrap_x25519(stanza, keys)
            if file_key is not None:
                return file_key
    raise WrongKeyError("no identity matches any recipient of this file")
