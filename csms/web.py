"""Serves the driver's page and the operator page (``client_web/``) from the CSMS.

Paths, chosen so that nothing here can shadow an API route added before or after it:

* ``/`` and ``/c/{charge_point_id}`` (the identification QR's URL, ``?evse=N``) give
  ``index.html``: the page reads the charger id from its own address;
* ``/operator`` gives ``operator.html``;
* ``/favicon.ico`` is the page's icon (browsers ask for it at the root even unlinked);
* ``/js``, ``/css``, ``/i18n``, ``/img`` are the page's own static folders;
* ``/vendor/zxing-wasm`` serves the npm-installed ``zxing-wasm`` package (its ES modules and
  its ``.wasm`` files), so the browser never fetches code from a CDN;
* ``/sw.js`` is the page's service worker (root scope, so it serves ``/`` and ``/c/{id}``
  offline), preceded by the list of files it keeps (:func:`precache`) and their version;
* ``/manifest.webmanifest`` is the web app manifest every page links.

Every HTML answer carries a Content-Security-Policy that allows only our own origin (plus
``wasm-unsafe-eval`` for the decoder). ``mount_web`` adds nothing when ``client_web/`` is
missing (an installed wheel without the page), and the vendor mount only when ``npm ci`` ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from config.settings import Settings

LOG = logging.getLogger(__name__)

CLIENT_WEB = Path(__file__).resolve().parent.parent / "client_web"
VENDOR_PATH = "/vendor/zxing-wasm"
STATIC_FOLDERS = ("js", "css", "i18n", "img")
VENDOR_FILES = ("es/reader/index.js", "es/share.js", "reader/zxing_reader.wasm")
MANIFEST = "manifest.webmanifest"
CHARGER_ID_MAX = 64

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


class _Static(StaticFiles):
    """Static files with a cache policy: revalidate in development, an hour otherwise."""

    def __init__(self, *, directory: Path, cache_control: str) -> None:
        super().__init__(directory=directory, check_dir=False)
        self._cache_control = cache_control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache_control = self._cache_control.encode()

        async def send_with_cache(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"cache-control", cache_control))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_cache)  # type: ignore[arg-type]


def _page(path: Path) -> FileResponse:
    if not path.is_file():
        raise HTTPException(404, "page not installed")
    return FileResponse(
        path,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def vendor_dir(root: Path = CLIENT_WEB) -> Path:
    """Where ``npm ci`` puts the zxing-wasm distribution files."""
    return root / "node_modules" / "zxing-wasm" / "dist"


def precache(root: Path = CLIENT_WEB) -> tuple[str, list[str]]:
    """(version, URLs) of every file the service worker keeps for offline use: the pages, the
    manifest, the static folders and the decoder the scanner imports. The version changes with
    any file's size or modification time (and the worker's own text), so a changed page
    installs a new worker and cache."""
    urls: list[str] = ["/"]
    files: list[Path] = [root / "index.html", root / "sw.js"]
    if (root / "operator.html").is_file():
        urls.append("/operator")
        files.append(root / "operator.html")
    for name in (MANIFEST, "favicon.ico"):
        if (root / name).is_file():
            urls.append(f"/{name}")
            files.append(root / name)
    for folder in STATIC_FOLDERS:
        for path in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else ():
            if path.is_file() and not path.name.startswith("."):
                urls.append("/" + path.relative_to(root).as_posix())
                files.append(path)
    vendor = vendor_dir(root)
    for name in VENDOR_FILES:
        if (vendor / name).is_file():
            urls.append(f"{VENDOR_PATH}/{name}")
            files.append(vendor / name)
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16], urls


def mount_web(app: FastAPI, settings: Settings, *, root: Path = CLIENT_WEB) -> None:
    """Adds the driver page, the operator page and their static files to ``app``."""
    if not (root / "index.html").is_file():
        LOG.warning("client_web not found at %s: the driver page is not served", root)
        return
    index = root / "index.html"
    operator = root / "operator.html"
    cache = "no-cache" if settings.environment == "development" else "public, max-age=3600"

    @app.get("/", include_in_schema=False)
    async def driver_home() -> FileResponse:
        return _page(index)

    @app.get("/c/{charge_point_id}", include_in_schema=False)
    async def driver_charger(charge_point_id: str) -> FileResponse:
        """The identification QR's URL; the page reads the id and ``evse`` itself."""
        if not 0 < len(charge_point_id) <= CHARGER_ID_MAX:
            raise HTTPException(404, "no such charger")
        return _page(index)

    @app.get("/operator", include_in_schema=False)
    async def operator_page() -> FileResponse:
        return _page(operator)

    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> Response:
        """The worker, at the root so that its scope covers every page (a plain def: the
        file reads run in the thread pool, not on the event loop)."""
        worker = root / "sw.js"
        if not worker.is_file():
            raise HTTPException(404, "no service worker")
        version, urls = precache(root)
        head = f"self.PRECACHE = {json.dumps({'version': version, 'assets': urls})};\n"
        return Response(
            head + worker.read_text(encoding="utf-8"),
            media_type="text/javascript; charset=utf-8",
            headers={
                "Cache-Control": "no-cache",
                "Service-Worker-Allowed": "/",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.get(f"/{MANIFEST}", include_in_schema=False)
    async def manifest() -> FileResponse:
        if not (root / MANIFEST).is_file():
            raise HTTPException(404, "no manifest")
        return FileResponse(
            root / MANIFEST,
            media_type="application/manifest+json",
            headers={"Cache-Control": "no-cache"},
        )

    icon = root / "favicon.ico"

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        if not icon.is_file():
            raise HTTPException(404, "no icon installed")
        return FileResponse(
            icon, media_type="image/vnd.microsoft.icon", headers={"Cache-Control": cache}
        )

    for folder in STATIC_FOLDERS:
        if (root / folder).is_dir():  # a missing folder would answer 500 to every request
            app.mount(f"/{folder}", _Static(directory=root / folder, cache_control=cache))
    vendor = vendor_dir(root)
    if vendor.is_dir():
        app.mount(VENDOR_PATH, _Static(directory=vendor, cache_control=cache))
    else:
        LOG.warning("%s missing (run scripts/setup-browser): camera scanning is off", vendor)
