"""Chromium's fake camera input: a Y4M file (text header + raw I420 frames) showing an image.

``--use-file-for-fake-video-capture=FILE.y4m`` makes every ``getUserMedia`` video stream play
this file in a loop, so the page's zxing-wasm scanner sees the QR code as a phone camera would.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 960, 720


def frame_of(
    png: bytes, *, width: int = WIDTH, height: int = HEIGHT, fill: float = 0.8
) -> Image.Image:
    """The image centred on a white frame, scaled (nearest neighbour) to ``fill`` of its height."""
    image = Image.open(io.BytesIO(png)).convert("L")
    side = int(min(width, height) * fill)
    scale = side / max(image.size)
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    image = image.resize(size, Image.Resampling.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - size[0]) // 2, (height - size[1]) // 2))
    return frame


def write_y4m(png: bytes, path: Path, *, frames: int = 3) -> Path:
    """A grey-scale Y4M video (I420, chroma neutral) of ``png``, ``frames`` identical frames."""
    frame = frame_of(png)
    luma = np.asarray(frame, dtype=np.uint8)
    chroma = np.full((HEIGHT // 2) * (WIDTH // 2), 128, dtype=np.uint8).tobytes()
    body = b"FRAME\n" + luma.tobytes() + chroma + chroma
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + body * frames)
    return path


def blank_y4m(path: Path) -> Path:
    """A camera that sees a white wall (no QR code)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    return write_y4m(buffer.getvalue(), path, frames=1)
