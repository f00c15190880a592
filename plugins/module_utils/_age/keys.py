# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""age X25519 keys: identities (AGE-SECRET-KEY-1...) and recipients (age1...), parsed, derived and generated."""

from __future__ import annotations

from .._errors import UsageError
from .bech32 import bech32_decode, bech32_encode
from .primitives import require_cryptography

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
except ImportError:  # pragma: no cover - require_cryptography() reports it before any use
    pass

_IDENTITY_HRP = "age-secret-key-"
_RECIPIENT_HRP = "age"

RECIPIENT_FORMAT = "an age recipient is 'age1' followed by 58 lowercase letters and digits, as printed by age-keygen"
IDENTITY_FORMAT = ("an age identity is a line 'AGE-SECRET-KEY-1' followed by 58 upper-case letters and digits, "
                   "as written by age-keygen (the value is not shown because it is secret)")


def recipient_key(recipient):
    """Return the 32-byte X25519 public key of an age1... recipient, or raise UsageError."""
    if not isinstance(recipient, str):
        raise UsageError("an age recipient must be a string; %s" % RECIPIENT_FORMAT)
    value = recipient.strip()
    if "SECRET-KEY" in value.upper():
        raise UsageError("a secret key (AGE-SECRET-KEY-1...) was given where a recipient is expected; give its "
                         "public key (age-keygen -y prints it); the value is not shown because it is secret")
    try:
        hrp, key = bech32_decode(value)
    except ValueError as exc:
        raise UsageError("invalid age recipient %r: %s; %s" % (value[:100], exc, RECIPIENT_FORMAT)) from None
    if hrp != _RECIPIENT_HRP or len(key) != 32:
        raise UsageError("%r is not an X25519 age recipient; %s" % (value[:100], RECIPIENT_FORMAT))
    return key


def identity_key(identity, where="the identity"):
    """Return the 32-byte X25519 private key of an AGE-SECRET-KEY-1... identity, or raise UsageError."""
    if not isinstance(identity, str):
        raise UsageError("%s must be a string; %s" % (where, IDENTITY_FORMAT))
    try:
        hrp, key = bech32_decode(identity.strip())
    except ValueError as exc:
        raise UsageError("%s is not a valid age identity (%s); %s" % (where, exc, IDENTITY_FORMAT)) from None
    if hrp == _RECIPIENT_HRP:
        raise UsageError("%s is a recipient (public key), not an identity; %s" % (where, IDENTITY_FORMAT))
    if hrp != _IDENTITY_HRP or len(key) != 32:
        raise UsageError("%s is not an X25519 age identity (plugin and post-quantum identities are not "
                         "supported); %s" % (where, IDENTITY_FORMAT))
    return key


def public_bytes(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _encode_identity(key):
    return bech32_encode(_IDENTITY_HRP, key).upper()


def encode_recipient(public_key):
    return bech32_encode(_RECIPIENT_HRP, public_key)


def parse_recipient(recipient):
    """Validate an age1... recipient and return it in canonical (lower case) form."""
    return encode_recipient(recipient_key(recipient))


def parse_identities(text):
    """Return the identities of an identity file's content (comments and blank lines allowed), upper case."""
    if not isinstance(text, str):
        raise UsageError("the identities must be text; %s" % IDENTITY_FORMAT)
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            identities.append(_encode_identity(identity_key(line, "line %d of the identities" % number)))
    if not identities:
        raise UsageError("no age identity found (only blank lines or comments); %s" % IDENTITY_FORMAT)
    return identities


def recipient_from_identity(identity):
    """Return the age1... recipient (public key) of an AGE-SECRET-KEY-1... identity."""
    require_cryptography()
    private_key = X25519PrivateKey.from_private_bytes(identity_key(identity))
    return encode_recipient(public_bytes(private_key))


def generate_identity():
    """Return a new (AGE-SECRET-KEY-1... identity, age1... recipient) pair."""
    require_cryptography()
    private_key = X25519PrivateKey.generate()
    raw = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return _encode_identity(raw), encode_recipient(public_bytes(private_key))
