"""The charger's OCPP configuration: 1.6 keys and their 2.0.1 component/variable names.

One table (:data:`KEYS`) lists every key the charger knows, its type, whether the CSMS may
change it and its 2.0.1 name; values set by the CSMS are stored durably and win over the
defaults that come from the settings. Both version adapters read and write through
:class:`Configuration`, so ChangeConfiguration and SetVariables have the same effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charge_point.errors import ConfigurationError
from charge_point.store import Store
from qr_extension.identify import MIN_SECRET_BYTES


@dataclass(frozen=True, slots=True)
class Key:
    name: str  # OCPP 1.6 configuration key
    kind: type  # int, bool or str
    component: str  # OCPP 2.0.1 component ...
    variable: str  # ... and variable
    readonly: bool = False
    secret: bool = False  # write-only: never read back (GetConfiguration shows no value)


KEYS: tuple[Key, ...] = (
    Key("HeartbeatInterval", int, "OCPPCommCtrlr", "HeartbeatInterval"),
    Key("MeterValueSampleInterval", int, "SampledDataCtrlr", "TxUpdatedInterval"),
    Key("LocalAuthorizeOffline", bool, "AuthCtrlr", "LocalAuthorizeOffline"),
    Key("LocalPreAuthorize", bool, "AuthCtrlr", "LocalPreAuthorize"),
    Key("LocalAuthListEnabled", bool, "LocalAuthListCtrlr", "Enabled"),
    Key("AuthorizationCacheEnabled", bool, "AuthCacheCtrlr", "Enabled"),
    Key("TransactionMessageAttempts", int, "OCPPCommCtrlr", "MessageAttempts"),
    Key("TransactionMessageRetryInterval", int, "OCPPCommCtrlr", "MessageAttemptInterval"),
    Key("ConnectionTimeOut", int, "TxCtrlr", "EVConnectionTimeOut"),
    Key("StopTransactionOnInvalidId", bool, "TxCtrlr", "StopTxOnInvalidId"),
    Key("NumberOfConnectors", int, "EVSE", "Count", readonly=True),
    # Ours: the HMAC secret of the dynamic identification QR's code, provisioned
    # by the CSMS so that it can verify the code; hex, at least 16 bytes.
    Key("IdentificationSecret", str, "QrChargeCtrlr", "IdentificationSecret", secret=True),
)
_BY_NAME = {k.name: k for k in KEYS}
_BY_VARIABLE = {(k.component, k.variable): k for k in KEYS}


def parse_value(kind: type, text: str) -> Any:
    """An OCPP configuration value (always a string on the wire) as ``kind``."""
    if kind is str:
        try:
            if len(bytes.fromhex(text)) < MIN_SECRET_BYTES:
                raise ValueError("too short")
        except ValueError as exc:
            raise ConfigurationError(f"a secret must be >= {MIN_SECRET_BYTES} bytes hex") from exc
        return text.lower()
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ConfigurationError(f"{text!r} is not true or false")
        return lowered == "true"
    try:
        value = kind(text)
    except ValueError as exc:
        raise ConfigurationError(f"{text!r} is not a valid {kind.__name__}") from exc
    if value < 0:
        raise ConfigurationError("negative values are not accepted")
    return value


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Configuration:
    """Current values: durable CSMS changes over defaults."""

    def __init__(self, store: Store, defaults: dict[str, Any]) -> None:
        missing = set(_BY_NAME) - set(defaults)
        if missing:
            raise ConfigurationError(f"no default for {sorted(missing)}")
        self._store = store
        self._values = {**defaults, **store.config_values()}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @staticmethod
    def key(name: str) -> Key:
        try:
            return _BY_NAME[name]
        except KeyError:
            raise ConfigurationError(f"unknown key {name!r}") from None

    @staticmethod
    def key_for_variable(component: str, variable: str) -> Key:
        try:
            return _BY_VARIABLE[(component, variable)]
        except KeyError:
            raise ConfigurationError(f"unknown variable {component}.{variable}") from None

    def set(self, name: str, text: str) -> None:
        """Sets a key from its wire string; raises :class:`ConfigurationError` if refused."""
        key = self.key(name)
        if key.readonly:
            raise ConfigurationError(f"{name} is read-only")
        value = parse_value(key.kind, text)
        self._store.set_config(name, value)
        self._values[name] = value

    def items(self) -> list[tuple[Key, str]]:
        """Every key with its wire value (empty for write-only secrets)."""
        return [(k, "" if k.secret else format_value(self._values[k.name])) for k in KEYS]
