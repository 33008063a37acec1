"""Model objects made by :func:`csms.store.rows.loaded` are readable in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_FIRST_ROW = """
from csms.store.models_money import User
from csms.store.rows import loaded

values = {name: None for name in User.__table__.columns.keys()}
user = loaded(User, values | {"id": 7, "disabled": False, "token_generation": 3})
print(user.id, user.disabled, user.token_generation)
"""


def test_a_row_loaded_before_any_orm_query_is_readable() -> None:
    # a new interpreter: in this one other tests' queries have configured the mappers already
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_ROW], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["7", "False", "3"]
