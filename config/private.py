"""Directories and files that hold secrets (password hashes, presence secrets, keys, the
charger's state): created readable by the owner only.

A file that already exists with group or other bits is tightened, so an installation made
before this rule, or a file copied in with a loose umask, ends up private too. An existing
directory is left as it is: it may be a shared one (``/tmp``) that only holds our files.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

LOG = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Creates ``path`` and its missing parents owner-only (existing ones keep their mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode is reduced by the umask, never widened
    return path


def private_file(path: Path) -> Path:
    """Creates ``path`` empty with mode 0600 if it does not exist, else tightens its mode."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            os.chmod(path, current & 0o700)
            LOG.warning("%s was open to others (mode %o): made owner-only", path, current)
    return path
