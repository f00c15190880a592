# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lifeboat.backup.vault on vault1, used by src1 with the real sftp and ssh clients and src1's vault key.

Run by `molecule verify -s vault`; the tests' host is src1. The tests run in file order; the last ones converge again
(check mode, wrong variables, a client removed and added back) and leave the vault as converge.yml makes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared'))
import playbook  # noqa: E402  (molecule/shared is a directory on the path, not a package)

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT_DIR = os.path.dirname(os.path.dirname(SCENARIO_DIR))
STATE_DIR = os.path.join(PROJECT_DIR, 'build', 'molecule', 'vault')
OTHER_KEY = os.path.join(STATE_DIR, 'other1_ed25519')
ROOT = '/srv/lifeboat-vault'
ACCOUNT = 'lifeboat-src1'
OTHER_HOST = 'other1.example.test'
OTHER_ACCOUNT = 'lifeboat-other1-example-test'
APP_DIR = '/vault/src1/app'
ON_VAULT = ROOT + '/' + ACCOUNT
KEY = '/etc/lifeboat/vault_ed25519'
KNOWN_HOSTS = '/etc/lifeboat/vault_known_hosts'
UNITS = ('lifeboat-vault-maintain.service', 'lifeboat-vault-maintain.timer')


@pytest.fixture(scope='module')
def vault():
    return testinfra.get_host('ansible://vault1', ansible_inventory=os.environ['MOLECULE_INVENTORY_FILE'])


@pytest.fixture(scope='module')
def address(vault):
    return vault.backend.ansible_runner.get_variables('vault1')['ansible_host']


def client_options(known_hosts=KNOWN_HOSTS):
    """src1's key, and vault1's host key only: strict checking, never a prompt."""
    return ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=' + known_hosts,
            '-o', 'IdentitiesOnly=yes', '-i', KEY]


class Ran:
    """What a client run on src1 returned."""

    def __init__(self, rc, stdout, stderr):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def run_client(host, argv, script=None):
    """Run argv on src1 (script on its stdin). testinfra takes ssh's exit 255 for a lost connection to src1: the exit
    status comes back as the last line of stderr."""
    command = shlex.join(argv)
    if script is None:
        command += ' </dev/null'
    else:
        command = 'printf %%s %s | %s' % (shlex.quote(script), command)
    result = host.run(command + '; echo "exit $?" >&2')
    stderr, _newline, last = result.stderr.rstrip('\n').rpartition('\n')
    assert last.startswith('exit '), result.stderr
    return Ran(int(last.split()[1]), result.stdout, stderr)


def sftp(host, address, *commands, user=ACCOUNT, known_hosts=KNOWN_HOSTS):
    """Run sftp commands on src1 as the vault account; a batch stops at the first failing command (exit 1)."""
    argv = ['sftp'] + client_options(known_hosts) + ['-b', '-', '%s@%s' % (user, address)]
    return run_client(host, argv, ''.join(command + '\n' for command in commands))


def ssh(host, address, *options, command=None):
    argv = ['ssh'] + client_options() + list(options) + ['%s@%s' % (ACCOUNT, address)]
    return run_client(host, argv + ([command] if command else []))


def upload(host, address, content):
    """A new file in src1's app directory: its name on the vault and the sha256 of its content."""
    name = 'upload-%s.tar.zst' % uuid.uuid4().hex[:12]
    assert host.run('printf %%s %s > /tmp/%s', content, name).rc == 0
    put = sftp(host, address, 'put /tmp/%s %s/%s' % (name, APP_DIR, name))
    assert put.rc == 0, put.stderr
    return name, hashlib.sha256(content.encode()).hexdigest()


def on_vault(vault, name):
    """(sha256, mode, owner) of a file in src1's app directory, as vault1 sees it; None when it does not exist."""
    path = '%s%s/%s' % (ON_VAULT, APP_DIR, name)
    found = vault.run("stat -c '%%a %%U' %s && sha256sum %s", path, path)
    if found.rc != 0:
        return None
    mode_owner, digest = found.stdout.splitlines()
    return (digest.split()[0],) + tuple(mode_owner.split())


