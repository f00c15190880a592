# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of real systemd hosts on this machine, for molecule scenarios and manual testing.

Each host is a systemd-nspawn container booted from an overlay of one shared Debian rootfs, with its
own network namespace on a link-local bridge, reached over SSH as root. Run as root:

    python3 tests/fleet/fleet.py check                   can this machine run a fleet? (exit 0 or 77)
    python3 tests/fleet/fleet.py rootfs                  build (or reuse) the cached rootfs
    python3 tests/fleet/fleet.py up HOST [HOST...]       boot hosts, wait until they answer ssh
    python3 tests/fleet/fleet.py destroy HOST [HOST...]  lose hosts: kill them and remove their disks
    python3 tests/fleet/fleet.py inventory [-o FILE]     the Ansible inventory (YAML) of the fleet
    python3 tests/fleet/fleet.py status                  what is running; exit 1 when a host is down
    python3 tests/fleet/fleet.py down                    stop every host and remove all it created

`check` and `up` exit 77 with a one-line reason when this machine cannot run a fleet (not root, a
tool missing). Everything is kept in build/fleet/ (state.json records what exists, so `down` cleans up after a
partial `up` too); everything created on the machine is named with the `lbfleet` prefix.

`destroy` loses a host as a machine is lost: its processes are killed (no clean shutdown) and its disk, the overlay's
upper and work layers, is removed with its mount, network and cgroups. Its name keeps its address, so a later
`up HOST` boots a new, empty host under the same name and address, with new SSH host keys (the inventory checks no
host keys, see docs/testing-fleet.md).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# What every host has installed. The hosts have no route out, so whatever a role or test installs must
# be here. Changing this list changes the rootfs cache key: the next `rootfs` or `up` rebuilds it.
ROOTFS_PACKAGES = (
    # boot, remote access and what Ansible needs on a managed host
    'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'python3', 'python3-apt', 'iproute2', 'sudo',
    'procps', 'iputils-ping',
    # the engine's Python dependencies
    'python3-cryptography', 'python3-zstandard', 'python3-pathspec',
    # the databases the dumpers back up
    'postgresql', 'postgresql-client', 'mariadb-server', 'mariadb-client', 'sqlite3',
    # tools the roles and tests call
    'age', 'zstd', 'curl',
)
# Installed but not started at boot, which spares each host about 200 MB of memory and 130 MB of disk:
# a scenario starts what it needs (ansible.builtin.systemd_service, state: started).
SERVICES_OFF_AT_BOOT = ('postgresql.service', 'mariadb.service')
SUITE = 'bookworm'
MIRROR = 'http://deb.debian.org/debian'
# Bump when the scrubbing of the rootfs (see customize_rootfs) changes, to rebuild cached ones.
ROOTFS_LAYOUT = 1
# Documentation takes space and time to unpack and no test reads it.
DPKG_EXCLUDES = (
    'path-exclude=/usr/share/man/*',
    'path-exclude=/usr/share/doc/*',
    'path-include=/usr/share/doc/*/copyright',
    'path-exclude=/usr/share/locale/*',
)

FLEET_DIR = Path(__file__).resolve().parents[2] / 'build' / 'fleet'
STATE_FILE = FLEET_DIR / 'state.json'
LOCK_FILE = FLEET_DIR / 'lock'
KEY_FILE = FLEET_DIR / 'id_ed25519'
INVENTORY_FILE = FLEET_DIR / 'inventory.yml'
# Console logs live outside the hosts' directories, so that they survive `down` for a post-mortem.
LOG_DIR = FLEET_DIR / 'logs'
# ssh control sockets must fit in 108 bytes: a short directory, not one inside the checkout.
CONTROL_DIR = Path('/tmp/lbfleet-cp')

PREFIX = 'lbfleet'
BRIDGE = PREFIX + '-br'
SUBNET = '169.254.77'
CONTROLLER_ADDRESS = SUBNET + '.1'
PREFIX_LENGTH = 24
HOST_NAME_PATTERN = re.compile(r'^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$')
MAX_HOSTS = 244  # addresses .11 to .254

