"""The exceptions of the pure core, under one root.

::

    QrChargeError
    ├── KeyFormatError      a key, PEM file or JWK that cannot be used
    ├── TariffError         a billing model, limit or usage record that is not valid
    ├── TokenFormatError    a token that cannot be built from the given values
    ├── QrEncodeError       a text that does not fit in a QR code
    ├── QrDecodeError       an image that holds no readable QR code
    └── IdentificationError an identification URL or code that cannot be parsed

Verifying a token never raises for bad input: it returns a :class:`~qr_extension.refusal.Refusal`
with a stable reason code, because a refused token is an expected outcome, not a bug.
"""

from __future__ import annotations


class QrChargeError(Exception):
    """Root of every error raised by :mod:`qr_extension`."""


class KeyFormatError(QrChargeError, ValueError):
    """A key, PEM file or JWK is malformed or of the wrong kind (only P-256 is used)."""


class TariffError(QrChargeError, ValueError):
    """A billing model, limit or usage record is not valid."""


class TokenFormatError(QrChargeError, ValueError):
    """A token cannot be built from the given values (caller's fault, not the peer's)."""


class QrEncodeError(QrChargeError, ValueError):
    """A text does not fit in the largest QR code (version 40 at level M)."""


class QrDecodeError(QrChargeError):
    """No QR code could be read from an image."""


class IdentificationError(QrChargeError, ValueError):
    """An identification URL or time-based code cannot be parsed."""
