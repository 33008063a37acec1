"""The pure core of qrcharge: tokens, billing models and cost, QR render/decode.

No network, no database, no global state: keys, the clock and stores are arguments.
"""

from qr_extension.errors import (
    IdentificationError,
    KeyFormatError,
    QrChargeError,
    QrDecodeError,
    TariffError,
    TokenFormatError,
)
from qr_extension.keys import (
    KeyRing,
    PublicKey,
    SigningKey,
    generate_key,
    jwk_thumbprint,
    key_id,
    load_or_create_key,
    load_private_key,
    save_private_key,
)
from qr_extension.refusal import Reason, Refusal
from qr_extension.tariff import (
    PRICE_SCALE,
    Cost,
    LimitReason,
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    currency_exponent,
)

__all__ = [
    "PRICE_SCALE",
    "Cost",
    "IdentificationError",
    "KeyFormatError",
    "KeyRing",
    "LimitReason",
    "Limits",
    "PublicKey",
    "QrChargeError",
    "QrDecodeError",
    "Reason",
    "Refusal",
    "SigningKey",
    "Tariff",
    "TariffError",
    "TokenFormatError",
    "TouPeriod",
    "UsageBucket",
    "currency_exponent",
    "generate_key",
    "jwk_thumbprint",
    "key_id",
    "load_or_create_key",
    "load_private_key",
    "save_private_key",
]
