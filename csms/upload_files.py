"""Where the files chargers upload (diagnostics, logs) are kept, and writing one to disk as it
streams in, bounded.

Files live under ``<data_dir>/uploads/<charger id>/<file id>``, outside the database (which
keeps their index: name, size, SHA-256, when). A body is written to a partial file chunk by
chunk while its size and hash are counted; past the limit the writer stops and the partial file
is removed, so a too-large upload costs at most the limit on disk and one chunk in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

from csms.errors import CsmsError

UPLOADS_DIR = "uploads"
NAME_MAX = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class UploadTooLarge(CsmsError):
    """An uploaded file passed the configured maximum."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"uploaded file larger than {limit} bytes")
        self.limit = limit


def charger_dir(data_dir: Path, charger_id: str) -> Path:
    """The folder of one charger's uploads. Charger ids cannot hold ``/``, but ``.`` and
    ``..`` are valid ids: those get a hex name, so no id leaves the uploads folder."""
    name = charger_id if charger_id not in {".", ".."} else "_" + charger_id.encode().hex()
    return data_dir / UPLOADS_DIR / name


async def remove_charger_files(data_dir: Path, charger_id: str) -> None:
    """Removes the folder of a deleted charger's uploads (nothing when it has none): the
    database forgets their index with the charger, and nothing lists or serves them after."""
    await asyncio.to_thread(shutil.rmtree, charger_dir(data_dir, charger_id), ignore_errors=True)


def file_path(data_dir: Path, charger_id: str, file_id: int) -> Path:
    return charger_dir(data_dir, charger_id) / str(file_id)


def safe_name(name: str | None, default: str) -> str:
    """A file name to show and offer for download: the last path part, harmless characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._")[:NAME_MAX]
    return cleaned or default


class FileWriter:
    """Writes one upload to a partial file in the charger's folder, counting and hashing."""

    def __init__(self, folder: Path, *, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self.size = 0
        self._sha = hashlib.sha256()
        self.partial = folder / f".partial-{secrets.token_hex(8)}"
        self._file: BinaryIO | None = None

    async def open(self) -> None:
        def _open() -> BinaryIO:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            return self.partial.open("xb")

        self._file = await asyncio.to_thread(_open)

    async def write(self, chunk: bytes) -> None:
        """Appends ``chunk``; raises :class:`UploadTooLarge` (nothing more is written) once
        the file would pass the limit."""
        if not chunk:
            return
        if self.size + len(chunk) > self.limit:
            raise UploadTooLarge(self.limit)
        assert self._file is not None, "open() first"
        self.size += len(chunk)
        self._sha.update(chunk)
        await asyncio.to_thread(self._file.write, chunk)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def keep_as(self, final: Path) -> None:
        """Closes the file and gives it its final name (fsync'd first: the index says it
        is there)."""
        file = self._file
        assert file is not None

        def _finish() -> None:
            file.flush()
            os.fsync(file.fileno())
            file.close()
            os.replace(self.partial, final)

        await asyncio.to_thread(_finish)
        self._file = None

    async def discard(self) -> None:
        """Removes the partial file (too large, refused, or the client went away)."""
        file = self._file
        self._file = None

        def _remove() -> None:
            if file is not None:
                file.close()
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()

        await asyncio.to_thread(_remove)
