"""Operator accounts for the API tests: made with the admin API key, signed in by name."""

from __future__ import annotations

from ..conftest import MoneyApi

ADMIN = "/api/v1/admin"
OPERATOR_PASSWORD = "staff-password-12"


async def add_operator(
    api: MoneyApi, name: str, role: str, password: str = OPERATOR_PASSWORD
) -> None:
    r = await api.http.post(
        f"{ADMIN}/operators",
        json={"name": name, "password": password, "role": role},
        headers=api.admin(),
    )
    assert r.status_code == 201, r.text


async def sign_in(api: MoneyApi, name: str, password: str = OPERATOR_PASSWORD) -> dict[str, str]:
    r = await api.http.post(f"{ADMIN}/token", data={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def operator(api: MoneyApi, name: str, role: str) -> dict[str, str]:
    """A new account of ``role``, signed in: its bearer header."""
    await add_operator(api, name, role)
    return await sign_in(api, name)
