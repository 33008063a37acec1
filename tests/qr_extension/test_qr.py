"""QR render and decode, including camera-like photos of a phone screen."""

from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from qr_extension.errors import QrChargeError, QrDecodeError
from qr_extension.qr import (
    MAX_JPEG_PIXELS,
    MAX_OTHER_PIXELS,
    PhotoConditions,
    QrEncodeError,
    decode_qr,
    qr_version,
    render_png,
    render_svg,
    simulate_photo,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def realistic_token(
    *, tou_periods: int = 2, tariff_id: str = "DAYNIGHT-2026", seed: int = 1
) -> str:
    """A start token shaped like the real one (header, claims with tariff and limits, a 64-byte
    signature), without needing the token module."""
    rng = np.random.default_rng(seed)
    header = {"alg": "ES256", "typ": "start+jwt", "kid": "Qx3b9LmA"}
    tou = [[480, 1320, 15000, 3000], [1320, 480, 8000, 1000], [0, 360, 6000, 0]][:tou_periods]
    claims = {
        "aud": "CP-0042.north_1",
        "jti": "ORD7K2M9Q4XW8P1",
        "evse": 2,
        "iat": 1764201600,
        "exp": 1764202500,
        "lim": [12000, 40000, 14400],  # positional claims (docs/decisions.md D3)
        "tar": [tariff_id, "CNY", 5000, 12000, 3000, tou, 480, 6000, 30, 20000],
    }  # fmt: skip
    parts = [json.dumps(p, separators=(",", ":")).encode() for p in (header, claims)]
    signature = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    return ".".join([_b64(parts[0]), _b64(parts[1]), _b64(signature)])


TOKEN = realistic_token()
LONG_TOKEN = realistic_token(tou_periods=3, tariff_id="T3", seed=2)


def _gray(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))


def test_realistic_tokens_are_in_the_size_range_of_real_ones() -> None:
    assert 400 <= len(TOKEN) <= 550
    assert 400 <= len(LONG_TOKEN) <= 550
    assert len(LONG_TOKEN) > len(TOKEN)


def test_png_round_trip_from_bytes_path_image_and_arrays(tmp_path: Path) -> None:
    png = render_png(TOKEN)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    path = tmp_path / "code.png"
    path.write_bytes(png)
    image = Image.open(io.BytesIO(png))
    gray = np.asarray(image.convert("L"))
    rgb = np.asarray(image.convert("RGB"))
    rgba = np.asarray(image.convert("RGBA"))
    for source in (png, bytearray(png), str(path), path, image, gray, rgb, rgba):
        assert decode_qr(source) == [TOKEN]


def test_png_size_follows_box_size_and_border() -> None:
    version = qr_version("hello")
    modules = 17 + 4 * version
    image = Image.open(io.BytesIO(render_png("hello", box_size=3, border=2)))
    assert image.size == ((modules + 4) * 3, (modules + 4) * 3)


def _rasterise_svg(svg: str, scale: int = 6) -> Image.Image:
    """Paints the runs of our SVG path (``M x y h n v1 h-n z``) into a bitmap."""
    root = ET.fromstring(svg)
    size = int(root.attrib["viewBox"].split()[2])
    ns = {"svg": "http://www.w3.org/2000/svg"}
    path = root.find("svg:path", ns)
    assert path is not None
    pixels = np.full((size * scale, size * scale), 255, dtype=np.uint8)
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path.attrib["d"]):
        x0, y0 = int(x) * scale, int(y) * scale
        pixels[y0 : y0 + scale, x0 : x0 + int(n) * scale] = 0
    return Image.fromarray(pixels)


def test_svg_is_a_standalone_document_that_decodes_to_the_text() -> None:
    svg = render_svg(TOKEN)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = 17 + 4 * qr_version(TOKEN) + 8
    assert root.attrib["viewBox"] == f"0 0 {size} {size}"
    assert decode_qr(_rasterise_svg(svg)) == [TOKEN]


def test_version_is_the_smallest_that_fits_at_level_m() -> None:
    # byte-mode capacity at level M: version 15 holds 412 bytes, 16 holds 450
    assert qr_version("a" * 412) == 15
    assert qr_version("a" * 413) == 16
    assert qr_version("HELLO") == 1
    assert qr_version(LONG_TOKEN) >= qr_version(TOKEN)


def test_text_too_long_for_any_qr_code_is_an_encode_error() -> None:
    with pytest.raises(QrEncodeError) as info:
        qr_version("a" * 3000)
    assert isinstance(info.value, QrChargeError)
    with pytest.raises(QrEncodeError):
        render_png("a" * 3000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        render_png("truncated")[:120],
        bytes(range(256)) * 4,
    ],
    ids=["empty", "text", "png-header-only", "truncated-png", "noise"],
)
def test_broken_bytes_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(QrDecodeError):
        decode_qr(data)


