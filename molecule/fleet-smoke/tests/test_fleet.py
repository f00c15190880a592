# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's promises: real systemd hosts that reach each other and the controller, and nothing else.

Run by `molecule verify -s fleet-smoke`, or against a fleet from `tests/fleet/fleet.py up`:
    pytest --hosts=all --connection=ansible --ansible-inventory=build/fleet/inventory.yml molecule/fleet-smoke/tests
"""

from __future__ import annotations

import errno

import pytest

CONTROLLER_ADDRESS = '169.254.77.1'
# Never contacted: without a route, connect() fails before any packet leaves the host.
OUTSIDE_ADDRESSES = ('9.9.9.9', '10.0.0.1', '192.168.1.1')
# Exits with connect()'s errno: 0 when the port answers.
CONNECT = ("python3 -c 'import socket, sys; s = socket.socket(); s.settimeout(3); "
           "sys.exit(s.connect_ex((sys.argv[1], int(sys.argv[2]))))' %s %s")


def fleet_addresses(host):
    """Inventory name -> address of every host in the inventory under test."""
    runner = host.backend.ansible_runner
    return {name: runner.get_variables(name)['ansible_host'] for name in runner.get_hosts('all')}


def test_systemd_is_pid_1(host):
    assert host.file('/proc/1/comm').content_string.strip() == 'systemd'


def test_system_has_booted(host):
    state = host.run('timeout 60 systemctl is-system-running --wait').stdout.strip()
    assert state in ('running', 'degraded'), host.run('systemctl --failed --no-legend --plain').stdout


def test_converge_wrote_the_marker(host):
    marker = host.file('/etc/lbfleet-smoke')
    assert marker.content_string == 'converged by molecule\n'
    assert marker.mode == 0o644


def test_reaches_every_host_of_the_fleet_over_ssh(host):
    fleet = fleet_addresses(host)
    unreachable = [name for name, address in sorted(fleet.items()) if host.run(CONNECT, address, '22').rc != 0]
    assert len(fleet) >= 2
    assert not unreachable


def test_reaches_the_controller(host):
    assert host.run('ping -c 1 -W 2 %s', CONTROLLER_ADDRESS).rc == 0


def test_has_no_default_route(host):
    assert host.run('ip -4 route show default').stdout.strip() == ''
    assert host.run('ip -6 route show default').stdout.strip() == ''


@pytest.mark.parametrize('address', OUTSIDE_ADDRESSES)
def test_reaches_nothing_outside(host, address):
    assert host.run(CONNECT, address, '443').rc == errno.ENETUNREACH


@pytest.mark.parametrize('module', ['cryptography', 'zstandard', 'pathspec'])
def test_engine_dependency_is_importable(host, module):
    assert host.run('python3 -c %s', 'import ' + module).rc == 0
