"""Memory of a CSMS process under hostile settlement photos: peak and what stays afterwards.

For each case it starts ``qrcharge csms`` in a process of its own (SQLite in a temp dir), signs
up one driver, sends ``--rounds`` bursts of ``--concurrency`` uploads at once to
``POST /api/v1/settlements`` and reads the server's ``VmHWM`` (peak, reset before the case) and
``VmRSS`` (one second after each burst) from ``/proc``. The cases: a 6000x6000 RGBA PNG without
a QR code (152 KB), a PNG just under the cap for formats decoded in full, a 48 MP phone-style
JPEG holding a code, and a 60 MB multipart body streamed without ``Content-Length``.

``--source DIR`` runs the server from another checkout (its folder goes first on
``PYTHONPATH``), so one run compares two revisions on the same machine::

    git worktree add /tmp/before <rev>
    .venv/bin/python -m benchmarks.upload_memory --source /tmp/before
    .venv/bin/python -m benchmarks.upload_memory
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from qr_extension.qr import render_png

MB = 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def blank_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (side, side), (255, 255, 255, 255)).save(out, "PNG")
    return out.getvalue()


def phone_jpeg(width: int = 8000, height: int = 6000) -> bytes:
    """A large photo-like JPEG (smooth shading, mild noise) with a QR code in it."""
    rng = np.random.default_rng(7)
    ys = np.linspace(90, 200, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 40, width, dtype=np.float32)[None, :]
    frame = np.clip(ys + xs + rng.normal(0, 2, (height, width)).astype(np.float32), 0, 255)
    photo = Image.fromarray(frame.astype(np.uint8))
    code = Image.open(io.BytesIO(render_png("SETTLEMENT-LIKE-TEXT-" + "X" * 300, box_size=1)))
    side = width // 6
    photo.paste(
        code.convert("L").resize((side, side), Image.Resampling.NEAREST), (width // 3, height // 3)
    )
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=75)
    return out.getvalue()


async def _big_stream(total: int) -> AsyncIterator[bytes]:
    """A multipart body whose ``image`` part is ``total`` bytes, sent in chunks."""
    yield (
        b'--x\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    chunk = b"\0" * (256 * 1024)
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


async def _start(
    source: Path | None, tmp: Path, admin_key: str
) -> tuple[asyncio.subprocess.Process, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, QRCHARGE_ADMIN_API_KEY=admin_key)
    env |= {"QRCHARGE_UPLOAD_RATE_PER_DRIVER": "0", "QRCHARGE_UPLOAD_RATE_PER_CLIENT": "0"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    cmd = [sys.executable, "-c", "import qrcharge_cli, sys; sys.exit(qrcharge_cli.main())"]
    cmd += ["csms", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp)]
    cmd += ["--log-level", "warning"]
    log = (tmp / "csms.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *cmd, stdout=log, stderr=subprocess.STDOUT, cwd=source, env=env
    )
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/openapi.json")).status_code == 200:
                    return server, port
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    server.kill()
    await server.wait()
    raise SystemExit("the CSMS did not start; see " + str(tmp / "csms.log"))


async def _driver(http: httpx.AsyncClient) -> dict[str, str]:
    email, password = f"bench-{secrets.token_hex(4)}@example.org", "bench-password-1"
    r = await http.post("/api/v1/users", json={"email": email, "password": password})
    r.raise_for_status()
    r = await http.post("/api/v1/token", data={"username": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _case(
    pid: int, concurrency: int, rounds: int, send: Callable[[], Any]
) -> tuple[list[str], float, list[float], float]:
    """``rounds`` bursts of ``concurrency`` requests: answers, peak and after-each-round (MB
    over the RSS before the first burst), wall time of the first burst."""
    base = _status_kb(pid, "VmRSS")
    _reset_peak(pid)
    codes: set[str] = set()
    after: list[float] = []
    first_wall = 0.0
    for i in range(rounds):
        wall = time.perf_counter()
        answers = await asyncio.gather(
            *(send() for _ in range(concurrency)), return_exceptions=True
        )
        if i == 0:
            first_wall = time.perf_counter() - wall
        # a client still sending when the server refuses (413) and closes sees a broken connection
        codes |= {type(a).__name__ if isinstance(a, BaseException) else str(a) for a in answers}
        await asyncio.sleep(1.0)
        after.append((_status_kb(pid, "VmRSS") - base) / 1024)
    peak = (_status_kb(pid, "VmHWM") - base) / 1024
    return sorted(codes), peak, after, first_wall


async def _one_case(
    args: argparse.Namespace, name: str, make: Callable[[httpx.AsyncClient, dict[str, str]], Any]
) -> None:
    """One case against a CSMS process of its own, so no case inherits another's heap."""
    with tempfile.TemporaryDirectory(prefix="qrcharge-upload-bench-") as tmp_name:
        server, port = await _start(args.source, Path(tmp_name), secrets.token_urlsafe(24))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                send = make(http, await _driver(http))
                await asyncio.sleep(0.5)
                start = _status_kb(server.pid, "VmRSS") / 1024
                client_cpu = time.process_time()
                codes, peak, after, wall = await _case(
                    server.pid, args.concurrency, args.rounds, send
                )
                answered = " ".join(codes)
                client_cpu = time.process_time() - client_cpu
                bursts = " / ".join(f"{a:.0f}" for a in after)
                figures = f"{peak:.0f} | {bursts} | {wall:.2f} | {client_cpu:.2f}"
                print(f"| {name} | {start:.0f} | {answered} | {figures} |", flush=True)
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 30)


def _upload(data: bytes, name: str, kind: str) -> Callable[..., Any]:
    def make(http: httpx.AsyncClient, auth: dict[str, str]) -> Callable[[], Any]:
        async def send() -> int:
            r = await http.post(
                "/api/v1/settlements", files={"image": (name, data, kind)}, headers=auth
            )
            return r.status_code

        return send

    return make


def _stream(http: httpx.AsyncClient, auth: dict[str, str]) -> Callable[[], Any]:
    async def send() -> int:
        r = await http.post(
            "/api/v1/settlements",
            content=_big_stream(60 * MB),
            headers=auth | {"content-type": "multipart/form-data; boundary=x"},
        )
        return r.status_code

    return send


async def main(args: argparse.Namespace) -> None:
    where = f"from {args.source}" if args.source else "from this checkout"
    print(
        f"CSMS {where}; {args.rounds} bursts of {args.concurrency} requests at once per case; "
        "a fresh CSMS process per case"
    )
    print(
        "| case | RSS at start (MB) | answers | peak over start (MB) "
        "| after each burst (MB over start) | first burst (s) | client CPU (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    cases = [
        ("6000x6000 RGBA PNG, no code (152 KB)", _upload(blank_png(6000), "a.png", "image/png")),
        ("3400x3400 RGBA PNG, no code", _upload(blank_png(3400), "b.png", "image/png")),
        ("8000x6000 JPEG with a QR code", _upload(phone_jpeg(), "c.jpg", "image/jpeg")),
        ("60 MB multipart body, no Content-Length", _stream),
    ]
    for name, make in cases:
        await _one_case(args, name, make)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="run the CSMS from this checkout")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per case")
    asyncio.run(main(parser.parse_args()))
