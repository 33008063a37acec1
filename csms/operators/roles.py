"""The three operator roles, each allowed what the ones below it are:

* ``viewer``: reads everything;
* ``operator``: also runs the chargers (commands, reservations, charging profiles,
  diagnostics, firmware, adding and editing chargers), cancels orders and refunds;
* ``admin``: everything, operator accounts, billing, keys and driver accounts included.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def allows(role: str, needed: Role) -> bool:
    """Whether an account of ``role`` may do what needs ``needed`` (an unknown role: no)."""
    return _RANK.get(role, -1) >= _RANK[needed]
