"""`make test`'s own decisions, on the real Makefile: it stops before running anything when system packages are
missing, the molecule stage fails when the fleet cannot run unless the run is partial, and the closing summary
gives every stage's outcome and what it skipped. The fleet check is replaced by a script that only exits with
its code, molecule by echo; everything is built in a directory of the test's own."""

import os
import re
import subprocess

import pytest

import testlib

SCENARIOS = len([name for name in os.listdir(os.path.join(testlib.ROOT, "molecule"))
                 if os.path.exists(os.path.join(testlib.ROOT, "molecule", name, "molecule.yml"))])


@pytest.fixture
def workdir():
    """A directory that nobody may write to too."""
    with testlib.shared_directory(0o777) as directory:
        yield directory


def write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def make_test(workdir, *assignments, ordinary_user=False, **variables):
    """Run make test in the checkout with its build directory and bindep file in workdir; the virtual
    environment counts as up to date (a fresh stamp), so nothing is installed into it."""
    stamp = write(os.path.join(workdir, "venv.stamp"), "")
    bindep = write(os.path.join(workdir, "bindep.txt"), "tar [platform:dpkg]\n")
    return subprocess.run(
        ["make", "--no-print-directory", "-C", testlib.ROOT, "test", "BUILD=" + os.path.join(workdir, "build"),
         "VENV_STAMP=" + stamp, "BINDEP=" + bindep, "PYTHON=/usr/bin/python3", *assignments],
        capture_output=True, text=True, check=False, env=testlib.nested_env(**variables),
        preexec_fn=testlib.drop_root if ordinary_user else None)


def summary(result):
    """The closing summary's lines, durations as Ns."""
    closing = result.stdout.split("==> summary", 1)[1].split("\n", 1)[1]
    return re.sub(r"after \d+s", "after Ns", closing).splitlines()


def molecule_only(workdir, check_code):
    fleet_check = write(os.path.join(workdir, "fleet-check"),
                        "#!/bin/sh\necho 'fleet: unavailable: not root'\nexit %d\n" % check_code, 0o755)
    return ("TEST_STAGES=deps molecule", "FLEET_CHECK=" + fleet_check, "MOLECULE_TEST=echo molecule test ran")


def test_missing_system_packages_stop_the_run_before_anything(workdir):
    bindep = write(os.path.join(workdir, "missing.txt"), "tar [platform:dpkg]\nlifeboat-no-such-package [platform:dpkg]\n")
    result = make_test(workdir, "BINDEP=" + bindep, ordinary_user=True)
    assert result.returncode != 0
    assert "deps: these system packages that %s lists are not installed: lifeboat-no-such-package" % bindep \
        in result.stderr
    assert "sudo sh -c 'apt-get update && apt-get install -y -q --no-install-recommends lifeboat-no-such-package'" \
        in result.stderr
    assert summary(result) == ["deps: FAILED after Ns"] + [
        "%s: not run" % stage for stage in ("venv", "unit", "integration", "core-compat", "sanity", "lint", "molecule")]
    assert "==> venv" not in result.stdout


def test_a_fleet_that_cannot_run_fails_a_full_run(workdir):
    result = make_test(workdir, *molecule_only(workdir, 77))
    assert result.returncode != 0
    assert ("molecule: missing part: not root; a full run needs the fleet (see tests/fleet/README.md), or set "
            "LIFEBOAT_PARTIAL=1 for a partial run") in result.stderr
    assert "molecule test ran" not in result.stdout
    assert summary(result) == ["deps: passed after Ns",
                               "molecule: FAILED after Ns, %d scenarios not run, missing part: not root" % SCENARIOS]


@pytest.mark.parametrize("how", ["environment", "make variable"])
def test_a_partial_run_skips_molecule_and_says_why(workdir, how):
    if how == "environment":
        result = make_test(workdir, *molecule_only(workdir, 77), LIFEBOAT_PARTIAL="1")
    else:
        result = make_test(workdir, *molecule_only(workdir, 77), "LIFEBOAT_PARTIAL=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "molecule test ran" not in result.stdout
    assert "==> summary of a partial run (LIFEBOAT_PARTIAL=1)" in result.stdout
    assert summary(result) == [
        "deps: passed after Ns",
        "molecule: passed after Ns, %d scenarios skipped (partial run, LIFEBOAT_PARTIAL=1): not root" % SCENARIOS]


def test_a_fleet_that_can_run_runs_molecule(workdir):
    result = make_test(workdir, *molecule_only(workdir, 0))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "molecule test ran" in result.stdout
    assert summary(result) == ["deps: passed after Ns", "molecule: passed after Ns, 0 skipped"]


def test_a_fleet_check_that_fails_otherwise_fails_the_stage(workdir):
    result = make_test(workdir, *molecule_only(workdir, 1), LIFEBOAT_PARTIAL="1")
    assert result.returncode != 0
    assert "fleet: unavailable: not root" in result.stdout
    assert "molecule test ran" not in result.stdout
    assert summary(result)[-1] == "molecule: FAILED after Ns"


def test_the_summary_gives_each_pytest_stage_s_skips(workdir):
    """The unit stage on one tiny test file that skips: its line in the closing summary names the reason."""
    tiny = write(os.path.join(workdir, "test_tiny.py"),
                 'import pytest\n\n\ndef test_needs_a_tool():\n    pytest.skip("frobnicator is not installed")\n')
    result = make_test(workdir, "TEST_STAGES=unit",
                       "UNIT_ARGS=-p missing_parts -p no:cacheprovider --rootdir %s %s" % (workdir, tiny),
                       LIFEBOAT_PARTIAL="1", PYTHONPATH=testlib.TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(result) == ["unit: passed after Ns, 1 skipped (partial run, LIFEBOAT_PARTIAL=1)",
                               "    1 × frobnicator is not installed"]


def test_an_unknown_value_of_the_variable_is_refused(workdir):
    result = make_test(workdir, *molecule_only(workdir, 0), "LIFEBOAT_PARTIAL=yes")
    assert result.returncode == 2
    assert ("LIFEBOAT_PARTIAL='yes': set it to 1 for a partial run, or leave it unset (or 0) for a full run"
            in result.stderr)
    assert result.stdout == ""