EXIT_UNAVAILABLE = 77  # the automake convention for "skipped"
EXIT_REBOOT = 133  # systemd-nspawn's exit code when the container rebooted
STOP_TIMEOUT = 30.0
SSH_OPTIONS = (
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'IdentitiesOnly=yes',
)
REQUIRED_TOOLS = {
    'systemd-nspawn': 'systemd-container',
    'ip': 'iproute2',
    'ssh': 'openssh-client',
    'ssh-keygen': 'openssh-client',
    'zstd': 'zstd',
    'tar': 'tar',
    'mount': 'mount',
}
BUILD_TOOLS = {'mmdebstrap': 'mmdebstrap', 'systemctl': 'systemd'}


class FleetError(Exception):
    """A step failed; the message says which and what to do."""


class FleetUnavailable(FleetError):
    """This machine cannot run a fleet at all (exit 77, so that callers can skip)."""


def log(message):
    print('fleet: ' + message, file=sys.stderr, flush=True)


def run(argv, check=True):
    """Run a command quietly; on failure raise with its stderr."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise FleetError('%s failed (exit %d): %s' % (' '.join(argv), result.returncode, result.stderr.strip()))
    return result


# --- preconditions ---------------------------------------------------------------------------------

def require_root():
    if os.geteuid() != 0:
        raise FleetUnavailable('the fleet needs root (mounts, network namespaces, cgroups, systemd-nspawn)')


def require_tools(tools):
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise FleetUnavailable('%s is not installed (Debian package %s)' % (tool, package))


def check_host_names(names):
    for name in names:
        if not HOST_NAME_PATTERN.match(name):
            raise FleetError('%r is not a usable host name: lower-case letters, digits and dashes, at most 32' % name)
    if len(set(names)) != len(names):
        raise FleetError('a host name is given twice: %s' % ' '.join(names))


# --- state -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def fleet_lock():
    """One fleet command at a time per checkout."""
    FLEET_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, 'w', encoding='ascii') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_state():
    try:
        return json.loads(STATE_FILE.read_text(encoding='utf-8'))
    except FileNotFoundError:
        return {'hosts': {}}


def write_state(state):
    """Written before each resource is created, so that `down` finds it even after a crash."""
    temporary = STATE_FILE.with_suffix('.tmp')
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True) + '\n', encoding='utf-8')
    os.replace(temporary, STATE_FILE)


def host_dir(name):
    return FLEET_DIR / 'hosts' / name


def host_address(host):
    return '%s.%d' % (SUBNET, 10 + host['index'])


def netns_name(name):
    return '%s-%s' % (PREFIX, name)


def veth_name(host):
    return '%s-h%d' % (PREFIX, 10 + host['index'])


def host_mac(host):
    """Fixed per address: a host booted again is still reachable through every neighbour cache."""
    return '02:6c:62:66:4d:%02x' % (10 + host['index'])


# --- processes: only ever those recorded here ------------------------------------------------------

def process_record(pid):
    """A PID with its start time, so that a reused PID is never mistaken for ours."""
    return {'pid': pid, 'start': process_start_time(pid)}


def process_start_time(pid):
    """The start time of a live (not zombie) process, None when there is none."""
    try:
        stat = Path('/proc/%d/stat' % pid).read_text(encoding='ascii', errors='replace')
    except OSError:
        return None
    fields = stat.rsplit(')', 1)[1].split()
    if fields[0] == 'Z':
        return None
    return int(fields[19])


def is_running(record):
    return bool(record) and record['start'] is not None and process_start_time(record['pid']) == record['start']


def signal_recorded(record, signum):
    if is_running(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record['pid'], signum)


def read_record(path):
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (FileNotFoundError, ValueError):
        return None


# --- mounts and directories ------------------------------------------------------------------------

def mount_points():
    """Mount points of this mount namespace, with /proc/self/mountinfo's octal escapes decoded."""
    points = []
    for line in Path('/proc/self/mountinfo').read_text(encoding='utf-8').splitlines():
        escaped = line.split()[4]
        points.append(re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), escaped))
    return points


def mounts_under(path):
    prefix = str(path).rstrip('/') + '/'
    return [point for point in mount_points() if point == str(path) or point.startswith(prefix)]


