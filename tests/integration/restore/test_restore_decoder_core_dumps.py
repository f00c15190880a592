# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore's decoder process holds the identities and the file key: it never writes a core file and is not
dumpable (no ptrace, no /proc/<pid>/mem for its user)."""

from __future__ import annotations

import ctypes
import gc
import resource

import pytest

from testlib import IDENTITY, RECIPIENT
from ansible_collections.lifeboat.backup.plugins.module_utils import _pipeline
from ansible_collections.lifeboat.backup.plugins.module_utils._errors import BackupError
from ansible_collections.lifeboat.backup.plugins.module_utils._restore import payload as _payload

PR_GET_DUMPABLE = 3


def _state():
    return "dumpable %d, core limit %s" % (ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0),
                                           resource.getrlimit(resource.RLIMIT_CORE))


def test_the_decoder_writes_no_core_file_and_is_not_dumpable(tmp_path, monkeypatch):
    path = str(tmp_path / "a.tar.age")
    with _pipeline.ArtifactWriter(path, "none", recipients=[RECIPIENT]) as writer:
        writer.write(b"payload")
        writer.commit()
    assert _state().startswith("dumpable 1")  # the test's own process: the probe tells the two apart

    def probe(*_args):
        """Runs in the decoder, where the artifact is about to be opened with the key: its state, as its error."""
        raise BackupError(_state())
    monkeypatch.setattr(_payload, "open_payload", probe)
    with open(path, "rb") as handle, _payload.PayloadProcess(handle, "none", True, [IDENTITY]) as payload:
        with pytest.raises(BackupError) as reported:
            payload.read()
    assert str(reported.value) == "dumpable 0, core limit (0, 0)"


def test_the_decoder_leaves_the_parents_garbage_alone(tmp_path, monkeypatch):
    """A zstd compressor the parent has not yet collected would, freed in a child, wait for ever for worker threads
    that exist only in the parent: the children never run the garbage collector."""
    path = str(tmp_path / "a.tar.age")
    with _pipeline.ArtifactWriter(path, "none", recipients=[RECIPIENT]) as writer:
        writer.write(b"payload")
        writer.commit()
    assert gc.isenabled()

    def probe(*_args):
        raise BackupError("garbage collector enabled: %s" % gc.isenabled())
    monkeypatch.setattr(_payload, "open_payload", probe)
    with open(path, "rb") as handle, _payload.PayloadProcess(handle, "none", True, [IDENTITY]) as payload:
        with pytest.raises(BackupError) as reported:
            payload.read()
    assert str(reported.value) == "garbage collector enabled: False"
