"""The bounds of every number a client may send the CSMS, and the strict types that carry them.

Every integer in a request (body, path or query) has a lower and an upper bound, so an absurd
value is a 422 naming the field rather than an overflow in the database (SQLite and
PostgreSQL integers are 64-bit). Amounts of money are strict integers of minor units: ``"100"``,
``true`` or ``1e2`` are refused, never coerced. Web-only aliases (path and query parameters)
are in :mod:`csms.api.params`; this module needs nothing but pydantic, so the payment and
billing schemas use it too.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

MAX_ROW_ID = 2**63 - 1  # a database row id (64-bit signed)
MAX_INT32 = 2**31 - 1  # OCPP integers (EVSE and connector ids)
MAX_AMOUNT = 10**10  # minor units of one top-up, order or refund: 100 million currency units
MAX_ENERGY_WH = 10**7  # 10 MWh: far above any vehicle's battery
MAX_DURATION_S = 31 * 86_400  # a month

Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, description="minor units")]
EnergyWh = Annotated[StrictInt, Field(ge=1, le=MAX_ENERGY_WH)]
DurationS = Annotated[StrictInt, Field(ge=1, le=MAX_DURATION_S)]
EvseId = Annotated[StrictInt, Field(ge=1, le=MAX_INT32)]
RowId = Annotated[StrictInt, Field(ge=1, le=MAX_ROW_ID)]