def vault_state(vault):
    """What a run that changes nothing must leave alike: accounts, keys, sshd's drop-in, settings and directories."""
    command = ("getent passwd | grep lifeboat- | sort; getent shadow | grep lifeboat- | sort; "
               "grep -r . /etc/lifeboat-vault/keys | sort; cat /etc/ssh/sshd_config.d/00-lifeboat-vault.conf; "
               "cat /etc/lifeboat/vault.json; find %s -printf '%%M %%u %%g %%p\\n' | sort" % ROOT)
    listed = vault.run(command)
    assert listed.rc == 0, listed.stderr
    return listed.stdout


def converge(*options, succeed=True, **extra_vars):
    """Run converge.yml again (options: e.g. --check); returns how many tasks changed and the output."""
    return playbook.run(os.path.join(SCENARIO_DIR, 'converge.yml'), os.path.join(STATE_DIR, 'collections'), *options,
                        succeed=succeed, **extra_vars)


def test_a_new_file_is_stored_read_only_and_reads_back(host, vault, address):
    name, digest = upload(host, address, 'backup of src1\n')
    assert on_vault(vault, name) == (digest, '444', ACCOUNT)
    fetched = sftp(host, address, 'get %s/%s /tmp/%s.back' % (APP_DIR, name, name))
    assert fetched.rc == 0, fetched.stderr
    assert host.run('sha256sum /tmp/%s.back', name).stdout.split()[0] == digest


@pytest.mark.parametrize('change, message', [
    ('rm {path}', 'Permission denied'),
    ('rename {path} {path}.renamed', 'Permission denied'),
    ('put /etc/hostname {path}', 'Permission denied'),
    ('chmod 600 {path}', 'Permission denied'),
    ('ln -s {path} {path}.link', 'Permission denied'),
    # Refused requests are not even offered when the client asks which extensions the server has.
    ('ln {path} {path}.hard', 'Server does not support hardlink@openssh.com extension'),
])
def test_a_stored_file_cannot_be_removed_renamed_overwritten_or_changed(host, vault, address, change, message):
    name, digest = upload(host, address, 'keep me: %s\n' % change)
    refused = sftp(host, address, change.format(path='%s/%s' % (APP_DIR, name)))
    assert refused.rc != 0
    assert message in refused.stderr
    assert on_vault(vault, name) == (digest, '444', ACCOUNT)
    assert [entry for entry in vault.run('ls %s%s', ON_VAULT, APP_DIR).stdout.split()
            if entry.startswith(name)] == [name]


def test_a_directory_the_host_makes_cannot_be_written_into(host, vault, address):
    made = '%s/made-%s' % (APP_DIR, uuid.uuid4().hex[:12])
    created = sftp(host, address, 'mkdir ' + made)
    assert created.rc == 0, created.stderr
    written = sftp(host, address, 'put /etc/hostname %s/file' % made)
    assert written.rc != 0
    assert 'Permission denied' in written.stderr
    assert vault.file(ON_VAULT + made).mode == 0o555
    assert vault.run('ls -A %s', ON_VAULT + made).stdout == ''


def test_the_host_sees_only_its_own_directories_and_writes_only_its_jobs(host, vault, address):
    listed = sftp(host, address, 'ls -1a /', 'ls -1 /vault', 'ls -1 /vault/src1')
    assert listed.rc == 0, listed.stderr
    assert listed.stdout.split() == ['sftp>', 'ls', '-1a', '/', '/.', '/..', '/vault',
                                     'sftp>', 'ls', '-1', '/vault', '/vault/src1',
                                     'sftp>', 'ls', '-1', '/vault/src1', '/vault/src1/app', '/vault/src1/db']
    for target in ('/vault/src1/stray', '/vault/stray', '/stray', '/vault/%s/app/stray' % OTHER_HOST,
                   '../%s/vault/%s/app/stray' % (OTHER_ACCOUNT, OTHER_HOST),
                   '%s/%s/vault/%s/app/stray' % (ROOT, OTHER_ACCOUNT, OTHER_HOST)):
        put = sftp(host, address, 'put /etc/hostname %s' % target)
        assert put.rc != 0, target
    assert vault.run('find %s -name stray', ROOT).stdout == ''
    # src1's key does not open another host's account.
    other = sftp(host, address, 'ls /', user=OTHER_ACCOUNT)
    assert other.rc != 0
    assert 'Permission denied (publickey)' in other.stderr


