"""`make deps` (tests/system_deps.py): installs only the missing Debian packages of a bindep file as root, and
otherwise stops with their list and the command that installs them. No test installs or removes a package:
root runs are dry runs."""

import os
import subprocess

import pytest

import system_deps
import testlib

SCRIPT = os.path.join(testlib.TESTS, "system_deps.py")
# The system's interpreter, as `make deps` uses: nobody may not be able to read a virtual environment's.
PYTHON = "/usr/bin/python3"
ABSENT = "lifeboat-no-such-package"
# tar is Essential on Debian: always installed.
BINDEP = "# a comment\ntar [platform:dpkg]\n%s [platform:dpkg]  # not in any archive\n" % ABSENT
COMMAND = "sudo sh -c 'apt-get update && apt-get install -y -q --no-install-recommends %s'" % ABSENT


@pytest.fixture
def bindep():
    """Write a bindep file that nobody can read too; yield a function of its text that returns its path."""
    with testlib.shared_directory() as directory:
        def write(text):
            path = os.path.join(directory, "bindep.txt")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, 0o644)
            return path
        yield write


def run(path, *options, ordinary_user=False):
    return subprocess.run([PYTHON, SCRIPT, *options, path], capture_output=True, text=True, check=False,
                          env=testlib.nested_env(), preexec_fn=testlib.drop_root if ordinary_user else None)


def test_an_ordinary_user_is_told_what_is_missing_and_how_to_install_it(bindep):
    path = bindep(BINDEP)
    result = run(path, ordinary_user=True)
    assert result.returncode == 1
    assert result.stdout == ""  # no apt-get command was announced, so none was run
    assert result.stderr.splitlines() == [
        "deps: these system packages that %s lists are not installed: %s" % (path, ABSENT),
        "deps: only root can install them; install them with:",
        "    " + COMMAND,
        "deps: no test was run; for a partial run that skips what needs them: LIFEBOAT_PARTIAL=1 make test"]
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == BINDEP


def test_a_partial_run_goes_on_without_the_missing_packages(bindep):
    result = run(bindep(BINDEP), "--partial", ordinary_user=True)
    assert result.returncode == 0
    assert COMMAND in result.stderr
    assert result.stderr.splitlines()[-1] == ("deps: partial run (LIFEBOAT_PARTIAL=1): going on without them; "
                                              "the tests that need them skip")


@pytest.mark.skipif(os.geteuid() != 0, reason="installing packages needs root")
def test_root_updates_once_and_installs_only_the_missing_packages(bindep):
    path = bindep(BINDEP)
    result = run(path, "--dry-run")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "deps: installing the 1 system package(s) that %s lists and this machine lacks: %s" % (path, ABSENT),
        "deps: would run: apt-get update -q",
        "deps: would run: apt-get install -y -q --no-install-recommends " + ABSENT]


def test_nothing_is_installed_when_nothing_is_missing(bindep):
    path = bindep("tar [platform:dpkg]\ndpkg [platform:dpkg]\n")
    result = run(path, "--dry-run")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "deps: the 2 system packages that %s lists are installed\n" % path


def test_only_the_rules_for_debian_are_read(bindep):
    path = bindep("\n".join(["# comment", "plain", "deb [platform:dpkg]", "rpm-only [platform:rpm]",
                             "both [platform:rpm platform:dpkg]", "not-deb [!platform:dpkg]",
                             "profiled [test]", "versioned [platform:dpkg] >=1.2", ""]))
    assert system_deps.dpkg_packages(path) == ["plain", "deb", "both", "profiled", "versioned"]


def test_the_repository_bindep_names_what_make_test_needs():
    names = system_deps.dpkg_packages(os.path.join(testlib.ROOT, "bindep.txt"))
    assert {"python3-venv", "make", "rsync", "age", "postgresql", "mariadb-server", "systemd-container"} <= set(names)


@pytest.mark.parametrize("text, message", [
    ("tar [platform:dpkg\n", ":1: not a bindep rule (NAME [SELECTORS] [VERSION]): 'tar [platform:dpkg'"),
    ("# only\nfoo [platform:rpm]\n", " lists no package for platform:dpkg"),
])
def test_a_bad_bindep_file_is_refused(bindep, text, message):
    path = bindep(text)
    result = run(path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "deps: %s%s\n" % (path, message)


def test_a_missing_bindep_file_is_refused(tmp_path):
    result = run(str(tmp_path / "nope.txt"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "deps: cannot read %s: No such file or directory\n" % (tmp_path / "nope.txt")
