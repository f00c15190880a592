"""A test that skips for a missing part fails unless the run is partial (LIFEBOAT_PARTIAL=1), and the summary
says how many tests skipped and why (tests/missing_parts.py), checked on a real pytest run of tiny tests."""

import subprocess
import sys
import textwrap

import pytest

import testlib

TINY = textwrap.dedent("""
    import pytest

    def test_passes():
        pass

    def test_needs_a_tool():
        pytest.skip("frobnicator is not installed")

    @pytest.mark.skipif(True, reason="needs root")
    def test_needs_root():
        pass

    @pytest.fixture
    def server():
        pytest.skip("PostgreSQL server binaries not found")

    def test_needs_a_server(server):
        pass

    def test_needs_it_too(server):
        pass

    @pytest.mark.xfail(reason="a known bug", strict=True)
    def test_known_bug():
        assert False
""")
HINT = ("A full run needs every part: install what is missing (`make deps` installs the system packages of "
        "bindep.txt), or set LIFEBOAT_PARTIAL=1 for a partial run.")
REASONS = ("    2 × PostgreSQL server binaries not found\n"
           "    1 × frobnicator is not installed\n"
           "    1 × needs root\n")


def run_pytest(directory, *options, **variables):
    """Run pytest on directory with the hooks of missing_parts; return (its result, the summary file's text)."""
    summary = directory / "summary.txt"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "missing_parts", "-p", "no:cacheprovider", "--rootdir",
         str(directory), *options, str(directory)],
        capture_output=True, text=True, check=False,
        env=testlib.nested_env(PYTHONPATH=testlib.TESTS, LIFEBOAT_SUMMARY=str(summary), **variables))
    return result, summary.read_text(encoding="utf-8") if summary.exists() else None


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("options, variables", [((), {}), (("-n", "2"), {}), ((), {"LIFEBOAT_PARTIAL": "0"})],
                         ids=["one process", "xdist", "variable 0"])
def test_a_full_run_fails_each_test_that_lacks_a_part(tiny, options, variables):
    result, summary = run_pytest(tiny, *options, **variables)
    assert result.returncode == 1, result.stdout
    for reason in ("frobnicator is not installed", "needs root", "PostgreSQL server binaries not found"):
        assert "missing part: %s\n%s" % (reason, HINT) in result.stdout
    assert "1 failed, 1 passed, 1 xfailed, 3 errors" in result.stdout
    assert summary == "0 skipped\n4 failed for a missing part\n" + REASONS
    assert summary in result.stdout


def test_a_partial_run_skips_and_says_why(tiny):
    result, summary = run_pytest(tiny, LIFEBOAT_PARTIAL="1")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 4 skipped, 1 xfailed" in result.stdout
    assert "missing part" not in result.stdout
    assert summary == "4 skipped (partial run, LIFEBOAT_PARTIAL=1)\n" + REASONS
    assert summary in result.stdout


def plain(directory):
    (directory / "test_plain.py").write_text("def test_passes():\n    pass\n", encoding="utf-8")


def test_a_run_that_skips_nothing_says_so(tmp_path):
    plain(tmp_path)
    result, summary = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout
    assert summary == "0 skipped\n"


def test_a_module_that_lacks_a_part_fails_its_collection(tmp_path):
    plain(tmp_path)
    (tmp_path / "test_module.py").write_text(
        'import pytest\n\npytest.importorskip("lifeboat_no_such_module")\n\n\ndef test_x():\n    pass\n',
        encoding="utf-8")
    result, summary = run_pytest(tmp_path)
    assert result.returncode == 2, result.stdout
    assert "missing part: could not import 'lifeboat_no_such_module'" in result.stdout
    assert summary.startswith("0 skipped\n1 failed for a missing part\n")
    assert "Interrupted: 1 error during collection" in result.stdout
    result, summary = run_pytest(tmp_path, LIFEBOAT_PARTIAL="1")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert summary.startswith("1 skipped (partial run, LIFEBOAT_PARTIAL=1)\n    1 × could not import")


def test_an_unknown_value_of_the_variable_is_refused(tiny):
    result, summary = run_pytest(tiny, LIFEBOAT_PARTIAL="yes")
    assert result.returncode == 4
    assert ("LIFEBOAT_PARTIAL='yes': set it to 1 for a partial run, or leave it unset (or 0) for a full run"
            in result.stderr)
    assert summary is None  # nothing ran
