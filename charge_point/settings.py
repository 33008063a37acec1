"""The settings of one charger: the project settings (``config/``) plus its command line."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from config.settings import Settings

OCPP_VERSIONS = ("1.6", "2.0.1")


@dataclass(frozen=True, slots=True)
class StationSettings:
    """Everything a :class:`~charge_point.station.Station` and its link need to run."""

    charge_point_id: str
    csms_url: str = "ws://127.0.0.1:8000/ocpp"
    ocpp_version: str = "1.6"
    password: str | None = field(default=None, repr=False)  # kept out of logs and reprs
    ca_file: Path | None = None  # CA of the CSMS's server certificate (wss://)
    client_cert_file: Path | None = None  # security profile 3: this charger's certificate
    client_key_file: Path | None = None  # its private key (None: in client_cert_file)
    evses: int = 1
    state_dir: Path = Path("var/cp")
    control_port: int | None = None
    camera: Path | None = None  # an image file, a folder to watch, or a /dev/video* device
    time_scale: float = 1.0  # the simulated EVs draw this many times the power; time is real
    trusted_keys_file: Path | None = None
    trust_first_keys: bool = False
    accept_unsynced_clock: bool = False
    leeway_s: int = 300
    issuer: str = "qrcharge"
    public_base_url: str = "http://127.0.0.1:8000"
    identification_step_s: int = 30
    identification_digits: int = 6
    meter_interval_s: float = 60
    heartbeat_s: int = 300
    settlement_display_s: float = 600
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 120.0
    message_attempts: int = 5
    message_retry_s: float = 10
    max_power_w: int = 22000
    card_token_type: str = "ISO14443"  # 2.0.1 idToken type of RFID-style cards
    call_timeout_s: float = 30

    def __post_init__(self) -> None:
        if self.ocpp_version not in OCPP_VERSIONS:
            raise ValueError(f"--ocpp must be one of {OCPP_VERSIONS}")
        if self.evses < 1:
            raise ValueError("a charger has at least one EVSE")
        if not self.time_scale > 0:
            raise ValueError("--time-scale must be positive")
        tls_files = (self.ca_file, self.client_cert_file, self.client_key_file)
        if not self.uses_tls and any(f is not None for f in tls_files):
            raise ValueError("--ca-file, --client-cert and --client-key need a wss:// CSMS URL")
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("--client-key needs --client-cert")

    @property
    def uses_tls(self) -> bool:
        """Whether the link speaks TLS (a ``wss://`` CSMS URL)."""
        return self.csms_url.lower().startswith("wss://")

    @classmethod
    def from_settings(cls, settings: Settings, **given: Any) -> StationSettings:
        """Project settings as defaults; ``given`` (command-line values, None = unset) win."""
        base: dict[str, Any] = {
            "state_dir": settings.cp_state_dir,
            "trust_first_keys": settings.cp_trust_first_keys,
            "accept_unsynced_clock": settings.cp_accept_unsynced_clock,
            "leeway_s": settings.token_leeway_s,
            "issuer": settings.issuer,
            "public_base_url": settings.public_base_url,
            "identification_step_s": settings.identification_step_s,
            "identification_digits": settings.identification_digits,
            "meter_interval_s": settings.cp_meter_interval_s,
            "heartbeat_s": settings.cp_heartbeat_fallback_s,
            "settlement_display_s": settings.cp_settlement_display_s,
            "reconnect_min_s": settings.cp_reconnect_min_s,
            "reconnect_max_s": settings.cp_reconnect_max_s,
            "message_attempts": settings.cp_message_attempts,
            "message_retry_s": settings.cp_message_retry_s,
            "max_power_w": settings.cp_max_power_w,
            "card_token_type": settings.cp_card_token_type,
            "call_timeout_s": settings.ocpp_call_timeout_s,
            "password": settings.cp_password or None,
            "ca_file": _path(settings.cp_ca_file),
            "client_cert_file": _path(settings.cp_client_cert_file),
            "client_key_file": _path(settings.cp_client_key_file),
        }
        base.update({k: v for k, v in given.items() if v is not None and v is not False})
        return cls(**base)

    def for_fleet_member(self, index: int) -> StationSettings:
        """The ``index``-th charger of ``--fleet N``: own id, own state dir, own port."""
        return replace(
            self,
            charge_point_id=f"{self.charge_point_id}-{index:03d}",
            state_dir=self.state_dir / f"{self.charge_point_id}-{index:03d}",
            control_port=self.control_port + index if self.control_port else self.control_port,
        )

    def ocpp_defaults(self) -> dict[str, Any]:
        """Default values of the OCPP configuration keys (the CSMS may change them)."""
        return {
            "HeartbeatInterval": self.heartbeat_s,
            "MeterValueSampleInterval": int(self.meter_interval_s),
            "LocalAuthorizeOffline": True,
            "LocalPreAuthorize": False,
            "LocalAuthListEnabled": True,
            "AuthorizationCacheEnabled": True,
            "TransactionMessageAttempts": self.message_attempts,
            "TransactionMessageRetryInterval": int(self.message_retry_s),
            "ConnectionTimeOut": 60,
            "StopTransactionOnInvalidId": True,
            "NumberOfConnectors": self.evses,
            "IdentificationSecret": "",
        }


def _path(value: str) -> Path | None:
    """A file setting: empty means unset."""
    return Path(value) if value else None
