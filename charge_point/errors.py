"""The exceptions of the charge point, under one root.

::

    ChargePointError
    ├── IllegalTransition   an EVSE event that its current status does not allow (our bug or a
    │                       command that must be refused; names the status and the event)
    ├── ConfigurationError  an unknown, read-only or ill-typed configuration key / variable
    ├── StoreError          the durable state cannot be read or written
    ├── NotConnected        a message needs the CSMS link and the link is down
    ├── ProfileInvalid      a charging profile this charger cannot take (answered Rejected)
    └── TransferFailed      a firmware download or a log upload that did not go through

Refusals of start QR codes are not exceptions: they are :class:`qr_extension.Refusal` values,
shown on the display and logged, because a refused code is an expected outcome.
"""

from __future__ import annotations


class ChargePointError(Exception):
    """Root of every error raised by :mod:`charge_point`."""


class IllegalTransition(ChargePointError):
    """An EVSE received an event that its status table has no entry for."""

    def __init__(self, status: str, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in status {status!r}")
        self.status = status
        self.event = event


class ConfigurationError(ChargePointError, ValueError):
    """A configuration key or variable that is unknown, read-only, or given a bad value."""


class StoreError(ChargePointError):
    """The local SQLite state cannot be used."""


class NotConnected(ChargePointError):
    """The CSMS link is down; the caller queues or drops the message."""


class ProfileInvalid(ChargePointError, ValueError):
    """A SetChargingProfile whose profile this charger cannot apply."""


class TransferFailed(ChargePointError):
    """A firmware download or diagnostics / log upload failed (``permission``: the server
    refused our credentials, which 2.0.1 reports as PermissionDenied)."""

    def __init__(self, message: str, *, permission: bool = False) -> None:
        super().__init__(message)
        self.permission = permission
