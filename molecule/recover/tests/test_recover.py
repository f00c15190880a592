# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the story leaves on each app host: run by `molecule verify -s recover` after converge.yml asserted every
step."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_application_runs(host):
    assert host.service('app.service').is_running
    assert host.run('curl -sf http://127.0.0.1:8080/health').rc == 0


def test_the_backup_timer_is_enabled(host):
    assert host.service('lifeboat-backup@app.timer').is_enabled


def _files_holding(directory, text):
    """The regular files below directory, read from the controller, that hold text (in any case)."""
    found = subprocess.run(['grep', '-rlisF', '--', text, str(directory)], capture_output=True, text=True,
                           check=False)
    assert found.returncode in (0, 1), found.stderr
    return found.stdout.split()


def test_nothing_the_host_wrote_holds_the_identity(host):
    """Every file the host wrote is in its overlay's upper layer: the kept module files of every playbook run
    (no pipelining), the catalog, the journal. The replacement lb-app1 was recovered with file keys, which its kept
    restore modules hold: the search finds what is there."""
    identity = (ROOT / 'build' / 'molecule' / 'recover' / 'identity.key').read_text()
    secret = identity.split('AGE-SECRET-KEY-1', 1)[1].split()[0]
    upper = ROOT / 'build' / 'fleet' / 'hosts' / host.check_output('hostname') / 'upper'
    if host.check_output('hostname') == 'lb-app1':
        kept = _files_holding(upper / 'root' / '.ansible' / 'tmp', 'lifeboat-file-key-1')
        assert any('AnsiballZ_restore.py' in path for path in kept)
    assert _files_holding(upper, secret) == []
