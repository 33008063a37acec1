"""The exceptions of :mod:`csms.drivers`, under one root.

::

    DriverError
    ├── EmailTaken            an account with that email exists
    ├── InvalidCredentials    unknown email or wrong password (one message for both)
    └── TokenInvalid          a missing, forged, expired or revoked access token
"""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error raised by :mod:`csms.drivers`."""


class EmailTaken(DriverError):
    """An account with that email already exists."""


class InvalidCredentials(DriverError):
    """The email is unknown or the password is wrong; callers must not tell which."""

    def __init__(self) -> None:
        super().__init__("incorrect email or password")


class TokenInvalid(DriverError):
    """The bearer token does not identify a driver."""