def remove_tree(path):
    """rm -rf that never follows into a mount (a leftover /proc of a build or a host's root)."""
    if not path.exists():
        return
    mounted = mounts_under(path)
    if mounted:
        raise FleetError('%s is still mounted; unmount it, then run this again' % mounted[0])
    run(['rm', '-rf', '--one-file-system', str(path)])


# --- rootfs ----------------------------------------------------------------------------------------

def rootfs_key():
    recipe = {'suite': SUITE, 'mirror': MIRROR, 'packages': sorted(ROOTFS_PACKAGES), 'layout': ROOTFS_LAYOUT,
              'dpkg_excludes': DPKG_EXCLUDES, 'off_at_boot': SERVICES_OFF_AT_BOOT}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def rootfs_paths():
    """The cached tarball and the directory it is unpacked into (the hosts' shared lower layer)."""
    stem = FLEET_DIR / ('rootfs-' + rootfs_key())
    return stem.with_name(stem.name + '.tar.zst'), stem


def build_rootfs(tarball):
    require_tools(BUILD_TOOLS)
    staging = tarball.with_name(tarball.name + '.build')
    remove_tree(staging)
    started = time.monotonic()
    argv = ['mmdebstrap', '--variant=minbase', '--include=' + ','.join(ROOTFS_PACKAGES)]
    argv += ['--dpkgopt=' + option for option in DPKG_EXCLUDES]
    result = subprocess.run(argv + [SUITE, str(staging), MIRROR], stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise FleetError('mmdebstrap failed (exit %d); its output is above' % result.returncode)
    customize_rootfs(staging)
    partial = tarball.with_name(tarball.name + '.part')
    run(['tar', '--create', '--file', str(partial), '--use-compress-program', 'zstd -T0 -3 -q', '--directory',
         str(staging), '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '.'])
    os.replace(partial, tarball)
    log('built %s in %.0f s' % (tarball, time.monotonic() - started))
    return staging


def customize_rootfs(root):
    """Scrub what leaks from the build machine; each host gets its own identity at `up`."""
    for key in (root / 'etc' / 'ssh').glob('ssh_host_*'):
        key.unlink()
    for name in ('machine-id', 'hostname', 'resolv.conf'):
        path = root / 'etc' / name
        if path.is_symlink():
            path.unlink()
        path.write_text('', encoding='ascii')
    ssh_dir = root / 'root' / '.ssh'
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    # Nothing to fetch without a network, and a dpkg lock held at random would break idempotence.
    for timer in ('apt-daily.timer', 'apt-daily-upgrade.timer'):
        masked = root / 'etc' / 'systemd' / 'system' / timer
        if masked.exists() or masked.is_symlink():
            masked.unlink()
        masked.symlink_to('/dev/null')
    run(['systemctl', '--root', str(root), 'disable', '--quiet'] + list(SERVICES_OFF_AT_BOOT))


def unpack_rootfs(tarball, directory):
    staging = directory.with_name(directory.name + '.unpack')
    remove_tree(staging)
    staging.mkdir()
    started = time.monotonic()
    run(['tar', '--extract', '--file', str(tarball), '--zstd', '--directory', str(staging), '--numeric-owner',
         '--xattrs', '--xattrs-include=*'])
    log('unpacked %s in %.1f s' % (tarball.name, time.monotonic() - started))
    return staging


def ensure_rootfs(state):
    """The unpacked rootfs of the current package list: reused, unpacked from the cache, or built."""
    tarball, directory = rootfs_paths()
    if directory.is_dir():
        return directory
    if tarball.is_file():
        staging = unpack_rootfs(tarball, directory)
    else:
        staging = build_rootfs(tarball)
    os.replace(staging, directory)
    prune_rootfs_caches(state, keep=(tarball, directory))
    return directory


def prune_rootfs_caches(state, keep):
    """Remove the rootfs of older package lists, unless a running host still uses it."""
    in_use = {host.get('rootfs') for host in state['hosts'].values()}
    for path in FLEET_DIR.glob('rootfs-*'):
        if path not in keep and str(path) not in in_use and not path.name.endswith(('.build', '.unpack')):
            log('removing the outdated %s' % path.name)
            if path.is_dir():
                remove_tree(path)
            else:
                path.unlink()


# --- ssh key and control sockets -------------------------------------------------------------------

def ensure_key():
    if not KEY_FILE.exists():
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', PREFIX, '-f', str(KEY_FILE)])
    return KEY_FILE.with_name(KEY_FILE.name + '.pub').read_text(encoding='ascii')


def ensure_control_dir():
    CONTROL_DIR.mkdir(mode=0o700, exist_ok=True)
    if CONTROL_DIR.is_symlink() or CONTROL_DIR.stat().st_uid != os.geteuid():
        raise FleetError('%s belongs to someone else; remove it' % CONTROL_DIR)


# --- cgroups ---------------------------------------------------------------------------------------

def cgroup_hierarchies():
    """Where this machine mounts the systemd (v1, name=systemd) and unified (v2) cgroup hierarchies.

    Hybrid machines have both, and each host needs its own cgroup in both, or systemd-nspawn with
    --keep-unit puts every container in one cgroup and they fight. Pure cgroup2 machines have one.
    """
    found = []
    for line in Path('/proc/self/mountinfo').read_text(encoding='utf-8').splitlines():
        before, after = line.split(' - ', 1)
        mount_point = before.split()[4]
        fstype, options = after.split()[0], after.split()[2]
        if not mount_point.startswith('/sys/fs/cgroup'):
            continue
        if fstype == 'cgroup2' or (fstype == 'cgroup' and 'name=systemd' in options.split(',')):
            found.append(Path(mount_point))
    if not found:
        raise FleetUnavailable('no systemd or unified cgroup hierarchy is mounted under /sys/fs/cgroup')
    return sorted(found)


def host_cgroups(state, name):
    return [Path(parent) / PREFIX / name for parent in state['cgroup_hierarchies']]


def join_cgroups(cgroups):
    """Runs in the child before exec: nspawn starts inside the host's own cgroups."""
    for cgroup in cgroups:
        with open(cgroup / 'cgroup.procs', 'w', encoding='ascii') as procs:
            procs.write(str(os.getpid()))


def cgroup_members(cgroup):
    pids = []
    for directory, _subdirs, files in os.walk(cgroup):
        if 'cgroup.procs' in files:
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in Path(directory, 'cgroup.procs').read_text(encoding='ascii').split()]
    return pids


def remove_cgroup(cgroup):
    """rmdir the cgroup and its children, deepest first; False while processes remain in it."""
    if not cgroup.is_dir():
        return True
    for directory, _subdirs, _files in os.walk(cgroup, topdown=False):
        try:
            os.rmdir(directory)
        except OSError:
            return False
    return True


def empty_and_remove_cgroup(cgroup, timeout=10.0):
    """SIGKILL what is left in a host's cgroup (the container's processes once its nspawn is gone),
    until it can be removed."""
    deadline = time.monotonic() + timeout
    while not remove_cgroup(cgroup):
        if time.monotonic() > deadline:
            raise FleetError('%s still has processes after %.0f s' % (cgroup, timeout))
        for pid in cgroup_members(cgroup):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


# --- network ---------------------------------------------------------------------------------------

def link_exists(name):
    return run(['ip', 'link', 'show', 'dev', name], check=False).returncode == 0


def netns_exists(name):
    return Path('/run/netns', name).exists()


def check_subnet_is_free():
    """Refuse to share 169.254.77.0/24 with anything not ours (another checkout's fleet, a VPN...)."""
    routes = run(['ip', '-4', '-o', 'route', 'show', 'match', '%s.0/%d' % (SUBNET, PREFIX_LENGTH)]).stdout
    for route in routes.splitlines():
        if ('%s.0/%d' % (SUBNET, PREFIX_LENGTH)) in route.split() and ('dev %s ' % BRIDGE) not in route + ' ':
            raise FleetError('%s.0/%d is already routed on this machine (%s); the fleet needs it to itself'
                             % (SUBNET, PREFIX_LENGTH, route.strip()))


def ensure_bridge(state):
    if not link_exists(BRIDGE):
        check_subnet_is_free()
        state['bridge'] = BRIDGE
        write_state(state)
        run(['ip', 'link', 'add', BRIDGE, 'type', 'bridge', 'forward_delay', '0'])
    elif not state.get('bridge'):
        raise FleetError('%s exists but this checkout did not create it: another fleet is up on this machine'
                         % BRIDGE)
    run(['ip', 'addr', 'replace', '%s/%d' % (CONTROLLER_ADDRESS, PREFIX_LENGTH), 'dev', BRIDGE])
    run(['ip', 'link', 'set', BRIDGE, 'up'])


def plug_host(name, host):
    """A network namespace whose eth0 is on the bridge: no default route, so no way out."""
    netns = netns_name(name)
    run(['ip', 'netns', 'add', netns])
    run(['ip', 'link', 'add', veth_name(host), 'type', 'veth', 'peer', 'name', 'eth0', 'address', host_mac(host),
         'netns', netns])
    run(['ip', 'link', 'set', veth_name(host), 'master', BRIDGE, 'up'])
    run(['ip', '-n', netns, 'addr', 'add', '%s/%d' % (host_address(host), PREFIX_LENGTH), 'dev', 'eth0'])
    run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up'])
    run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])


