# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifeboat.backup.agent and lifeboat.backup.monitoring on a real systemd host.

Run by `molecule verify -s agent-monitoring`. The tests run in file order and the last one converges again without
the job `reports`: run `molecule converge -s agent-monitoring` before verifying the same hosts again. The
controller's receivers (receivers.py) record what the host sends.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared'))
import playbook  # noqa: E402  (molecule/shared is a directory on the path, not a package)

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIR = os.path.dirname(os.path.dirname(SCENARIO_DIR))
STATE_DIR = os.path.join(PROJECT_DIR, 'build', 'molecule', 'agent-monitoring')
IDENTITY_FILE = os.path.join(STATE_DIR, 'identity.txt')
ENGINE_SOURCE = os.path.join(PROJECT_DIR, 'plugins', 'module_utils')
ENGINE_DIR = '/usr/lib/lifeboat/lifeboat_engine'
TIMERS = ('lifeboat-backup@app.timer', 'lifeboat-backup@broken.timer', 'lifeboat-backup@reports.timer',
          'lifeboat-health.timer')
# The values of converge.yml's secret variables: webhook URL and header, ping URLs, SMTP password.
SECRETS = ('http://169.254.77.1:8025/hook', 'molecule-token', 'http://169.254.77.1:8025/ping/app',
           'http://169.254.77.1:8025/ping/broken', 'molecule-smtp-secret')


def records(name):
    """What the receivers recorded so far: mail.jsonl or http.jsonl."""
    with open(os.path.join(STATE_DIR, name), encoding='utf-8') as handle:
        return [json.loads(line) for line in handle if line.strip()]


