"""What every functional block is given instead of globals: one object per running CSMS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from config.settings import Settings
from csms.api.uploads import DecodeGate
from csms.charger_ca import ChargerCa
from csms.commands import CommandDispatcher, ConnectionRegistry
from csms.keys import KeyManager
from csms.password_throttle import PasswordThrottle
from csms.passwords import PasswordVerifier
from csms.payments import SettlementSink
from csms.protocol.authorization import AuthorizationPolicy
from csms.store.db import Database
from csms.store.message_log import MessageLogWriter
from csms.store.writer import StoreWriter


@dataclass(frozen=True, slots=True)
class CsmsContext:
    """The services of one CSMS instance; built by :func:`csms.app.create_app`'s lifespan."""

    settings: Settings
    db: Database
    keys: KeyManager
    registry: ConnectionRegistry
    dispatcher: CommandDispatcher
    passwords: PasswordVerifier
    authorization: AuthorizationPolicy
    sink: SettlementSink
    message_log: MessageLogWriter
    writer: StoreWriter
    clock: Callable[[], datetime]
    decodes: DecodeGate = field(default_factory=DecodeGate)  # uploaded photos being read
    charger_ca: ChargerCa | None = None  # signs chargers' CSRs; None: SignCertificate Rejected
    # wrong charger passwords per address (the app builds it from the settings)
    password_throttle: PasswordThrottle = field(default_factory=PasswordThrottle.off)

    def now_s(self) -> int:
        """The clock in epoch seconds (what the key manager and tokens use)."""
        return int(self.clock().timestamp())
