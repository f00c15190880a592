# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the other files share: the check for the cryptography package, HKDF-SHA-256 and the all-zero nonce."""

from __future__ import annotations

from .._errors import MissingDependencyError

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:  # pragma: no cover - depends on the host
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

ZERO_NONCE = bytes(12)


def require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise MissingDependencyError(
            "age encryption needs the Python package 'cryptography' on this host "
            "(Debian/Ubuntu: apt install python3-cryptography; pip: pip install cryptography)")


def hkdf(key_material, salt, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key_material)
