# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Summarise ``ansible-test sanity --junit`` results and fail if a test that must run was skipped.

ansible-test skips a test quietly when it finds no file to check: a collection copy that ansible-test
cannot list (for example one inside an ignored directory of another git repository) passes with
everything skipped. Usage: ``check_results.py JUNIT_DIR COLLECTION_DIR [SUMMARY_FILE]``; SUMMARY_FILE gets
how many tests were skipped and why, for the closing summary of ``make test``.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import sys
from xml.etree import ElementTree

# Tests that have files to check in any state of this collection.
ALWAYS_REQUIRED = ('changelog', 'compile', 'import', 'pep8', 'pylint', 'runtime-metadata', 'shebang', 'symlinks',
                   'yamllint')
# Tests that have files to check once the collection has a module.
REQUIRED_WITH_MODULES = ('ansible-doc', 'validate-modules')


def test_name(case_name):
    """Return the sanity test's name without the Python version ansible-test appends."""
    return re.sub(r'-python-[0-9.]+$', '', case_name)


def read_results(junit_dir):
    """Return {test name: 'passed' | 'failed' | 'skipped'} and {skipped test's name: reason} from the JUnit files."""
    results, reasons = {}, {}
    for path in sorted(glob.glob(os.path.join(junit_dir, '*.xml'))):
        for case in ElementTree.parse(path).iter('testcase'):
            name = test_name(case.get('name'))
            skipped = case.find('skipped')
            if case.find('failure') is not None or case.find('error') is not None:
                outcome = 'failed'
            elif skipped is not None:
                outcome = 'skipped'
                reasons[name] = (skipped.text or skipped.get('message') or 'no reason given').strip()
            else:
                outcome = 'passed'
            results[name] = outcome
    return results, reasons


def skip_summary(reasons):
    """How many tests were skipped, and the names of those skipped for each reason."""
    by_reason = collections.defaultdict(list)
    for name in sorted(reasons):
        by_reason[reasons[name]].append(name)
    return '%d skipped%s\n' % (len(reasons), ''.join('\n    %s: %s' % (', '.join(names), reason)
                                                     for reason, names in sorted(by_reason.items())))


def required_tests(collection_dir):
    """Return the names of the tests that must not be skipped for this collection."""
    modules = glob.glob(os.path.join(collection_dir, 'plugins', 'modules', '*.py'))
    return ALWAYS_REQUIRED + (REQUIRED_WITH_MODULES if modules else ())


def names_with(results, outcome):
    """Return the sorted names of the tests with the given outcome."""
    return sorted(name for name, result in results.items() if result == outcome)


def main():
    """Print the summary; exit 1 when a required test was skipped or no result was written."""
    junit_dir, collection_dir = sys.argv[1:3]
    results, reasons = read_results(junit_dir)
    if len(sys.argv) > 3:
        with open(sys.argv[3], 'w', encoding='utf-8') as handle:
            handle.write(skip_summary(reasons))
    for outcome in ('passed', 'skipped', 'failed'):
        print('sanity %s: %s' % (outcome, ', '.join(names_with(results, outcome)) or '-'))
    print('sanity: %d passed, %d failed, %d skipped' % tuple(
        len(names_with(results, outcome)) for outcome in ('passed', 'failed', 'skipped')))
    missing = [name for name in required_tests(collection_dir) if results.get(name) not in ('passed', 'failed')]
    if missing:
        print('sanity: these tests did not run although they have files to check: %s' % ', '.join(missing))
        sys.exit(1)


if __name__ == '__main__':
    main()
