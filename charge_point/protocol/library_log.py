"""The logger the charger hands to the ``ocpp`` library's ChargePoint (its ``logger`` argument).

The library answers a request that has no handler with a ``NotImplemented`` CALLERROR (or
``NotSupported`` for an action outside the version) and logs it with ``logger.exception``: an
ERROR with a traceback, for what is only a CSMS asking for something this charger does not
offer. :class:`LibraryLog` logs that case as one WARNING naming the action and the code sent;
every other exception (one of our handlers failing, a request that fails the schema) keeps the
library's ERROR and traceback. The library's own "Received a CALLError" line for each CALLERROR
the CSMS answers goes to DEBUG: the link and the queue log what each one means to the charger.
Frames sent and received stay INFO records of the ``ocpp`` logger, as before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from charge_point.protocol.callerrors import NO_HANDLER, error_code

LIBRARY_LOGGER = logging.getLogger("ocpp")


class LibraryLog(logging.LoggerAdapter[logging.Logger]):
    """The ``ocpp`` logger, with unsupported requests as one-line warnings."""

    def __init__(self, charger_id: str) -> None:
        super().__init__(LIBRARY_LOGGER, {"charger": charger_id})

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        action = getattr(args[0], "action", None) if args else None
        if exc is not None and action is not None and error_code(exc) in NO_HANDLER:
            self.warning(
                "%s: the CSMS sent %s, which this charger does not implement: "
                "answered with a %s CALLERROR",
                self._charger,
                action,
                error_code(exc),
            )
            return
        super().exception(msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith("Received a CALLError"):
            self.debug(msg, *args, **kwargs)
            return
        super().warning(msg, *args, **kwargs)

    @property
    def _charger(self) -> str:
        extra: Mapping[str, object] = self.extra or {}
        return str(extra.get("charger", "?"))