def wait_for(name, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        found = [record for record in records(name) if predicate(record)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def ssh(host, command, stdin=None):
    """Run command on host over ssh with stdin from the controller: what is piped never touches the host's disk."""
    variables = host.backend.ansible_runner.get_variables(host.backend.host)
    key = variables.get('ansible_private_key_file') or variables['ansible_ssh_private_key_file']
    argv = ['ssh', '-i', key, '-p', str(variables.get('ansible_port', 22)), '-o', 'BatchMode=yes',
            '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
            '%s@%s' % (variables.get('ansible_user', 'root'), variables['ansible_host']), command]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, check=False)


def backups(host, job):
    listed = host.run('lifeboat list --json --job %s', job)
    assert listed.rc == 0, listed.stderr
    return json.loads(listed.stdout)


def converge(*options, succeed=True, **extra_vars):
    """Run converge.yml again (options: e.g. --check); returns how many tasks changed and the output."""
    return playbook.run(os.path.join(SCENARIO_DIR, 'converge.yml'), os.path.join(STATE_DIR, 'collections'), *options,
                        succeed=succeed, **extra_vars)


def shipped_engine(source=ENGINE_SOURCE):
    """Path below the engine directory -> sha256 of every file the collection ships there, at any depth."""
    shipped = {'__init__.py': hashlib.sha256(b'').hexdigest()}
    for directory, subdirectories, names in os.walk(source):
        subdirectories[:] = [name for name in subdirectories if name != '__pycache__']
        for name in names:
            if name.endswith('.py'):
                with open(os.path.join(directory, name), 'rb') as handle:
                    path = os.path.relpath(os.path.join(directory, name), source)
                    shipped[path] = hashlib.sha256(handle.read()).hexdigest()
    return shipped


def installed_engine(host):
    """Path below the engine directory -> (type, mode, owner, group, sha256 of a regular file)."""
    listed = host.run("find %s -mindepth 1 -printf '%%P\\t%%y\\t%%m\\t%%u\\t%%g\\n'", ENGINE_DIR)
    assert listed.rc == 0, listed.stderr
    entries = {}
    for line in listed.stdout.splitlines():
        path, kind, mode, user, group = line.split('\t')
        entries[path] = (kind, mode, user, group)
    summed = host.run("cd %s && find . -type f -exec sha256sum {} +", ENGINE_DIR)
    assert summed.rc == 0, summed.stderr
    digests = {path[2:]: digest for digest, path in (line.split(None, 1) for line in summed.stdout.splitlines())}
    return {path: entry + (digests.get(path),) for path, entry in entries.items()}


def assert_engine_is(host, shipped):
    """The host holds exactly the shipped files (root, 0644) in their packages (root, 0755), and besides only the
    bytecode Python wrote of shipped modules."""
    installed = installed_engine(host)
    for path, digest in shipped.items():
        assert installed.get(path) == ('f', '644', 'root', 'root', digest), path
    packages = set()
    for path in shipped:
        while path := os.path.dirname(path):
            packages.add(path)
    for path in packages:
        assert installed.get(path, ())[:4] == ('d', '755', 'root', 'root'), path
    for path, entry in installed.items():
        if path in shipped or path in packages:
            continue
        package, pycache = os.path.split(os.path.dirname(path)) if entry[0] == 'f' else os.path.split(path)
        assert pycache == '__pycache__' and (package == '' or package in packages), path
        if entry[0] == 'f':
            module = os.path.join(package, os.path.basename(path).split('.')[0] + '.py')
            assert path.endswith('.pyc') and module in shipped, path


@pytest.mark.parametrize('timer', TIMERS)
def test_timers_are_enabled_and_scheduled(host, timer):
    assert host.service(timer).is_enabled
    assert host.service(timer).is_running
    listed = host.run('systemctl list-timers --all --no-legend --plain %s', timer).stdout
    assert timer in listed
    assert host.run('systemctl show --value -p NextElapseUSecRealtime %s', timer).stdout.strip() not in ('', 'n/a')


def test_presets_and_calendar_expressions_reach_the_timers(host):
    assert 'OnCalendar=*-*-* 02:00:00' in host.file('/etc/systemd/system/lifeboat-backup@app.timer').content_string
    assert 'OnCalendar=Mon *-*-* 05:00:00' in host.file(
        '/etc/systemd/system/lifeboat-backup@broken.timer').content_string
    assert 'OnCalendar=Sun *-*-* 03:00:00' in host.file(
        '/etc/systemd/system/lifeboat-backup@reports.timer').content_string


def test_configuration_is_private_and_split_between_the_roles(host):
    for path in ('/etc/lifeboat/lifeboat.json', '/etc/lifeboat/monitoring.json', '/etc/lifeboat/jobs.d/app.json'):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ('root', 'root', 0o600), path
    assert json.loads(host.file('/etc/lifeboat/lifeboat.json').content_string) == {
        'backup_dir': '/var/backups/lifeboat'}
    monitoring = json.loads(host.file('/etc/lifeboat/monitoring.json').content_string)
    assert set(monitoring) == {'alerts', 'health', 'monitoring'}
    job = json.loads(host.file('/etc/lifeboat/jobs.d/app.json').content_string)
    assert job['retention'] == {'keep_daily': 7} and 'schedule' not in job
    assert host.file('/var/backups/lifeboat').mode == 0o700


def test_units_pass_systemd_analyze_verify(host):
    units = ['/etc/systemd/system/%s' % name for name in (
        'lifeboat-backup@.service', 'lifeboat-alert@.service', 'lifeboat-health.service') + TIMERS]
    checked = host.run('systemd-analyze verify %s', ' '.join(units))
    assert checked.rc == 0, checked.stderr


@pytest.mark.parametrize('unit, capabilities, timeout', [
    ('lifeboat-backup@app.service', 'cap_chown cap_dac_override cap_dac_read_search', '6h'),
    ('lifeboat-health.service', '', '30min'),
    ('lifeboat-alert@lifeboat-backup@app.service.service', '', '5min'),
])
def test_units_keep_only_the_capabilities_they_need_and_time_out(host, unit, capabilities, timeout):
    shown = host.run('systemctl show -p CapabilityBoundingSet -p PrivateDevices -p SystemCallFilter '
                     '-p TimeoutStartUSec %s', unit)
    assert shown.rc == 0, shown.stderr
    properties = dict(line.split('=', 1) for line in shown.stdout.splitlines())
    assert properties['CapabilityBoundingSet'] == capabilities
    assert properties['PrivateDevices'] == 'yes'
    assert properties['SystemCallFilter'] not in ('', '~'), 'a filter is set'
    assert properties['TimeoutStartUSec'] == timeout


def test_a_timer_run_makes_a_backup_that_verifies_fully_with_the_controllers_identity(host):
    started = host.run('systemctl start lifeboat-backup@app.service')
    assert started.rc == 0, host.run('journalctl -u lifeboat-backup@app.service -n 30 --no-pager').stdout
    made = backups(host, 'app')
    assert sorted(meta['kind'] for meta in made) == ['database', 'files']
    with open(IDENTITY_FILE, encoding='utf-8') as handle:
        identity = handle.read()
    for meta in made:
        checked = ssh(host, 'lifeboat verify %s --full --identity-file -' % shlex.quote(meta['id']), stdin=identity)
        assert checked.returncode == 0, checked.stderr
        assert 'passed full verification' in checked.stdout
    assert identity.strip().splitlines()[-1] not in host.run('grep -r AGE-SECRET-KEY /etc /var /srv || true').stdout
    pings = [record['path'] for record in records('http.jsonl') if record['path'].startswith('/ping/app')]
    assert pings[-2:] == ['/ping/app/start', '/ping/app']
    # Read what only nobody may read, and left the database's directory nobody's (SQLite chowns what it creates).
    assert host.run('find /srv/app/data /srv/app/private ! -user nobody').stdout == ''
    archive = [meta for meta in made if meta['kind'] == 'files'][0]
    assert archive['warnings'] == [] and archive['files'] >= 3, archive
    # The job's hooks ran around it, their output in the journal.
    journal = host.run('journalctl -u lifeboat-backup@app.service --no-pager -o cat').stdout
    assert 'hook before_backup: before the backup\n' in journal
    assert 'hook after_backup: after the backup of app, success, made %s\n' \
        % ' '.join(meta['id'] for meta in sorted(made, key=lambda meta: meta['kind'])) in journal


def test_a_failing_job_alerts_by_email_and_webhook_with_its_journal(host):
    failed = host.run('systemctl start lifeboat-backup@broken.service')
    assert failed.rc != 0
    hooks = wait_for('http.jsonl', lambda record: record['path'] == '/hook'
                     and json.loads(record['body']).get('job') == 'broken')
    assert hooks, records('http.jsonl')
    event = json.loads(hooks[0]['body'])
    assert event['event'] == 'failure' and event['unit'] == 'lifeboat-backup@broken.service'
    assert '/srv/missing/app.db' in event['message'], 'the end of the journal names what failed'
    assert hooks[0]['headers'].get('Authorization') == 'Bearer molecule-token'
    mails = wait_for('mail.jsonl', lambda record: 'broken' in record['data'])
    assert mails, records('mail.jsonl')
    assert mails[0]['to'] == ['ops@example.test'] and mails[0]['from'] == 'lifeboat@lb-agent1.test'
    assert '/srv/missing/app.db' in mails[0]['data']
    assert '/ping/broken/fail' in [record['path'] for record in records('http.jsonl')]
    assert backups(host, 'broken') == []


def test_metrics_and_alert_rules_pass_promtool(host, tmp_path):
    assert host.run('systemctl start lifeboat-health.service').rc == 0
    metrics = host.file('/var/lib/prometheus/node-exporter/lifeboat_backup.prom')
    assert metrics.mode == 0o644
    text = metrics.content_string
    assert 'lifeboat_backup_backups{job="app"} 2' in text
    rules = tmp_path / 'lifeboat-backup.rules.yml'
    rules.write_text(host.file('/etc/prometheus/rules/lifeboat-backup.rules.yml').content_string)
    for argv, stdin in ((['promtool', 'check', 'metrics'], text), (['promtool', 'check', 'rules', str(rules)], None)):
        checked = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {line.split('alert:')[1].strip() for line in rules.read_text().splitlines() if 'alert:' in line}
    assert {'BackupTooOld', 'BackupTooSmall', 'BackupDiskFull', 'BackupFailed'} <= names


def test_the_engine_is_the_collections_tree_and_what_it_no_longer_ships_is_gone(host):
    assert_engine_is(host, shipped_engine())
    for planted in ('_old_engine.py', '_old_engine.pyc', '__pycache__/_old_engine.cpython-311.pyc', '_gone'):
        assert not host.file('%s/%s' % (ENGINE_DIR, planted)).exists, planted
    beside = host.file('/usr/lib/lifeboat/_old_engine.py')
    assert beside.exists and 'does not ship' in beside.content_string, 'outside the engine directory: untouched'


def test_a_subpackage_is_installed_imported_and_removed_once_no_longer_shipped(host, tmp_path):
    source = tmp_path / 'module_utils'
    shutil.copytree(ENGINE_SOURCE, source, ignore=shutil.ignore_patterns('__pycache__'))
    (source / '_probe' / 'deep').mkdir(parents=True)
    (source / '_probe' / '__init__.py').write_text('')
    (source / '_probe' / 'stream.py').write_text('from .. import _version\nVALUE = "probe"\n')
    (source / '_probe' / 'deep' / '__init__.py').write_text('VALUE = "deep"\n')
    with_probe = {'__agent_engine_source': str(source)}
    before = installed_engine(host)

    changed, output = converge('--check', **with_probe)
    assert changed and '(item=_probe/deep/__init__.py)' in output, output
    assert installed_engine(host) == before, 'check mode changes nothing'
    changed, output = converge(**with_probe)
    assert changed and '(item=_probe/stream.py)' in output, output
    assert_engine_is(host, shipped_engine(source))
    imported = host.run('python3 -c %s', 'import sys; sys.path.insert(0, "/usr/lib/lifeboat"); '
                        'from lifeboat_engine._probe import stream, deep; print(stream.VALUE, deep.VALUE)')
    assert imported.stdout.split() == ['probe', 'deep'], imported.stderr
    assert host.file(ENGINE_DIR + '/_probe/__pycache__').is_directory, 'Python wrote its bytecode'
    assert host.run('lifeboat list --json').rc == 0
    assert converge(**with_probe)[0] == 0, 'the bytecode Python wrote is no change'

    before = installed_engine(host)
    changed, output = converge('--check')
    assert changed and '(item=_probe)' in output and installed_engine(host) == before, output
    changed, output = converge()
    assert changed and '(item=_probe)' in output, output
    assert not host.file(ENGINE_DIR + '/_probe').exists
    assert_engine_is(host, shipped_engine())
    assert host.run('lifeboat list --json').rc == 0
    assert converge()[0] == 0


def test_an_engine_source_without_the_engine_stops_before_anything_is_removed(host, tmp_path):
    before = installed_engine(host)
    _changed, output = converge(succeed=False, __agent_engine_source=str(tmp_path))
    assert 'No engine (_cli.py) under %s on the controller' % tmp_path in output
    assert 'Nothing was installed or removed.' in output
    assert installed_engine(host) == before


def test_removing_a_job_removes_its_timer_and_config_but_not_its_backups(host):
    assert host.run('systemctl start lifeboat-backup@reports.service').rc == 0
    kept = [meta['id'] for meta in backups(host, 'reports')]
    assert len(kept) == 1
    _changed, output = converge('-v', retire_job=True)
    assert 'ok=' in output, 'the output of the run is what is checked'
    leaks = [line.split(secret)[0][-200:] + '<SECRET>' for line in output.splitlines() for secret in SECRETS
             if secret in line]
    assert leaks == [], 'ansible-playbook -v printed a secret'
    assert not host.file('/etc/systemd/system/lifeboat-backup@reports.timer').exists
    assert not host.file('/etc/lifeboat/jobs.d/reports.json').exists
    assert 'lifeboat-backup@reports.timer' not in host.run('systemctl list-timers --all --no-legend').stdout
    assert [meta['id'] for meta in backups(host, 'reports')] == kept
    assert host.service('lifeboat-backup@app.timer').is_enabled
