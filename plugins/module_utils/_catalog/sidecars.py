# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup's sidecars: the `sha256sum -c` checksum and the JSON metadata, written checksum first, metadata last."""

from __future__ import annotations

import json
import os
import re

from .._errors import IntegrityError, NotFoundError
from .._fileio import write_atomic
from .layout import CHECKSUM_SUFFIX, METADATA_SUFFIX, strip_artifact_suffix


def checksum_line(sha256, artifact_name):
    """One line in `sha256sum` format: two spaces between digest and file name."""
    return "%s  %s\n" % (sha256, artifact_name)


def write_sidecars(artifact_path, metadata):
    """Checksum first, metadata last: the metadata file is what makes the backup part of the catalog."""
    base = strip_artifact_suffix(artifact_path)
    write_atomic(base + CHECKSUM_SUFFIX, checksum_line(metadata["sha256"], os.path.basename(artifact_path)).encode())
    write_metadata(base + METADATA_SUFFIX, metadata)


def write_metadata(path, metadata):
    write_atomic(path, (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_metadata(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise NotFoundError("no metadata at %s" % path)
    except ValueError as exc:
        raise IntegrityError("the metadata file %s is not valid JSON: %s" % (path, exc))


def read_checksum(path):
    """Return (digest, file name) from a `sha256sum` line."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            line = handle.readline()
    except FileNotFoundError:
        raise NotFoundError("the checksum sidecar %s is missing" % path)
    match = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line.rstrip("\n"))
    if not match:
        raise IntegrityError("the checksum sidecar %s is not in sha256sum format" % path)
    return match.group(1), match.group(2)
