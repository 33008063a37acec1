"""The one settings model every component reads.

Sources, lowest to highest priority: ``config/default.toml`` shipped with the package, a user
TOML file (``--config FILE`` or ``QRCHARGE_CONFIG``), ``QRCHARGE_<SETTING>`` environment
variables, then explicit keyword overrides (command-line flags).
"""

from __future__ import annotations

import os
import socket
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# 2.0.1 IdTokenEnumType values a card or key presented at a charger may have ("Central" is for
# the CSMS's own tokens, such as our order ids).
CardTokenType = Literal[
    "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "eMAID", "NoAuthorization"
]

DEFAULT_FILE = Path(__file__).with_name("default.toml")
_DEFAULT_ADMIN_KEY = "dev-admin-key"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the flat key/value table of one TOML file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            with path.open("rb") as fh:
                self._data = tomllib.load(fh)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Every setting of qrcharge; the names are the TOML keys and the env suffixes.

    No defaults here: ``config/default.toml`` is the one place that gives them.
    """

    model_config = SettingsConfigDict(env_prefix="QRCHARGE_", extra="ignore")

    environment: Literal["development", "production"]
    log_format: Literal["text", "json"]
    issuer: str
    public_base_url: str
    data_dir: Path
    key_dir: Path | None

    start_token_validity_s: int
    token_leeway_s: int
    max_order_amount: int
    key_prepublish_s: int
    offline_limit_s: int
    identification_step_s: int
    identification_digits: int

    host: str
    port: int
    database_url: str
    admin_api_key: str = Field(repr=False)
    operator_token_ttl_s: int = Field(ge=60, le=30 * 86_400)
    api_docs: bool
    metrics_bind: str
    sandbox_payments_not_real_money: bool
    auto_register_chargers: bool
    heartbeat_interval_s: int
    ocpp_call_timeout_s: float
    ocpp_max_frame_bytes: int
    message_log_limit: int
    notification_limit: int
    upload_max_bytes: int = Field(gt=0)  # the largest diagnostics / log file a charger uploads
    tls_cert_file: str
    tls_key_file: str
    tls_client_ca_file: str = ""  # CA of chargers' client certificates; empty: ca_cert_file
    charger_auth_max_failures: int
    charger_auth_lockout_s: float
    trusted_proxies: str = ""  # comma-separated addresses whose X-Forwarded-For is believed
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    # once-per-cluster jobs (csms.cluster.leader): PostgreSQL advisory lock on a connection
    leader_heartbeat_s: float = Field(default=2.0, gt=0)  # the leader checks its lock this often
    leader_lease_s: float = Field(default=10.0, gt=0)  # unchecked this long: the lock is gone
    leader_retry_s: float = Field(default=1.0, gt=0)  # a follower tries to lead this often
    # cluster (csms.cluster): empty redis_url = a single node, everything in this process
    redis_url: str = Field(repr=False)  # may carry a password
    redis_prefix: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    presence_ttl_s: float = Field(gt=0)
    # the node's Redis sockets (csms.cluster.client): a command past the bound waits its turn
    redis_max_connections: int = Field(default=32, ge=4, le=1000)
    redis_pool_wait_s: float = Field(default=5.0, gt=0)
    # PostgreSQL connections of one process's pool (csms.store.db); --workers may lower them
    db_pool_size: int = Field(ge=1, le=500)
    db_max_overflow: int = Field(ge=0, le=500)
    # the store writer's lanes on PostgreSQL (csms.store.writer); --workers shares them out
    db_writer_connections: int = Field(default=3, ge=1, le=64)
    # glibc malloc arenas per process (csms.heap); 0: the C library's default (8 per core)
    malloc_arena_max: int = Field(default=2, ge=0, le=64)
    ca_cert_file: str
    ca_key_file: str
    charger_cert_validity_days: int
    default_currency: str
    default_tariff_id: str
    default_tariff_fixed: int
    default_tariff_energy: int
    default_tariff_time: int
    default_tariff_cap: int
    # drivers and wallets
    driver_token_ttl_s: int
    login_max_failures: int
    login_lockout_s: float
    max_top_up_amount: int
    psp_timeout_s: float
    psp_sweep_after_s: float
    # orders and settlements
    auto_capture_s: int
    reaper_interval_s: float
    upload_rate_per_driver: int
    upload_rate_per_client: int
    # receipts
    operator_name: str = Field(min_length=1, max_length=120)
    operator_address: str = Field(max_length=200)
    operator_tax_id: str = Field(max_length=40)
    tax_rate: Decimal = Field(ge=0, lt=1, max_digits=7, decimal_places=6)
    receipt_prefix: str = Field(max_length=16, pattern=r"^[A-Za-z0-9_-]*$")

    cp_state_dir: Path
    cp_meter_interval_s: float
    cp_heartbeat_fallback_s: int
    cp_settlement_display_s: float
    cp_trust_first_keys: bool
    cp_accept_unsynced_clock: bool
    cp_reconnect_min_s: float
    cp_reconnect_max_s: float
    cp_message_attempts: int
    cp_message_retry_s: float
    cp_max_power_w: int
    cp_password: str = Field(default="", repr=False)  # Basic-auth password; never logged
    cp_ca_file: str = ""  # CA of the CSMS's TLS certificate (wss://); empty: the system's
    cp_client_cert_file: str = ""  # client certificate (security profile 3)
    cp_client_key_file: str = ""  # its key; empty: in cp_client_cert_file
    cp_card_token_type: CardTokenType

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        for name in ("key_dir", "node_id"):
            if isinstance(data, dict) and data.get(name) == "":
                data = {**data, name: None}
        return data

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.environment == "production" and self.admin_api_key == _DEFAULT_ADMIN_KEY:
            raise ValueError("admin_api_key must be set (QRCHARGE_ADMIN_API_KEY) in production")
        return self

    @model_validator(mode="after")
    def _sweep_after_the_provider_gave_up(self) -> Settings:
        if self.psp_sweep_after_s <= self.psp_timeout_s:
            raise ValueError(
                "psp_sweep_after_s must be longer than psp_timeout_s: the sweeper would ask "
                "about top-ups whose provider call is still running"
            )
        return self

    @property
    def resolved_key_dir(self) -> Path:
        """Where the CSMS keeps its signing keys."""
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def resolved_node_id(self) -> str:
        """This node's name in the cluster: ``node_id``, or host name and process id."""
        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> Settings:
        if self.leader_lease_s < 2 * self.leader_heartbeat_s:
            raise ValueError(
                "leader_lease_s must be at least twice leader_heartbeat_s: one late heartbeat "
                "would end the leader's term"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL; SQLite under the data dir when none is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'qrcharge.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        user = os.environ.get("QRCHARGE_CONFIG") or None
        return (
            init_settings,
            env_settings,
            _TomlSource(settings_cls, Path(user) if user else None),
            _TomlSource(settings_cls, DEFAULT_FILE),
        )


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Loads settings; ``config_file`` takes the place of ``QRCHARGE_CONFIG``.

    ``overrides`` (command-line flags) win over every file and the environment; ``None``
    values are dropped so that an absent flag keeps the configured value.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        return Settings(**given)
    previous = os.environ.get("QRCHARGE_CONFIG")
    os.environ["QRCHARGE_CONFIG"] = str(config_file)
    try:
        return Settings(**given)
    finally:
        if previous is None:
            del os.environ["QRCHARGE_CONFIG"]
        else:
            os.environ["QRCHARGE_CONFIG"] = previous
