# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bech32 (BIP-173) as age uses it for keys: without the 90-character limit."""

from __future__ import annotations

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_VALUES = {char: value for value, char in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values):
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = ((checksum & 0x1FFFFFF) << 5) ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _bech32_hrp_values(hrp):
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _regroup_bits(values, from_bits, to_bits, pad):
    """Regroup a sequence of from_bits-wide integers into to_bits-wide ones (8 <-> 5 for bech32)."""
    accumulator = 0
    bits = 0
    mask = (1 << to_bits) - 1
    result = []
    for value in values:
        accumulator = ((accumulator << from_bits) | value) & 0xFFFF
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & mask)
    if pad and bits:
        result.append((accumulator << (to_bits - bits)) & mask)
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & mask):
        raise ValueError("invalid padding in the data part")
    return result


def bech32_encode(hrp, data):
    """Encode bytes as bech32 with the given human-readable part (lower case)."""
    values = _regroup_bits(data, 8, 5, True)
    polymod = _bech32_polymod(_bech32_hrp_values(hrp) + values + [0] * 6) ^ 1
    checksum = [(polymod >> (5 * (5 - index))) & 31 for index in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[value] for value in values + checksum)


def bech32_decode(text):
    """Return (hrp, data) of a bech32 string; ValueError (never quoting the input) if it is invalid."""
    if text != text.lower() and text != text.upper():
        raise ValueError("mixed upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise ValueError("no '1' separator followed by a checksum")
    hrp = text[:separator]
    if any(not 33 <= ord(char) <= 126 for char in hrp):
        raise ValueError("invalid character before the '1' separator")
    try:
        values = [_BECH32_VALUES[char] for char in text[separator + 1:]]
    except KeyError:
        raise ValueError("invalid character after the '1' separator") from None
    if _bech32_polymod(_bech32_hrp_values(hrp) + values) != 1:
        raise ValueError("checksum mismatch (a character is mistyped or missing)")
    return hrp, bytes(_regroup_bits(values[:-6], 5, 8, False))
