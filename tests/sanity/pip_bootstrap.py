# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put pip into an empty virtual environment, in place of the get-pip script ansible-test downloads.

ansible-test creates each sanity test's virtual environment without pip and runs a cached
``get_pip_<version>.py`` with pip's install arguments (``pip==24.2 --no-setuptools --no-wheel ...``).
It fetches that script from a host outside the package index; ``make sanity`` stores this file under
that name instead. It installs the pip bundled with Python, which then installs the requested pip
from the package index, as get-pip does.
"""

from __future__ import annotations

import subprocess
import sys

# Options of get-pip itself, not of ``pip install``: no setuptools or wheel is installed anyway.
GET_PIP_OPTIONS = ('--no-setuptools', '--no-wheel')


def pip_install_arguments(argv):
    """Return the arguments for ``pip install`` from those given to get-pip."""
    return ['install', '--upgrade', '--force-reinstall'] + [arg for arg in argv if arg not in GET_PIP_OPTIONS]


def main():
    """Install the bundled pip, then the requested one."""
    # In a child process: ensurepip discards the pip configuration (certificates, index) of its own process.
    subprocess.check_call([sys.executable, '-m', 'ensurepip'])
    command = [sys.executable, '-m', 'pip'] + pip_install_arguments(sys.argv[1:])
    sys.exit(subprocess.call(command))


if __name__ == '__main__':
    main()
