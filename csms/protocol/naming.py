"""camelCase <-> snake_case keys of OCPP payloads, as the ``ocpp`` library converts them.

The library converts every key of every message with a handful of regular expressions and
string replacements; the keys come from a small vocabulary (the schemas' property names), so
the conversion of each key is memoised here (bounded: a peer's unknown keys cannot grow it).
The key functions are the library's own, so the results are identical.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

KEYS_REMEMBERED = 4096


@lru_cache(maxsize=KEYS_REMEMBERED)
def _snake_key(key: str) -> str:
    return str(next(iter(camel_to_snake_case({key: None}))))


@lru_cache(maxsize=KEYS_REMEMBERED)
def _camel_key(key: str) -> str:
    return str(next(iter(snake_to_camel_case({key: None}))))


def to_snake(data: Any) -> Any:
    """Every dictionary key inside ``data`` in snake_case (lists and values kept)."""
    if isinstance(data, dict):
        return {_snake_key(k): to_snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_snake(v) for v in data]
    return data


def to_camel(data: Any) -> Any:
    """Every dictionary key inside ``data`` in camelCase (lists and values kept)."""
    if isinstance(data, dict):
        return {_camel_key(k): to_camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_camel(v) for v in data]
    return data
