"""QR images: render a text as PNG or SVG, read the texts back from a (camera) image.

Rendering uses error correction level M and the smallest version that holds the text, because
every module costs camera pixels. Decoding uses zxing-cpp and accepts whatever a
caller has at hand: encoded image bytes, a file path, a PIL image or a numpy array. Anything
that is not a readable image, or an image without a QR code, is a :class:`QrDecodeError`.

:func:`simulate_photo` turns a rendered code into what a charger camera sees when a phone screen
is held in front of it; the demo, the benchmark and the tests use it to exercise the decoder on
realistic frames rather than on perfect renderings.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import qrcode
import zxingcpp
from numpy.typing import NDArray
from PIL import Image, ImageFilter, UnidentifiedImageError
from qrcode.exceptions import DataOverflowError

from qr_extension.errors import QrDecodeError, QrEncodeError

ImageInput = bytes | bytearray | memoryview | str | os.PathLike[str] | Image.Image | NDArray[Any]

_ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
# Refuse decompression bombs before anything is decoded. A JPEG (every phone camera's format)
# is decoded at a reduced scale straight to grey, so it may be as large as the 48-64 MP frames of
# current phones; other formats (screenshots) are decoded in full, in colour, so their cap is
# lower. A code needs about 3 pixels per module and a settlement is about 85 modules wide.
MAX_JPEG_PIXELS = 64_000_000
MAX_OTHER_PIXELS = 12_000_000
JPEG_WORKING_SIDE = 3000  # a JPEG is reduced (by 1/2, 1/4, 1/8) while its long side stays >= this
_QR_FORMATS = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


# --- rendering ---------------------------------------------------------------------------------


def _make(text: str) -> qrcode.QRCode[Any]:
    code: qrcode.QRCode[Any] = qrcode.QRCode(version=None, error_correction=_ERROR_CORRECTION)
    code.add_data(text)
    try:
        code.make(fit=True)
    except (DataOverflowError, ValueError) as exc:
        raise QrEncodeError(f"{len(text)} characters do not fit in a QR code: {exc}") from exc
    return code


def qr_version(text: str) -> int:
    """The QR version (1-40) that holds ``text`` at error correction level M."""
    return int(_make(text).version)


def _bitmap(code: qrcode.QRCode[Any], box_size: int, border: int) -> Image.Image:
    """The code as a 1-bit image, white quiet zone included (numpy, not a rectangle per module:
    several times faster than the library's own image factory)."""
    dark = np.pad(np.array(code.modules, dtype=bool), border)
    light = ~dark.repeat(box_size, axis=0).repeat(box_size, axis=1)
    return Image.fromarray(light)


def render_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """``text`` as a black-on-white PNG, ``box_size`` pixels per module, ``border`` modules of
    quiet zone (4 is the minimum the standard asks for)."""
    if box_size < 1 or border < 0:
        raise QrEncodeError("box_size must be at least 1 and border at least 0")
    out = io.BytesIO()
    _bitmap(_make(text), box_size, border).save(out, format="PNG")
    return out.getvalue()


def render_svg(text: str, *, border: int = 4) -> str:
    """``text`` as a standalone SVG document that scales to any size: a white square (so the
    code stays readable on a dark page) and one path of horizontal runs of dark modules."""
    code = _make(text)
    size = code.modules_count + 2 * border
    runs: list[str] = []
    for y, row in enumerate(code.modules):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            runs.append(f"M{start + border} {y + border}h{x - start}v1h-{x - start}z")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )


# --- decoding ----------------------------------------------------------------------------------


