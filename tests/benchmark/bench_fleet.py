# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet: backup.yml on one host against three, and rollback.yml against a bare restore of the same backups.

Boots three fleet hosts (tests/fleet/fleet.py, as root), gives each the same data (a tree of source-like files and
an SQLite database, from the same seed), installs the collection from this checkout, then times, in alternating
rounds:
  - backup.yml on lb-bench1 only, and on the three hosts (same job, same data per host): the ratio says what a
    bigger fleet costs (target <= 1.3);
  - on lb-bench1, after the data was changed: rollback.yml to that host's last backup, and a playbook of the two
    bare lifeboat.backup.restore tasks (safety backups included, as in a rollback) for the same backups: the ratio
    is the rollback's orchestration overhead (target <= 1.2).
Prints every run, the medians and the ratios; the fleet is torn down at the end, also on failure.

The hosts are containers on this machine's CPUs. With --host-cpu N each host is capped at N CPUs (a cgroup CPU
quota) in every run, so that a host has the same CPU whether it runs alone or beside the others, as separate
machines would; without it, three hosts share the CPUs that one host had to itself.

    python3 tests/benchmark/bench_fleet.py --size-mib 400 --rounds 3 --host-cpu 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLEET = os.path.join(ROOT, 'tests', 'fleet', 'fleet.py')
WORK = os.path.join(ROOT, 'build', 'bench-fleet')
HOSTS = ('lb-bench1', 'lb-bench2', 'lb-bench3')
BIN = os.path.dirname(sys.executable)
CPU_CGROUP = '/sys/fs/cgroup/cpu/lbfleet-bench'

# Run on each host (its source over ssh) as `python3 - fleet /srv/bench SIZE_MIB`: source-like files under
# /srv/bench/src and an SQLite database in /srv/bench/data, from the same seed on every host.
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus.py')
# Changes the data the way a deploy would: some files rewritten, rows deleted.
CHANGE_SCRIPT = r'''
import glob, sqlite3
for path in sorted(glob.glob("/srv/bench/src/pkg00*/mod*.py"))[:50]:
    with open(path, "ab") as handle:
        handle.write(b"# changed by the deploy\n")
db = sqlite3.connect("/srv/bench/data/bench.db")
db.execute("DELETE FROM events WHERE id % 3 = 0")
db.commit()
db.close()
'''
GROUP_VARS = '''---
agent_jobs:
  - name: bench
    paths: [/srv/bench/src]
    databases:
      - engine: sqlite
        name: /srv/bench/data/bench.db
    recipients: ["{recipient}"]
rollback_services: []
'''
# The identity is given to the restores only (-e @identity.yml): backup.yml runs as before a deploy, with the
# checksum verify, not the full one.
IDENTITY_VARS = '''---
backup_identity: "{{{{ lookup('ansible.builtin.file', '{identity}') }}}}"
'''
RESTORE_PLAYBOOK = '''---
- name: Restore the backups of a rollback, bare
  hosts: lb-bench1
  gather_facts: false
  tasks:
    - name: Restore the database
      lifeboat.backup.restore:
        id: "{{ database_id }}"
        identity: "{{ backup_identity }}"
      no_log: true
    - name: Restore the files
      lifeboat.backup.restore:
        id: "{{ files_id }}"
        identity: "{{ backup_identity }}"
      no_log: true
'''


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, **kwargs)


def fleet(*args):
    return run([sys.executable, FLEET] + list(args), stdout=subprocess.PIPE, text=True).stdout


def on_hosts(hosts, script, *args):
    """Run a Python script on the hosts at once, over ssh (stdin), and wait for all."""
    inventory = yaml.safe_load(fleet('inventory'))
    fleet_hosts = inventory['all']['children']['fleet']
    key = fleet_hosts['vars']['ansible_ssh_private_key_file']
    processes = []
    for host in hosts:
        address = fleet_hosts['hosts'][host]['ansible_host']
        processes.append(subprocess.Popen(
            ['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o',
             'BatchMode=yes', 'root@' + address, 'python3', '-'] + list(args),
            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL))
    for process in processes:
        process.communicate(script.encode())
        if process.returncode:
            raise SystemExit('the script failed on a host (exit %d)' % process.returncode)


def prepare():
    """Collection, key and inventory for the runs, in build/bench-fleet/."""
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, 'inventory', 'group_vars'))
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--force', '--output-path', WORK, ROOT],
        stdout=subprocess.DEVNULL)
    tarball = [name for name in os.listdir(WORK) if name.endswith('.tar.gz')][0]
    run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--force', '-p',
         os.path.join(WORK, 'collections'), os.path.join(WORK, tarball)], stdout=subprocess.DEVNULL)
    identity = os.path.join(WORK, 'identity.key')
    run(['age-keygen', '-o', identity], stderr=subprocess.DEVNULL)
    recipient = run(['age-keygen', '-y', identity], stdout=subprocess.PIPE, text=True).stdout.strip()
    with open(os.path.join(WORK, 'inventory', 'fleet.yml'), 'w', encoding='utf-8') as handle:
        handle.write(fleet('inventory'))
    with open(os.path.join(WORK, 'inventory', 'group_vars', 'all.yml'), 'w', encoding='utf-8') as handle:
        handle.write(GROUP_VARS.format(recipient=recipient, identity=identity))
    with open(os.path.join(WORK, 'identity.yml'), 'w', encoding='utf-8') as handle:
        handle.write(IDENTITY_VARS.format(identity=identity))
    with open(os.path.join(WORK, 'restore.yml'), 'w', encoding='utf-8') as handle:
        handle.write(RESTORE_PLAYBOOK)