# --- one host --------------------------------------------------------------------------------------

def mount_root(name, lower):
    directory = host_dir(name)
    for layer in ('upper', 'work', 'root'):
        (directory / layer).mkdir(parents=True, exist_ok=True)
    options = 'lowerdir=%s,upperdir=%s,workdir=%s' % (lower, directory / 'upper', directory / 'work')
    run(['mount', '-t', 'overlay', PREFIX + '-' + name, '-o', options, str(directory / 'root')])
    return directory / 'root'


def personalize(root, name, public_key):
    """The host's own name, host keys and root's authorized key, written into its overlay."""
    (root / 'etc' / 'hostname').write_text(name + '\n', encoding='ascii')
    ssh_dir = root / 'root' / '.ssh'
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized_keys = ssh_dir / 'authorized_keys'
    authorized_keys.write_text(public_key, encoding='ascii')
    authorized_keys.chmod(0o600)
    run(['ssh-keygen', '-A', '-f', str(root)])


def write_hosts_files(state):
    """Every host resolves every other host (and the controller) by name."""
    lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback',
             '%s\t%s-controller' % (CONTROLLER_ADDRESS, PREFIX)]
    lines += ['%s\t%s' % (host_address(host), name) for name, host in sorted(state['hosts'].items())]
    for name in state['hosts']:
        root = host_dir(name) / 'root'
        if root.is_dir() and str(root) in mount_points():
            (root / 'etc' / 'hosts').write_text('\n'.join(lines) + '\n', encoding='ascii')


