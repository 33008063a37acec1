"""What a CALLERROR from the CSMS means to the charger, whatever its code.

A CALL the charger sends can come back as a CALLERROR: the connection raises the ``ocpp``
library's matching :class:`~ocpp.exceptions.OCPPError`, or ``UnknownCallErrorCodeError`` for a code
outside its list (2.0.1's ``RpcFrameworkError``, ``MessageTypeNotSupported``, a vendor's own).
A CALLRESULT that fails the schema raises an ``OCPPError`` too. None of these says anything
about the connection, so none of them may end it: the link logs them and carries on, and the
queue counts them as failed attempts (:mod:`charge_point.queue`).

``NotImplemented`` and ``NotSupported`` say more: the CSMS has no handler for the action at
all, so no retry can ever succeed.
"""

from __future__ import annotations

import re
from typing import Final

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError

CALL_REFUSED: Final = (OCPPError, UnknownCallErrorCodeError)
"""What :meth:`Connection.call` raises for a CALLERROR or an invalid CALLRESULT."""

NO_HANDLER: Final = frozenset({"NotImplemented", "NotSupported"})


def error_code(exc: BaseException) -> str:
    """The CALLERROR's code (``NotImplemented``, ``InternalError``, ``RpcFrameworkError`` ...)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    found = re.search(r"'([^']+)'", str(exc))  # "Error code 'X' is not defined by ..."
    return found.group(1) if found else type(exc).__name__


def has_no_handler(exc: BaseException) -> bool:
    """True when the CSMS said it does not implement or support the action at all."""
    return isinstance(exc, CALL_REFUSED) and error_code(exc) in NO_HANDLER