def playbook(playbook_name, *args):
    """Wall time of one ansible-playbook run, as an operator types it."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(WORK, 'collections'), ANSIBLE_FORCE_COLOR='0',
               PWD=WORK)
    argv = [os.path.join(BIN, 'ansible-playbook'), '-i', os.path.join(WORK, 'inventory'), playbook_name] + list(args)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=WORK, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            check=False)
    elapsed = time.monotonic() - started
    if result.returncode:
        sys.stdout.write(result.stdout[-4000:])
        raise SystemExit('%s failed (exit %d)' % (playbook_name, result.returncode))
    return elapsed


def report(name):
    with open(os.path.join(WORK, name), encoding='utf-8') as handle:
        return json.load(handle)


def bench(rounds, size_mib):
    with open(CORPUS, encoding='utf-8') as handle:
        on_hosts(HOSTS, handle.read(), 'fleet', '/srv/bench', str(size_mib))
    playbook('lifeboat.backup.backup', '-e', 'deploy_id=warm-up', '-e', 'backup_report_file=warm-up.json')
    one, three, rollback, restore = [], [], [], []
    for number in range(rounds):
        one.append(playbook('lifeboat.backup.backup', '--limit', HOSTS[0], '-e', 'deploy_id=one-%d' % number,
                            '-e', 'backup_report_file=one.json'))
        three.append(playbook('lifeboat.backup.backup', '-e', 'deploy_id=three-%d' % number,
                              '-e', 'backup_report_file=three.json'))
        backups = {row['kind']: row['id'] for row in report('one.json')['backups']}
        on_hosts(HOSTS[:1], CHANGE_SCRIPT)
        rollback.append(playbook('lifeboat.backup.rollback', '--limit', HOSTS[0], '-e', '@identity.yml',
                                 '-e', 'deploy_id=one-%d' % number,
                                 '-e', 'rollback_confirm=yes', '-e', 'rollback_report_file=rollback.json'))
        on_hosts(HOSTS[:1], CHANGE_SCRIPT)
        restore.append(playbook(os.path.join(WORK, 'restore.yml'), '-e', '@identity.yml',
                                '-e', 'database_id=' + backups['database'],
                                '-e', 'files_id=' + backups['files']))
        print('round %d: backup 1 host %.1f s, 3 hosts %.1f s; rollback %.1f s, bare restore %.1f s'
              % (number + 1, one[-1], three[-1], rollback[-1], restore[-1]), flush=True)
    sizes = report('three.json')['backups']
    per_host = sum(row['input_size'] for row in sizes if row['host'] == HOSTS[0])
    print('data per host: %.0f MiB (files and database), artifacts %.1f MiB per host'
          % (per_host / 2 ** 20, sum(row['size'] for row in sizes if row['host'] == HOSTS[0]) / 2 ** 20))
    print('%-34s %8s %8s' % ('', 'best s', 'median s'))
    for name, times in (('backup.yml, 1 host', one), ('backup.yml, 3 hosts', three),
                        ('rollback.yml, 1 host', rollback), ('bare restore playbook, 1 host', restore)):
        print('%-34s %8.1f %8.1f' % (name, min(times), statistics.median(times)))
    print('3 hosts / 1 host:        median %.2f, best %.2f (target <= 1.3)'
          % (statistics.median(three) / statistics.median(one), min(three) / min(one)))
    print('rollback / bare restore: median %.2f, best %.2f (target <= 1.2)'
          % (statistics.median(rollback) / statistics.median(restore), min(rollback) / min(restore)))


def host_processes(name):
    """Every process of a fleet host, from its cgroup in the hierarchies fleet.py made for it."""
    with open(os.path.join(ROOT, 'build', 'fleet', 'state.json'), encoding='utf-8') as handle:
        state = json.load(handle)
    pids = set()
    for hierarchy in state['cgroup_hierarchies']:
        for directory, _subdirs, files in os.walk(os.path.join(hierarchy, 'lbfleet', name)):
            if 'cgroup.procs' in files:
                with open(os.path.join(directory, 'cgroup.procs'), encoding='ascii') as procs:
                    pids.update(procs.read().split())
    return pids


def cap_cpu(share):
    """Give each host the same CPU share whether it runs alone or beside the others, as separate machines
    would have: a cgroup (v1 cpu controller) per host with a CFS quota; what the host starts later inherits it."""
    if not os.path.isdir(os.path.dirname(CPU_CGROUP)):
        raise SystemExit('--host-cpu needs the cgroup v1 cpu controller at %s' % os.path.dirname(CPU_CGROUP))
    for name in HOSTS:
        group = os.path.join(CPU_CGROUP, name)
        os.makedirs(group, exist_ok=True)
        with open(os.path.join(group, 'cpu.cfs_quota_us'), 'w', encoding='ascii') as quota:
            quota.write(str(int(share * 100000)))
        for pid in host_processes(name):
            try:
                with open(os.path.join(group, 'cgroup.procs'), 'w', encoding='ascii') as procs:
                    procs.write(pid)
            except ProcessLookupError:
                pass  # ended meanwhile


def uncap_cpu():
    for group in [os.path.join(CPU_CGROUP, name) for name in HOSTS] + [CPU_CGROUP]:
        if os.path.isdir(group):
            os.rmdir(group)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=float, default=200, help='data per host')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--host-cpu', type=float, help='cap each host at this many CPUs (e.g. 0.5), in both runs')
    args = parser.parse_args()
    fleet('up', *HOSTS)
    try:
        if args.host_cpu:
            cap_cpu(args.host_cpu)
        prepare()
        bench(args.rounds, args.size_mib)
    finally:
        fleet('down')
        if args.host_cpu:
            uncap_cpu()


if __name__ == '__main__':
    main()