def test_a_shell_a_command_and_passwords_are_refused(host, vault, address):
    command = ssh(host, address, command='touch /tmp/vault-shell-ran')
    assert command.rc != 0
    assert 'This service allows sftp connections only.' in command.stdout + command.stderr
    shell = ssh(host, address, '-tt')
    assert shell.rc != 0
    assert vault.run('find / -xdev -name vault-shell-ran').stdout == ''
    password = run_client(host, ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o',
                                 'UserKnownHostsFile=' + KNOWN_HOSTS, '-o', 'PubkeyAuthentication=no',
                                 '%s@%s' % (ACCOUNT, address), 'true'])
    assert password.rc == 255
    assert 'Permission denied (publickey)' in password.stderr


@pytest.mark.parametrize('forwarding, message', [
    (['-W', '127.0.0.1:22'], 'administratively prohibited'),
    (['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:40022:127.0.0.1:22'], 'remote port forwarding failed'),
])
def test_port_forwarding_is_refused(host, address, forwarding, message):
    forwarded = ssh(host, address, *forwarding)
    assert forwarded.rc == 255
    assert message in forwarded.stderr


def test_the_vaults_host_key_is_checked(host, address):
    unknown = sftp(host, address, 'ls /', known_hosts='/dev/null')
    assert unknown.rc != 0
    assert 'Host key verification failed' in unknown.stderr


def test_the_maintenance_units_pass_systemd_analyze_verify_and_the_timer_is_enabled(vault):
    for unit in UNITS:
        checked = vault.run('systemd-analyze verify /etc/systemd/system/%s', unit)
        assert checked.rc == 0, checked.stderr
    assert vault.run('systemctl is-enabled lifeboat-vault-maintain.timer').stdout.strip() == 'enabled'
    assert vault.run('systemctl is-active lifeboat-vault-maintain.timer').stdout.strip() == 'active'
    service = vault.file('/etc/systemd/system/lifeboat-vault-maintain.service').content_string
    assert 'ExecStart=/usr/local/bin/lifeboat vault-maintain\n' in service
    assert 'CapabilityBoundingSet=CAP_DAC_OVERRIDE\n' in service
    assert vault.file('/usr/local/bin/lifeboat').mode == 0o755


def test_the_maintenance_settings_are_private_and_list_each_hosts_directory(vault):
    settings = vault.file('/etc/lifeboat/vault.json')
    assert (settings.user, settings.group, settings.mode) == ('root', 'root', 0o600)
    assert json.loads(settings.content_string) == {
        'directories': [
            {'url': 'file://%s/%s/vault' % (ROOT, ACCOUNT), 'host': 'src1', 'jobs': ['app', 'db']},
            {'url': 'file://%s/%s/vault' % (ROOT, OTHER_ACCOUNT), 'host': OTHER_HOST, 'jobs': ['app']},
        ],
        'retention': {'keep_daily': 14, 'keep_weekly': 8, 'keep_monthly': 24},
        'sweep_after': '24h',
        'textfile_dir': None,
    }


def test_check_mode_predicts_a_new_job_and_changes_nothing(vault):
    before = vault_state(vault)
    changed, output = converge('--check', src1_jobs=['app', 'db', 'logs'])
    assert changed > 0, output
    assert vault_state(vault) == before
    assert not vault.file('%s/vault/src1/logs' % ON_VAULT).exists


@pytest.mark.parametrize('extra_vars, message', [
    ({'other_clients': [{'host': 'web.1', 'public_key': '{{ hostvars.src1.agent_vault_public_key }}', 'jobs': []},
                        {'host': 'web-1', 'public_key': '{{ hostvars.src1.agent_vault_public_key }}', 'jobs': []}]},
     "the hosts web.1, web-1 would share the account 'lifeboat-web-1'"),
    ({'other_clients': [{'host': 'web2', 'jobs': ['app'],
                         'public_key': 'command="/bin/sh" {{ hostvars.src1.agent_vault_public_key }}'}]},
     "vault_clients[1] (host 'web2'): public_key is not one OpenSSH public key line"),
    ({'vault_account_prefix': '', 'other_clients': [
        {'host': 'root', 'public_key': '{{ hostvars.src1.agent_vault_public_key }}', 'jobs': ['app']}]},
     'The accounts root exist and are not vault accounts'),
    ({'src1_jobs': ['app', '../db']}, "vault_clients[0] (host 'src1'): the job name '../db' is not letters"),
], ids=['account-collision', 'key-with-options', 'existing-account', 'job-name'])
def test_wrong_variables_fail_before_anything_changes(vault, extra_vars, message):
    before = vault_state(vault)
    output = converge(succeed=False, **extra_vars)[1]
    assert message in re.sub(r'\s+', ' ', output), output[-4000:]
    assert 'Nothing was changed.' in output
    assert vault_state(vault) == before


