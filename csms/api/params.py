"""Path and query parameters with the bounds of :mod:`csms.bounds` (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from csms.bounds import MAX_ROW_ID

RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID)]
