"""Fixtures of the fault-injection tests: an empty database on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.csms.conftest import _reset_pg, pg_url
from tests.faults import tally

__all__ = ["pg_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in the test's directory, or the session's PostgreSQL
    database emptied."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    await _reset_pg(url)
    yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = tally.summary()
    if lines:
        terminalreporter.write_sep("-", "faults injected")
        for line in lines:
            terminalreporter.write_line(line)