def test_image_without_code_missing_file_and_bad_arrays_are_decode_errors(tmp_path: Path) -> None:
    blank = io.BytesIO()
    Image.new("L", (640, 480), 200).save(blank, format="PNG")
    with pytest.raises(QrDecodeError, match="no QR code"):
        decode_qr(blank.getvalue())
    with pytest.raises(QrDecodeError, match="cannot read"):
        decode_qr(tmp_path / "missing.png")
    with pytest.raises(QrDecodeError, match="uint8"):
        decode_qr(np.zeros((100, 100), dtype=np.float64))
    with pytest.raises(QrDecodeError, match="HxW"):
        decode_qr(np.zeros((100, 100, 2), dtype=np.uint8))
    with pytest.raises(QrDecodeError, match="too small"):
        decode_qr(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(QrDecodeError):
        decode_qr(12345)  # type: ignore[arg-type]


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def test_images_over_the_pixel_caps_are_refused_from_their_headers() -> None:
    """A tiny file may declare a huge frame: it is refused before any pixel is decoded."""
    side = int(MAX_OTHER_PIXELS**0.5) + 1
    png = _encoded(Image.new("RGBA", (side, side), (255, 255, 255, 255)), "PNG")
    assert len(png) < 500_000
    with pytest.raises(QrDecodeError, match=rf"too large: {side}x{side}.*send a JPEG"):
        decode_qr(png)
    wide = int(MAX_JPEG_PIXELS / 1000) + 1
    with pytest.raises(QrDecodeError, match=rf"too large: {wide}x1000"):
        decode_qr(_encoded(Image.new("L", (wide, 1000), 255), "JPEG"))


def test_a_48_megapixel_phone_jpeg_is_read_at_a_reduced_scale() -> None:
    """Over the cap for other formats, a JPEG of a current phone is decoded reduced and grey."""
    width, height = 8000, 6000
    assert width * height > MAX_OTHER_PIXELS
    photo = Image.new("RGB", (width, height), (120, 140, 160))
    code = Image.open(io.BytesIO(render_png(TOKEN, box_size=1))).convert("RGB")
    side = width // 7  # the code fills a seventh of the frame's width
    photo.paste(code.resize((side, side), Image.Resampling.NEAREST), (3000, 2500))
    assert decode_qr(_encoded(photo, "JPEG", quality=80)) == [TOKEN]


def test_two_codes_in_one_image_both_decode() -> None:
    first = Image.open(io.BytesIO(render_png("first code", box_size=6)))
    second = Image.open(io.BytesIO(render_png("second code", box_size=6)))
    canvas = Image.new(
        "L", (first.width + second.width + 40, max(first.height, second.height)), 255
    )
    canvas.paste(first, (0, 0))
    canvas.paste(second, (first.width + 40, 0))
    assert sorted(decode_qr(canvas)) == ["first code", "second code"]


def test_transparent_png_is_read_on_white() -> None:
    image = Image.open(io.BytesIO(render_png(TOKEN))).convert("L")
    rgba = Image.new("RGBA", image.size, (0, 0, 0, 0))
    rgba.putalpha(ImageOps.invert(image))  # dark modules opaque black, the rest transparent
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    assert decode_qr(out.getvalue()) == [TOKEN]


def test_inverted_code_light_on_dark_decodes() -> None:
    image = ImageOps.invert(Image.open(io.BytesIO(render_png(TOKEN))).convert("L"))
    assert decode_qr(image) == [TOKEN]


CAMERA_CASES = [
    PhotoConditions(code_px=420, angle_deg=15, keystone=0.08, blur_px=1.2, seed=1),
    PhotoConditions(code_px=380, angle_deg=-12, keystone=0.10, blur_px=1.0, noise=7, seed=2),
    PhotoConditions(code_px=360, angle_deg=20, keystone=0.05, blur_px=1.4, seed=3),
    PhotoConditions(code_px=450, angle_deg=-18, keystone=0.12, blur_px=1.5, noise=8, seed=4),
    PhotoConditions(code_px=400, angle_deg=10, keystone=0.06, blur_px=1.2, black=60, white=180,
                    seed=5),
]  # fmt: skip


@pytest.mark.parametrize("text", [TOKEN, LONG_TOKEN], ids=["two-tou", "three-tou"])
@pytest.mark.parametrize("conditions", CAMERA_CASES, ids=lambda c: f"seed{c.seed}")
def test_camera_photo_of_a_screen_decodes_to_exactly_the_text(
    text: str, conditions: PhotoConditions
) -> None:
    jpeg = simulate_photo(text, conditions)
    assert jpeg.startswith(b"\xff\xd8")  # what a camera delivers: a JPEG
    frame = _gray(jpeg)
    assert frame.shape == (720, 1280)
    assert decode_qr(frame) == [text]
    assert decode_qr(jpeg) == [text]


def test_simulated_photo_is_degraded_and_deterministic() -> None:
    conditions = PhotoConditions(seed=9)
    first = simulate_photo(TOKEN, conditions)
    assert first == simulate_photo(TOKEN, conditions)
    frame = _gray(first).astype(int)
    # no pure black or white left: contrast reduced, noise and blur added
    assert frame.min() > 0 and frame.max() < 255
    # the background (housing) differs from the lit screen in the middle
    assert abs(int(frame[:, :40].mean()) - int(frame[340:380, 620:660].mean())) > 20


def test_code_far_too_small_in_the_frame_is_not_read() -> None:
    tiny = PhotoConditions(code_px=120, angle_deg=15, blur_px=1.5, seed=1)
    with pytest.raises(QrDecodeError):
        decode_qr(simulate_photo(LONG_TOKEN, tiny))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt TIFF tags
def test_mutated_image_files_give_texts_or_decode_errors_never_other_exceptions() -> None:
    image = Image.open(io.BytesIO(render_png("fuzz me", box_size=3))).convert("L")
    samples = []
    for fmt in ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"]:
        out = io.BytesIO()
        image.save(out, format=fmt)
        samples.append(out.getvalue())
    rng = np.random.default_rng(5)
    decoded = refused = 0
    for _ in range(400):
        data = bytearray(samples[int(rng.integers(len(samples)))])
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(len(data)))
            if rng.random() < 0.7:
                data[at] = int(rng.integers(256))
            else:
                del data[at : at + int(rng.integers(1, 40))]
        try:
            texts = decode_qr(bytes(data))
        except QrDecodeError:
            refused += 1
        else:
            assert all(isinstance(t, str) for t in texts)
            decoded += 1
    assert refused > 100  # most mutations break the file
