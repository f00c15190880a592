# -*- coding: utf-8 -*-
# Copyright: lifeboat.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's version, recorded in every backup's metadata (kept equal to galaxy.yml's)."""

VERSION = "0.1.0"
