# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install the Debian packages a bindep file lists, or stop with the list of those missing.

`make deps` (the first stage of `make test`) runs it with the system's python3: the virtual environment
does not exist yet, so it uses the standard library only. A package is missing when dpkg-query does not
report it installed. As root with apt-get, the missing packages (only those) are installed
non-interactively; otherwise it exits 1 with their list and the command that installs them.

Usage: ``system_deps.py [--partial] [--dry-run] BINDEP_FILE``. ``--partial`` (a partial run,
LIFEBOAT_PARTIAL=1) reports missing packages it cannot install and exits 0. ``--dry-run`` prints the apt-get
commands instead of running them. Exit codes: 0 ready, 1 packages missing or not installed, 2 bad usage or
bindep file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

# A bindep rule: a package name, then optional [selectors] and version constraints (which are not checked).
RULE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9.+:-]*)\s*(?:\[(?P<selectors>[^\]]*)\])?\s*(?P<version>[<>=!].*)?")
APT_INSTALL = ("apt-get", "install", "-y", "-q", "--no-install-recommends")


class BindepError(Exception):
    """The bindep file cannot be read or has a line that is not a rule."""


def dpkg_packages(path):
    """Return the names of the rules in the bindep file at path that apply to Debian (platform:dpkg).

    As in bindep, a rule applies when it names no platform, or names platform:dpkg, and is not
    !platform:dpkg. Profiles are not distinguished: every rule here is for the tests.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise BindepError("cannot read %s: %s" % (path, exc.strerror)) from exc
    names = []
    for number, line in enumerate(lines, 1):
        rule = line.split("#", 1)[0].strip()
        if not rule:
            continue
        match = RULE.fullmatch(rule)
        if match is None:
            raise BindepError("%s:%d: not a bindep rule (NAME [SELECTORS] [VERSION]): %r" % (path, number, line))
        selectors = (match.group("selectors") or "").split()
        platforms = [s for s in selectors if s.startswith("platform:")]
        if "!platform:dpkg" not in selectors and (not platforms or "platform:dpkg" in platforms):
            names.append(match.group("name"))
    if not names:
        raise BindepError("%s lists no package for platform:dpkg" % path)
    return names


def missing_packages(names):
    """Return the names that dpkg-query does not report installed, in the given order."""
    result = subprocess.run(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n", *names],
                            capture_output=True, text=True, check=False)
    # Exit 1 only means that some names are unknown: they are missing like the not installed ones.
    if result.returncode not in (0, 1):
        raise BindepError("dpkg-query failed (exit %d): %s" % (result.returncode, result.stderr.strip()))
    installed = {line.split()[0].split(":")[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [name for name in names if name.split(":")[0] not in installed]


def apt_get(argv, dry_run):
    """Run apt-get without questions and without standard input; return its exit code."""
    print("deps: %s%s" % ("would run: " if dry_run else "", " ".join(argv)), flush=True)
    if dry_run:
        return 0
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False,
                          env=dict(os.environ, DEBIAN_FRONTEND="noninteractive")).returncode


def install(source, missing, dry_run):
    """apt-get update once, then install the missing packages; return the exit code for main."""
    print("deps: installing the %d system package(s) that %s lists and this machine lacks: %s"
          % (len(missing), source, " ".join(missing)), flush=True)
    for argv in (("apt-get", "update", "-q"), APT_INSTALL + tuple(missing)):
        code = apt_get(argv, dry_run)
        if code != 0:
            print("deps: %s failed (exit %d); no test was run" % (" ".join(argv[:2]), code), file=sys.stderr)
            return 1
    still_missing = [] if dry_run else missing_packages(missing)
    if still_missing:
        print("deps: still not installed after apt-get install: %s" % " ".join(still_missing), file=sys.stderr)
        return 1
    return 0


def refuse(source, missing, why, partial):
    """Say what is missing and how to install it; return the exit code for main."""
    print("deps: these system packages that %s lists are not installed: %s" % (source, " ".join(missing)),
          file=sys.stderr)
    print("deps: %s; install them with:\n    sudo sh -c 'apt-get update && %s %s'"
          % (why, " ".join(APT_INSTALL), " ".join(missing)), file=sys.stderr)
    if partial:
        print("deps: partial run (LIFEBOAT_PARTIAL=1): going on without them; the tests that need them skip",
              file=sys.stderr)
        return 0
    print("deps: no test was run; for a partial run that skips what needs them: LIFEBOAT_PARTIAL=1 make test",
          file=sys.stderr)
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--partial", action="store_true", help="report missing packages and exit 0")
    parser.add_argument("--dry-run", action="store_true", help="print the apt-get commands, run none")
    parser.add_argument("bindep", help="the bindep file (bindep.txt)")
    args = parser.parse_args(argv)
    try:
        names = dpkg_packages(args.bindep)
        if shutil.which("dpkg-query") is None:
            missing = names
            why = "dpkg-query is not installed, so nothing can be checked (these are Debian names)"
        else:
            missing = missing_packages(names)
            why = "only root can install them" if os.geteuid() != 0 else "apt-get is not installed"
    except BindepError as exc:
        print("deps: %s" % exc, file=sys.stderr)
        return 2
    if not missing:
        print("deps: the %d system packages that %s lists are installed" % (len(names), args.bindep))
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get") and shutil.which("dpkg-query"):
        return install(args.bindep, missing, args.dry_run)
    return refuse(args.bindep, missing, why, args.partial)


if __name__ == "__main__":
    sys.exit(main())