def nspawn_argv(name):
    return ['systemd-nspawn', '-q', '-D', str(host_dir(name) / 'root'), '-M', name, '--boot', '--register=no',
            '--keep-unit', '--network-namespace-path=/run/netns/' + netns_name(name), '--resolv-conf=off',
            '--timezone=off', '--link-journal=no', '--console=read-only']


def start_launcher(name):
    """`launch NAME` in a session of its own, outliving this command; its output goes to the console log."""
    LOG_DIR.mkdir(exist_ok=True)
    with open(console_log_path(name), 'wb') as console:
        launcher = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, str(Path(__file__).resolve()), 'launch', name], stdin=subprocess.DEVNULL,
            stdout=console, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(FLEET_DIR))
    return process_record(launcher.pid)


def bring_up(state, name, lower, public_key):
    host = state['hosts'][name]
    teardown_host(state, name)
    host['rootfs'] = str(lower)
    write_state(state)
    personalize(mount_root(name, lower), name, public_key)
    plug_host(name, host)
    for cgroup in host_cgroups(state, name):
        cgroup.mkdir(parents=True, exist_ok=True)
    host['launcher'] = start_launcher(name)
    write_state(state)


def teardown_host(state, name):
    """Undo whatever of bring_up happened, in reverse; safe to repeat."""
    host = state['hosts'][name]
    for cgroup in host_cgroups(state, name):
        empty_and_remove_cgroup(cgroup)
    root = host_dir(name) / 'root'
    if str(root) in mount_points():
        unmount(root)
    if netns_exists(netns_name(name)):
        run(['ip', 'netns', 'del', netns_name(name)])
    # Deleting the namespace deletes the veth pair too, but not at once.
    run(['ip', 'link', 'del', veth_name(host)], check=False)
    wait_until(lambda: not link_exists(veth_name(host)), 10.0, '%s to disappear' % veth_name(host))
    remove_tree(host_dir(name))
    host['launcher'] = None


