"""The charger's camera: frames from an image file, a watched folder, or a video device.

Every frame goes to a callback (the charger decodes it and acts on the first QR code). The
folder source takes each new file once, in name order, and renames it to ``*.done`` so a
restart does not scan it again. A ``/dev/video*`` device is used only if one exists and the
``ffmpeg`` program is installed to grab frames from it (no heavy Python dependency); tests use
the folder or ``POST /camera``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FrameSink = Callable[[bytes], object]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def source_kind(path: Path) -> str:
    """``video`` (a /dev/video* device), ``folder`` (watched) or ``file`` (one image)."""
    if path.is_char_device() or str(path).startswith("/dev/video"):
        return "video"
    return "folder" if path.is_dir() else "file"


def read_image_file(path: Path) -> bytes:
    """One frame from an image file."""
    return path.read_bytes()


def take_new_frames(folder: Path) -> list[bytes]:
    """The image files that appeared in ``folder``, oldest name first, each marked done."""
    frames = []
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            frame = path.read_bytes()
            path.rename(path.with_name(path.name + ".done"))
        except OSError as exc:  # a file still being written: next round
            log.debug("camera folder: %s not ready: %s", path, exc)
            continue
        frames.append(frame)
    return frames


async def watch_folder(folder: Path, sink: FrameSink, *, poll_s: float = 0.2) -> None:
    """Feeds every new image file in ``folder`` to ``sink`` once, oldest name first."""
    while True:
        for frame in take_new_frames(folder):
            sink(frame)
        await asyncio.sleep(poll_s)


def video_devices() -> list[Path]:
    return sorted(Path("/dev").glob("video*"))


async def grab_video_frame(device: Path) -> bytes | None:
    """One PNG frame from a V4L2 device via ffmpeg, or None if that is not possible here."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    proc = await asyncio.create_subprocess_exec(
        ffmpeg,
        "-loglevel",
        "error",
        "-f",
        "v4l2",
        "-i",
        str(device),
        "-frames:v",
        "1",
        "-f",
        "image2pipe",
        "-vcodec",
        "png",
        "-",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return out if proc.returncode == 0 and out else None


async def watch_video(device: Path, sink: FrameSink, *, interval_s: float = 0.5) -> None:
    """Grabs frames from ``device`` forever and feeds them to ``sink``."""
    while True:
        frame = await grab_video_frame(device)
        if frame is None:
            log.warning("camera: cannot grab frames from %s (ffmpeg missing?)", device)
            return
        sink(frame)
        await asyncio.sleep(interval_s)