def other_login(address):
    """sftp as other1 from the controller, with other1's own key."""
    argv = ['sftp', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
            '-o', 'IdentitiesOnly=yes', '-i', OTHER_KEY, '-b', '-', '%s@%s' % (OTHER_ACCOUNT, address)]
    return subprocess.run(argv, input='ls /vault\n', capture_output=True, text=True, timeout=60, check=False)


def test_a_host_left_out_loses_its_login_not_its_backups_and_gets_it_back(vault, address):
    backup = '%s/%s/vault/%s/app/20261201T020000Z-app.tar.zst' % (ROOT, OTHER_ACCOUNT, OTHER_HOST)
    assert vault.run('echo stored > %s && chmod 0444 %s', backup, backup).rc == 0
    assert other_login(address).returncode == 0
    account = vault.run('getent passwd %s && getent shadow %s', OTHER_ACCOUNT, OTHER_ACCOUNT).stdout

    changed, output = converge(other_clients=[])
    assert changed > 0, output
    refused = other_login(address)
    assert refused.returncode != 0
    assert 'Permission denied' in refused.stderr
    assert not vault.file('/etc/lifeboat-vault/keys/' + OTHER_ACCOUNT).exists
    shadow = vault.run('getent shadow %s', OTHER_ACCOUNT).stdout.split(':')
    assert shadow[1].startswith('!') and shadow[7] == '1', shadow
    assert vault.file(backup).content_string == 'stored\n'
    assert [entry['host'] for entry in json.loads(vault.file('/etc/lifeboat/vault.json').content_string)
            ['directories']] == ['src1']
    # Still restricted by sshd, whatever key it might be given.
    applied = vault.run('sshd -T -C user=%s,host=x,addr=127.0.0.1,lport=22', OTHER_ACCOUNT).stdout
    assert 'chrootdirectory %s/%%u' % ROOT in applied.splitlines()

    changed, output = converge()
    assert changed > 0, output
    assert other_login(address).returncode == 0
    assert vault.file(backup).content_string == 'stored\n'
    # As converge left it, which the idempotence step proved stable.
    assert vault.run('getent passwd %s && getent shadow %s', OTHER_ACCOUNT, OTHER_ACCOUNT).stdout == account


def test_the_hosts_timer_replicates_to_the_vault_and_the_vaults_upkeep_keeps_the_copies(host, vault):
    started = host.run('systemctl start lifeboat-backup@app.service')
    assert started.rc == 0, host.run('journalctl -u lifeboat-backup@app.service --no-pager -n 40').stdout
    backups = json.loads(host.check_output('lifeboat list --job app --json'))
    assert backups, 'the timer made no backup'
    for backup in backups:
        assert backup['vaults']['offsite']['host'] == 'src1'
        checked = vault.run('cd %s && sha256sum -c %s.sha256' % (shlex.quote(ON_VAULT + APP_DIR), backup['id']))
        assert checked.rc == 0, checked.stderr
    again = json.loads(host.check_output('lifeboat replicate app --json'))
    assert again[0]['changed'] is False and sorted(again[0]['vaults'][0]['present']) == sorted(
        backup['id'] for backup in backups)
    upkeep = vault.run('systemctl start lifeboat-vault-maintain.service')
    assert upkeep.rc == 0, vault.run('journalctl -u lifeboat-vault-maintain.service --no-pager -n 40').stdout
    for backup in backups:
        assert vault.file('%s%s/%s.sha256' % (ON_VAULT, APP_DIR, backup['id'])).exists