def unmount(path):
    if run(['umount', str(path)], check=False).returncode != 0:
        time.sleep(0.5)
        if run(['umount', str(path)], check=False).returncode != 0:
            log('%s is busy: detaching it lazily' % path)
            run(['umount', '--lazy', str(path)])


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise FleetError('timed out after %.0f s waiting for %s' % (timeout, what))
        time.sleep(0.1)


def nspawn_record_path(name):
    return host_dir(name) / 'nspawn.json'


def console_log_path(name):
    return LOG_DIR / (name + '.console.log')


def stop_hosts(state, names):
    """TERM each host's launcher, or its nspawn when the launcher is gone: nspawn then powers the host off
    cleanly. KILL both after a timeout."""
    recorded = {name: (state['hosts'][name].get('launcher'), read_record(nspawn_record_path(name))) for name in names}
    for launcher, nspawn in recorded.values():
        signal_recorded(launcher if is_running(launcher) else nspawn, signal.SIGTERM)
    every_record = [record for pair in recorded.values() for record in pair]
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and any(map(is_running, every_record)):
        time.sleep(0.1)
    for name, (launcher, nspawn) in recorded.items():
        if is_running(launcher) or is_running(nspawn):
            log('%s did not power off within %.0f s: killing it' % (name, STOP_TIMEOUT))
            signal_recorded(nspawn, signal.SIGKILL)
            signal_recorded(launcher, signal.SIGKILL)


def kill_hosts(state, names):
    """KILL each host's nspawn and launcher at once, as a power cut would: nothing inside gets to shut down.
    What is left in the host's cgroup is killed when it is torn down."""
    for name in names:
        signal_recorded(read_record(nspawn_record_path(name)), signal.SIGKILL)
        signal_recorded(state['hosts'][name].get('launcher'), signal.SIGKILL)


def close_control_masters(state, names):
    """Ask the controller's shared ssh connections to the hosts to exit: a new host behind the address must not be
    reached through a connection to the one that is gone."""
    for name in names:
        address = host_address(state['hosts'][name])
        run(['ssh', '-o', 'ControlPath=%s/%%C' % CONTROL_DIR, '-O', 'exit', 'root@' + address], check=False)


# --- readiness -------------------------------------------------------------------------------------

