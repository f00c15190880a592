# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest hooks: a test that skips for a missing part (a server, a tool, root...) fails, unless the run is partial.

Tests skip with a reason that names what they lack (require_binary, skipif, ServerUnavailable...). In a full
run, the default, such a skip becomes a failure with that reason; LIFEBOAT_PARTIAL=1 asks for a partial run in
which they stay skips. Either way the terminal summary states how many tests skipped and why, and writes the
same lines to the file named by LIFEBOAT_SUMMARY when set (`make test` prints them in its closing summary).
tests/conftest.py imports these hooks.
"""

from __future__ import annotations

import collections
import os

import pytest

PARTIAL = "LIFEBOAT_PARTIAL"
SUMMARY = "LIFEBOAT_SUMMARY"
_partial_key = pytest.StashKey[bool]()


def pytest_configure(config):
    value = os.environ.get(PARTIAL, "")
    if value not in ("", "0", "1"):
        raise pytest.UsageError("%s=%r: set it to 1 for a partial run, or leave it unset (or 0) for a full run"
                                % (PARTIAL, value))
    config.stash[_partial_key] = value == "1"


def _skip_reason(report):
    """The reason a skipped report gives, without pytest's "Skipped: " prefix."""
    message = report.longrepr[2] if isinstance(report.longrepr, (tuple, list)) else str(report.longrepr)
    return message.removeprefix("Skipped: ")


def _fail_if_full_run(config, report):
    if report.skipped and not hasattr(report, "wasxfail") and not config.stash[_partial_key]:
        report.missing_part = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = ("missing part: %s\nA full run needs every part: install what is missing (`make deps` "
                           "installs the system packages of bindep.txt), or set %s=1 for a partial run."
                           % (report.missing_part, PARTIAL))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item):
    report = yield
    _fail_if_full_run(item.config, report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _fail_if_full_run(collector.config, report)
    return report


def _counted(reasons):
    return "".join("\n    %d × %s" % (count, reason) for reason, count in collections.Counter(reasons).most_common())


def summary_lines(stats, partial):
    """How many tests skipped and why, and how many failed for a missing part (the reports' stats)."""
    skipped = [_skip_reason(report) for report in stats.get("skipped", ()) if not hasattr(report, "wasxfail")]
    missing = [report.missing_part for key in ("failed", "error") for report in stats.get(key, ())
               if getattr(report, "missing_part", None)]
    lines = ["%d skipped%s%s" % (len(skipped), " (partial run, %s=1)" % PARTIAL if partial else "",
                                 _counted(skipped))]
    if missing:
        lines.append("%d failed for a missing part%s" % (len(missing), _counted(missing)))
    return lines


def pytest_terminal_summary(terminalreporter, config):
    lines = summary_lines(terminalreporter.stats, config.stash[_partial_key])
    terminalreporter.write_sep("-", "skips")
    for line in lines:
        terminalreporter.write_line(line)
    if os.environ.get(SUMMARY):
        with open(os.environ[SUMMARY], "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
