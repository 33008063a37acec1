"""Every exception of :mod:`csms` is a :class:`CsmsError`: one root to catch, one tree drawn."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import csms
from csms.errors import CsmsError


def csms_exceptions() -> list[type[BaseException]]:
    """The public exception classes defined in any module of csms (the migrations aside)."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(csms.__path__, "csms."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found.append(value)
    return found


def test_every_csms_exception_is_a_csms_error() -> None:
    classes = csms_exceptions()
    assert len(classes) > 40  # the walk found the modules
    strays = sorted(
        f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, CsmsError)
    )
    assert strays == []


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    drawn = csms.errors.__doc__ or ""
    missing = sorted(c.__qualname__ for c in csms_exceptions() if c.__qualname__ not in drawn)
    assert missing == []


async def test_an_illegal_step_that_reaches_http_is_a_conflict(tmp_path: Path) -> None:
    """Whichever lifecycle raised it, a step its table lacks is 409, never a 500, through the
    handlers the app itself installs (the money side's come before the root's)."""
    from httpx import ASGITransport, AsyncClient

    from csms.app import create_app
    from csms.errors import IllegalTransition

    from .conftest import make_settings

    app = create_app(make_settings(tmp_path))

    async def step() -> None:
        raise IllegalTransition("order", "paid", "cancel")

    app.add_api_route("/step", step)

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        answer = await http.get("/step")
    assert answer.status_code == 409
    assert "paid" in answer.json()["detail"]