def ssh_probe(address):
    argv = ['ssh', '-i', str(KEY_FILE), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2', '-o', 'ControlMaster=no',
            '-o', 'ControlPath=none'] + list(SSH_OPTIONS) + ['root@' + address, 'true']
    return subprocess.Popen(  # pylint: disable=consider-using-with
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_ssh(state, names, timeout):
    """Poll ssh on all hosts at once until each answers; fail early when a host's launcher died."""
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending:
        probes = {name: ssh_probe(host_address(state['hosts'][name])) for name in sorted(pending)}
        for name, probe in probes.items():
            if probe.wait() == 0:
                pending.discard(name)
            elif not is_running(state['hosts'][name]['launcher']):
                raise FleetError('%s stopped while booting; see %s' % (name, console_log_path(name)))
        if pending and time.monotonic() > deadline:
            raise FleetError('no ssh answer within %.0f s from %s; see their console logs in %s'
                             % (timeout, ' '.join(sorted(pending)), LOG_DIR))
        if pending:
            time.sleep(0.2)


# --- inventory -------------------------------------------------------------------------------------

def ssh_common_args():
    return ('-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto '
            '-o ControlPersist=60s -o ControlPath=%s/%%C' % CONTROL_DIR)


def inventory_yaml(state):
    """The fleet as an Ansible YAML inventory: group `fleet`; scalars are JSON strings, valid YAML."""
    lines = ['# The running test fleet, written by tests/fleet/fleet.py.', 'all:', '  children:', '    fleet:',
             '      hosts:']
    for name, host in sorted(state['hosts'].items()):
        lines += ['        %s:' % name, '          ansible_host: %s' % json.dumps(host_address(host))]
    variables = {
        'ansible_user': 'root',
        'ansible_ssh_private_key_file': str(KEY_FILE),
        'ansible_ssh_common_args': ssh_common_args(),
        'ansible_python_interpreter': '/usr/bin/python3',
    }
    lines += ['      vars:'] + ['        %s: %s' % (key, json.dumps(value)) for key, value in variables.items()]
    return '\n'.join(lines) + '\n'


# --- commands --------------------------------------------------------------------------------------

def command_rootfs(_args):
    require_root()
    require_tools({'tar': 'tar', 'zstd': 'zstd'})
    with fleet_lock():
        print(ensure_rootfs(read_state()))
    return 0


def check_machine():
    """Everything `up` needs of this machine; FleetUnavailable names the first thing missing."""
    require_root()
    require_tools(REQUIRED_TOOLS)
    tarball, directory = rootfs_paths()
    if not (directory.is_dir() or tarball.is_file()):
        try:
            require_tools(BUILD_TOOLS)
        except FleetUnavailable as error:
            raise FleetUnavailable('%s, and %s is not cached' % (error, tarball.name)) from None
    return cgroup_hierarchies()


def command_check(_args):
    check_machine()
    log('this machine can run a fleet')
    return 0


def command_up(args):
    check_host_names(args.hosts)
    hierarchies = check_machine()
    with fleet_lock():
        state = read_state()
        state.setdefault('cgroup_hierarchies', [str(path) for path in hierarchies])
        public_key = ensure_key()
        lower = ensure_rootfs(state)
        ensure_bridge(state)
        ensure_control_dir()
        booting = assign_hosts(state, args.hosts)
        write_state(state)
        started = time.monotonic()
        stop_hosts(state, booting)  # what is left of them after their launcher died
        for name in booting:
            bring_up(state, name, lower, public_key)
        write_hosts_files(state)
        wait_for_ssh(state, booting, args.timeout)
        INVENTORY_FILE.write_text(inventory_yaml(state), encoding='utf-8')
    if booting:
        log('%s up in %.1f s' % (' '.join(booting), time.monotonic() - started))
    log('inventory: %s' % INVENTORY_FILE)
    return 0


def assign_hosts(state, names):
    """Record the hosts to boot (those not running yet), each with the lowest free address."""
    hosts = state['hosts']
    booting = [name for name in names if not is_running(hosts.get(name, {}).get('launcher'))]
    taken = {host['index'] for host in hosts.values()}
    for name in booting:
        if name not in hosts:
            free = next((index for index in range(1, MAX_HOSTS + 1) if index not in taken), None)
            if free is None:
                raise FleetError('the fleet is full: at most %d hosts' % MAX_HOSTS)
            taken.add(free)
            hosts[name] = {'index': free, 'launcher': None}
    return booting


def command_down(_args):
    if not STATE_FILE.exists():
        log('no fleet is up')
        return 0
    require_root()
    with fleet_lock():
        state = read_state()
        names = sorted(state['hosts'])
        stop_hosts(state, names)
        for name in names:
            teardown_host(state, name)
            del state['hosts'][name]
            write_state(state)
        remove_shared(state)
        STATE_FILE.unlink()
        with contextlib.suppress(FileNotFoundError):
            INVENTORY_FILE.unlink()
    log('down: %s' % (' '.join(names) or 'nothing was running'))
    return 0


def command_destroy(args):
    check_host_names(args.hosts)
    require_root()
    with fleet_lock():
        state = read_state()
        unknown = [name for name in args.hosts if name not in state['hosts']]
        if unknown:
            raise FleetError('no such host in the fleet: %s (hosts: %s)'
                             % (' '.join(unknown), ' '.join(sorted(state['hosts'])) or 'none'))
        kill_hosts(state, args.hosts)
        close_control_masters(state, args.hosts)
        for name in args.hosts:
            teardown_host(state, name)
            write_state(state)
    log('destroyed: %s (their addresses stay theirs: `up` boots them again, empty)' % ' '.join(args.hosts))
    return 0


def remove_shared(state):
    if state.get('bridge') and link_exists(BRIDGE):
        run(['ip', 'link', 'del', BRIDGE])
    for parent in state.get('cgroup_hierarchies', []):
        remove_cgroup(Path(parent) / PREFIX)
    remove_tree(FLEET_DIR / 'hosts')
    if CONTROL_DIR.is_dir():
        shutil.rmtree(CONTROL_DIR, ignore_errors=True)


def command_inventory(args):
    state = read_state()
    if not state['hosts']:
        raise FleetError('no fleet is up: run `fleet.py up HOST...` first')
    text = inventory_yaml(state)
    if args.output:
        Path(args.output).write_text(text, encoding='utf-8')
    else:
        sys.stdout.write(text)
    return 0


def command_status(_args):
    state = read_state()
    tarball, directory = rootfs_paths()
    print('rootfs   %s (%s)' % (tarball, 'cached' if tarball.is_file() else 'not built yet')
          + (', unpacked' if directory.is_dir() else ''))
    if not state['hosts']:
        print('no fleet is up')
        return 0
    print('bridge   %s %s' % (BRIDGE, 'up' if link_exists(BRIDGE) else 'missing'))
    down = 0
    for name, host in sorted(state['hosts'].items()):
        running = is_running(host.get('launcher'))
        down += not running
        print('%-24s %-16s %s' % (name, host_address(host), 'running' if running else 'not running'))
    return 1 if down else 0


def command_launch(args):
    """Keep one host booted: start nspawn again after a reboot (exit 133); on SIGTERM, power it off."""
    state = read_state()
    cgroups = host_cgroups(state, args.host)
    stopping = []
    current = []

    def request_stop(_signum, _frame):
        stopping.append(True)
        for child in current:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    returncode = 0
    while not stopping:
        # preexec_fn, not the launcher itself, joins the cgroups: on cgroup2 a cgroup whose controllers are
        # delegated may hold no process of its own, and nspawn's supervisor moves into a child of it.
        child = subprocess.Popen(  # pylint: disable=consider-using-with,subprocess-popen-preexec-fn
            nspawn_argv(args.host), stdin=subprocess.DEVNULL, preexec_fn=functools.partial(join_cgroups, cgroups))
        current[:] = [child]
        if stopping:
            child.terminate()
        nspawn_record_path(args.host).write_text(json.dumps(process_record(child.pid)), encoding='utf-8')
        returncode = child.wait()
        if returncode != EXIT_REBOOT:
            break
        log('%s rebooted: starting it again' % args.host)
    return returncode


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='fleet.py', description=__doc__.split('\n', 1)[0])
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    commands.add_parser('check', help='exit 77 with the reason when this machine cannot run a fleet')
    commands.add_parser('rootfs', help='build or reuse the cached rootfs, print its directory')
    up = commands.add_parser('up', help='boot hosts and wait until they answer ssh')
    up.add_argument('hosts', nargs='+', metavar='HOST')
    up.add_argument('--timeout', type=float, default=120.0, help='seconds to wait for ssh (default 120)')
    destroy = commands.add_parser('destroy', help='lose hosts: kill them, remove their disks; `up` boots them empty')
    destroy.add_argument('hosts', nargs='+', metavar='HOST')
    commands.add_parser('down', help='stop every host, remove everything the fleet created')
    inventory = commands.add_parser('inventory', help='print the Ansible inventory (YAML) of the fleet')
    inventory.add_argument('-o', '--output', help='write it to this file instead')
    commands.add_parser('status', help='show the fleet; exit 1 when a recorded host is not running')
    launch = commands.add_parser('launch', help='(used by up) keep one host booted')
    launch.add_argument('host')
    return parser.parse_args(argv)


COMMANDS = {
    'check': command_check,
    'rootfs': command_rootfs,
    'up': command_up,
    'destroy': command_destroy,
    'down': command_down,
    'inventory': command_inventory,
    'status': command_status,
    'launch': command_launch,
}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except FleetUnavailable as error:
        print('fleet: unavailable: %s' % error, file=sys.stderr)
        return EXIT_UNAVAILABLE
    except FleetError as error:
        log('error: %s' % error)
        if args.command == 'up' and STATE_FILE.exists():
            log('run `fleet.py down` to remove what was created')
        return 1


if __name__ == '__main__':
    sys.exit(main())