def _open_image(data: bytes) -> Image.Image:
    """Opens encoded image bytes within the pixel caps; a JPEG is decoded reduced and grey."""
    try:
        image = Image.open(io.BytesIO(data))
        is_jpeg = image.format == "JPEG"
        cap = MAX_JPEG_PIXELS if is_jpeg else MAX_OTHER_PIXELS
        if image.width * image.height > cap:
            kind = "JPEG" if is_jpeg else f"{image.format or 'this format'} (send a JPEG photo)"
            raise QrDecodeError(
                f"image too large: {image.width}x{image.height}, at most {cap // 1_000_000} MP"
                f" for {kind}"
            )
        if is_jpeg:
            scale = min(1.0, JPEG_WORKING_SIDE / max(image.width, image.height))
            image.draft("L", (round(image.width * scale), round(image.height * scale)))
        image.load()  # a truncated file fails here, not later inside the decoder
    except QrDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            EOFError) as exc:  # fmt: skip
        raise QrDecodeError(f"not a readable image: {exc}") from exc
    return image


def _to_gray(image: Image.Image, *, owned: bool = False) -> NDArray[np.uint8]:
    """The image as a greyscale array; an ``owned`` image is closed (its pixels freed) as soon
    as the next, smaller copy exists, so a large decode never holds more than two at once."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # a transparent background is shown as white, as on a web page; blended in grey (one
        # byte a pixel) rather than in RGBA, which would hold several four-byte copies
        with_alpha = image.convert("LA")
        if owned:
            image.close()
        luminance, alpha = with_alpha.getchannel("L"), with_alpha.getchannel("A")
        with_alpha.close()
        gray = Image.new("L", luminance.size, 255)
        gray.paste(luminance, mask=alpha)
        luminance.close()
        alpha.close()
    elif image.mode == "L":
        gray = image
    else:
        gray = image.convert("L")
        if owned:
            image.close()
    array = np.array(gray, dtype=np.uint8)
    if owned or gray is not image:
        gray.close()
    return array


def _array_to_gray(array: NDArray[Any]) -> NDArray[np.uint8]:
    if array.dtype != np.uint8:
        raise QrDecodeError(f"an image array must be uint8, not {array.dtype}")
    if array.ndim == 2:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        rgb = array[:, :, :3].astype(np.uint16)
        gray = (rgb[:, :, 0] * 77 + rgb[:, :, 1] * 150 + rgb[:, :, 2] * 29) >> 8  # ITU-R 601
        return gray.astype(np.uint8)
    raise QrDecodeError(f"an image array must be HxW or HxWx3/4, not {array.shape}")


def _as_gray(image: ImageInput) -> NDArray[np.uint8]:
    if isinstance(image, np.ndarray):
        gray = _array_to_gray(image)
    elif isinstance(image, Image.Image):
        gray = _to_gray(image)
    elif isinstance(image, bytes | bytearray | memoryview):
        gray = _to_gray(_open_image(bytes(image)), owned=True)
    elif isinstance(image, str | os.PathLike):
        try:
            with open(image, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise QrDecodeError(f"cannot read {os.fspath(image)!r}: {exc.strerror}") from exc
        gray = _to_gray(_open_image(data), owned=True)
    else:
        raise QrDecodeError(f"cannot decode an image given as {type(image).__name__}")
    if gray.shape[0] < 21 or gray.shape[1] < 21:
        raise QrDecodeError(f"image too small to hold a QR code: {gray.shape[1]}x{gray.shape[0]}")
    return gray


def _read(gray: NDArray[np.uint8], *, harder: bool) -> list[str]:
    found = zxingcpp.read_barcodes(
        gray,
        formats=_QR_FORMATS,
        try_rotate=harder,
        try_downscale=True,
        try_invert=harder,
        text_mode=zxingcpp.TextMode.Plain,
    )
    texts: list[str] = []
    for barcode in found:
        if barcode.valid and barcode.text not in texts:
            texts.append(barcode.text)
    return texts


def decode_qr(image: ImageInput) -> list[str]:
    """The texts of every QR code in ``image``, in the order the decoder found them.

    A fast pass (upright and rotated symbols, normal polarity) runs first; only when it finds
    nothing does a second pass also try inverted codes (light on dark screens) and 90-degree
    rotated sampling. Raises :class:`QrDecodeError` when the image cannot be read or holds no
    readable code.
    """
    gray = _as_gray(image)
    texts = _read(gray, harder=False) or _read(gray, harder=True)
    if not texts:
        raise QrDecodeError("no QR code found in the image")
    return texts


# --- simulated camera photos ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhotoConditions:
    """How a phone screen looks to a charger camera (defaults: a fair, not a kind, photo)."""

    frame: tuple[int, int] = (1280, 720)  # width, height of the camera frame
    code_px: int = 420  # side of the code (without quiet zone) in the frame, before tilt
    angle_deg: float = 15.0  # rotation in the image plane
    keystone: float = 0.08  # perspective: one side shorter by this fraction
    blur_px: float = 1.2  # gaussian blur radius (focus, motion)
    noise: float = 6.0  # gaussian sensor noise, standard deviation in grey levels
    black: int = 40  # screen black level as seen by the camera
    white: int = 210  # screen white level
    jpeg_quality: int = 40
    seed: int = 0


def _perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> list[float]:
    """PIL PERSPECTIVE data that maps output corners ``dst`` to input corners ``src``."""
    rows: list[list[float]] = []
    rhs: list[float] = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend((u, v))
    solution = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return [float(c) for c in solution]


def simulate_photo(text: str, conditions: PhotoConditions | None = None) -> bytes:
    """A JPEG camera frame showing ``text`` as a QR code on a screen, tilted, rotated, blurred,
    noisy and compressed as described by ``conditions``. Deterministic for a given seed."""
    c = conditions or PhotoConditions()
    rng = np.random.default_rng(c.seed)
    code = _make(text)
    modules = code.modules_count
    # render with enough pixels per module that resampling does not alias
    box = max(2, -(-c.code_px // modules))
    sharp = _bitmap(code, box, 4).convert("L")
    side = sharp.width
    quiet = side * c.code_px // (modules * box)  # target side with the quiet zone
    sharp = sharp.resize((quiet, quiet), Image.Resampling.BICUBIC)

    # the phone screen: the code with a white margin around it, on a darker charger housing
    screen_side = quiet + quiet // 4
    screen_img = Image.new("L", (screen_side, screen_side), 255)
    screen_img.paste(sharp, ((screen_side - quiet) // 2, (screen_side - quiet) // 2))
    mask = Image.new("L", screen_img.size, 255)
    s = float(screen_side)
    k = c.keystone * s
    tilt = [(0.0, 0.0), (s, k / 2), (s, s - k / 2), (0.0, s)]
    square = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)]
    coefficients = _perspective_coefficients(tilt, square)
    layers = []
    for layer in (screen_img, mask):
        skewed = layer.transform(
            layer.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC
        )
        layers.append(skewed.rotate(c.angle_deg, Image.Resampling.BICUBIC, expand=True))
    shown = np.asarray(layers[0], dtype=float) / 255.0
    alpha = np.asarray(layers[1], dtype=float) / 255.0
    width, height = c.frame
    frame = np.full((height, width), 90.0)
    frame += np.linspace(-25.0, 25.0, width)[None, :]  # uneven light
    h = min(shown.shape[0], height)
    w = min(shown.shape[1], width)
    x0 = min(max((width - w) // 2 + int(rng.integers(-60, 61)), 0), width - w)
    y0 = min(max((height - h) // 2 + int(rng.integers(-20, 21)), 0), height - h)
    region = frame[y0 : y0 + h, x0 : x0 + w]
    lit = c.black + (c.white - c.black) * shown[:h, :w]
    frame[y0 : y0 + h, x0 : x0 + w] = alpha[:h, :w] * lit + (1.0 - alpha[:h, :w]) * region
    blurred = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(c.blur_px)
    )
    noisy = np.asarray(blurred, dtype=float) + rng.normal(0.0, c.noise, (height, width))
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
        out, format="JPEG", quality=c.jpeg_quality
    )
    return out.getvalue()
