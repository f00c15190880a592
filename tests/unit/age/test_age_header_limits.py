# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The age header parser caps the stanzas and their body lines: a hostile header is refused once past them,
without reading the rest of it, and a real one with many recipients still decrypts."""

from __future__ import annotations

import io
import os
import re

import pytest

from testlib import KEY, RECIPIENT
from ansible_collections.lifeboat.backup.plugins.module_utils import _age
from ansible_collections.lifeboat.backup.plugins.module_utils._age import header
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import CryptoError

STANZA = b"-> X25519 " + header.b64encode(bytes(32)) + b"\n" + header.b64encode(bytes(32)) + b"\n"


def _refused(blob, message):
    source = io.BytesIO(blob)
    with pytest.raises(CryptoError, match=re.escape("header is corrupted (%s)" % message)):
        _age.AgeReader(source, KEY).read()
    return source.tell()


def test_more_stanzas_than_the_limit_are_refused_before_the_rest_is_read():
    rest = STANZA * 100_000 + b"--- " + header.b64encode(bytes(32)) + b"\n"
    blob = _age.MAGIC + STANZA * header.MAX_STANZAS + rest
    read = _refused(blob, "it has more than 1024 recipient stanzas")
    assert read < len(_age.MAGIC) + len(STANZA) * header.MAX_STANZAS + 64 * 1024  # the rest was never read


def test_more_body_lines_than_the_limit_are_refused_before_the_rest_is_read():
    full_line = b"A" * 64 + b"\n"
    blob = _age.MAGIC + b"-> X25519 abc\n" + full_line * (header.MAX_BODY_LINES + 1_000_000) + b"\n"
    read = _refused(blob, "its stanzas hold more than 16384 body lines")
    assert read < len(full_line) * header.MAX_BODY_LINES + 64 * 1024


def test_the_body_line_limit_counts_every_stanza():
    body = header.b64encode(os.urandom(48 * 63)) + b"\n"  # 63 full lines and an empty one: 64 lines
    stanza = b"-> other.example/stanza\n" + b"\n".join(body[i:i + 64] for i in range(0, len(body) - 1, 64)) + b"\n\n"
    assert stanza.count(b"\n") == 65
    blob = _age.MAGIC + stanza * (header.MAX_BODY_LINES // 64 + 1)
    _refused(blob, "its stanzas hold more than 16384 body lines")


def test_a_file_with_many_recipients_within_the_limits_decrypts():
    recipients = [_age.generate_identity()[1] for _number in range(200)] + [RECIPIENT]
    sink = io.BytesIO()
    writer = _age.AgeWriter(sink, recipients=recipients)
    writer.write(b"secret")
    writer.close()
    assert _age.AgeReader(io.BytesIO(sink.getvalue()), KEY).read() == b"secret"
