"""The exceptions of :mod:`csms.drivers`, under :class:`DriverError`, one branch of
:class:`csms.errors.CsmsError`.

::

    DriverError
    ├── EmailTaken            an account with that email exists
    ├── InvalidCredentials    unknown email or wrong password (one message for both)
    ├── TooManyAttempts       too many failed log-ins: locked out for a while (throttle.py)
    └── TokenInvalid          a missing, forged, expired or revoked access token
"""

from __future__ import annotations

from csms.errors import CsmsError


class DriverError(CsmsError):
    """Root of every error raised by :mod:`csms.drivers`."""


class EmailTaken(DriverError):
    """An account with that email already exists."""


class InvalidCredentials(DriverError):
    """The email is unknown or the password is wrong; callers must not tell which."""

    def __init__(self) -> None:
        super().__init__("incorrect email or password")


class TooManyAttempts(DriverError):
    """Too many failed log-ins for this email or from this client: try again later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed log-ins: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TokenInvalid(DriverError):
    """The bearer token does not identify a driver."""
