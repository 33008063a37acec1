"""A database that refuses for now (too many clients, shutting down) is the client's 503 with
``Retry-After``; any other database error stays a 500."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from csms.app import _database_error


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _request() -> Request:
    scope = {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": []}
    return Request(scope)


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("53300", 503),  # too many clients already
        ("57P03", 503),  # the server is starting or shutting down
        ("08006", 503),  # connection failure
        ("23505", 500),  # a unique violation that reached the boundary is a bug
        ("42P01", 500),
    ],
)
async def test_sqlstate_decides_between_503_and_500(sqlstate: str, status: int) -> None:
    exc = DBAPIError("SELECT 1", None, _DriverError(sqlstate))
    answer = await _database_error(_request(), exc)
    assert answer.status_code == status
    if status == 503:
        assert answer.headers["retry-after"] == "1"
        assert "unavailable" in json.loads(answer.body)["detail"]
