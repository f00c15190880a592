# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the story leaves on each host: run by `molecule verify -s fleet` after converge.yml asserted every step."""

from __future__ import annotations

import json
import os
from pathlib import Path

BACKUP_DIR = '/var/backups/lifeboat'
ROOT = Path(__file__).resolve().parents[3]


def catalog(host):
    """Metadata of every backup of the job `app` on the host."""
    listing = host.run('cat %s/app/*.json', BACKUP_DIR)
    assert listing.rc == 0, listing.stderr
    decoder = json.JSONDecoder()
    text, found = listing.stdout, []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        entry, position = decoder.raw_decode(text, position)
        found.append(entry)
    return found


def test_the_application_runs_again(host):
    assert host.service('app.service').is_running
    assert host.run('curl -sf http://127.0.0.1:8080/health').rc == 0


def test_the_backup_timer_is_enabled(host):
    assert host.service('lifeboat-backup@app.timer').is_enabled


def test_the_catalog_holds_the_pre_deploy_backups_of_v1(host):
    v1 = [entry for entry in catalog(host) if entry.get('deploy_id') == 'v1']
    assert sorted(entry['kind'] for entry in v1) == ['database', 'files']
    assert all('pre-deploy' in entry['tags'] for entry in v1)
    assert all(entry['encryption']['method'] == 'x25519' for entry in v1)


def test_every_rollback_left_safety_backups(host):
    safety = [entry for entry in catalog(host) if 'safety' in entry['tags']]
    # lb-app1 and lb-app2 were rolled back twice (lb-app2 the second time reverted), lb-app3 once.
    expected = 2 if host.backend.get_hostname() == 'lb-app3' else 4
    assert len(safety) == expected


def test_the_drill_left_no_scratch_data(host):
    assert host.run('find /var/tmp/lifeboat-drill -mindepth 1 -print -quit').stdout == ''
    if host.file('/etc/app/app.json').content_string.find('postgresql') >= 0:
        databases = host.run("runuser -u postgres -- psql -X -A -t -c 'SELECT datname FROM pg_database'")
        assert databases.rc == 0
        assert not [name for name in databases.stdout.split() if name.startswith('lifeboat_drill_')]


def test_no_identity_reached_the_host(host):
    found = host.run('grep -rl AGE-SECRET-KEY- /etc /srv /var/backups /var/tmp /root /tmp')
    assert found.stdout == ''


def _files_holding(root, needle):
    """Paths under root of the regular files that hold needle (lower case bytes), compared case-insensitively."""
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'rb') as handle:
                    if needle in handle.read().lower():
                        found.append(os.path.relpath(path, root))
    return sorted(found)


def test_nothing_the_host_wrote_holds_the_identity(host):
    """Every file the host wrote during the story is in its overlay's upper layer, read here from the controller: the
    kept module files of every playbook run (no pipelining), the catalog, metadata, journals, the drill's scratch."""
    identity = (ROOT / 'build' / 'molecule' / 'fleet' / 'identity.key').read_text()
    secret = identity.split('AGE-SECRET-KEY-1', 1)[1].split()[0].lower().encode()
    upper = ROOT / 'build' / 'fleet' / 'hosts' / host.check_output('hostname') / 'upper'
    # The restores and drills ran with file keys, which their kept module files hold: the search finds what is there.
    kept = _files_holding(upper / 'root' / '.ansible' / 'tmp', b'lifeboat-file-key-1')
    assert any('AnsiballZ_restore.py' in path for path in kept)
    assert _files_holding(upper, secret) == []
