"""What every functional block is given instead of globals: one object per running CSMS.

The context names no upper layer: the money side's services are typed with the interfaces of
:mod:`csms.ports`, so :mod:`csms.protocol` can be handed the context without importing
:mod:`csms.payments`, and the web side asks the context for them (:mod:`csms.api.deps`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from config.settings import Settings
from csms.charger_ca import ChargerCa
from csms.cluster.leader import Leadership
from csms.cluster.node import ClusterNode
from csms.commands import CommandDispatcher, ConnectionRegistry
from csms.decodes import DecodeGate
from csms.keys import KeyManager
from csms.password_throttle import LocalPasswordGuard, PasswordGuard
from csms.passwords import PasswordVerifier
from csms.ports import (
    AccessTokens,
    AuthorizationPolicy,
    BackgroundJob,
    LoginGuard,
    PaymentProvider,
    SettlementSink,
    StoreOnlySink,
)
from csms.store.db import Database
from csms.store.message_log import MessageLogWriter
from csms.store.writer import StoreWriter
from csms.upload_rate import LocalUploadRate, UploadGate


@dataclass(frozen=True, slots=True)
class CsmsContext:
    """The services of one CSMS instance; built by :func:`csms.app.create_app`'s lifespan.

    The fields after ``clock`` have defaults so that a block can be run on a context of the
    first ones alone (the protocol tests do); the app fills every one.
    """

    settings: Settings
    db: Database
    keys: KeyManager
    registry: ConnectionRegistry
    dispatcher: CommandDispatcher
    passwords: PasswordVerifier
    authorization: AuthorizationPolicy
    sink: SettlementSink  # told what chargers report, after it is stored
    message_log: MessageLogWriter
    writer: StoreWriter
    clock: Callable[[], datetime]
    decodes: DecodeGate = field(default_factory=DecodeGate)  # uploaded photos being read
    charger_ca: ChargerCa | None = None  # signs chargers' CSRs; None: SignCertificate Rejected
    # wrong charger passwords per address (the app builds it from the settings)
    password_throttle: PasswordGuard = field(default_factory=LocalPasswordGuard.off)
    # the settlement service: uploads go to it (the web side asks for its concrete type)
    settlements: SettlementSink = field(default_factory=StoreOnlySink)
    reaper: BackgroundJob | None = None  # releases holds, captures, stops at limits
    driver_tokens: AccessTokens | None = None
    login_throttle: LoginGuard | None = None
    # settlement uploads per driver and address (in this process, or in Redis for a cluster)
    upload_rate: UploadGate = field(default_factory=LocalUploadRate.off)
    payment_provider: PaymentProvider | None = None  # wallet top-ups (a PSP adapter)
    # wrong operator passwords per name and client (the drivers' kind of throttle, its own counts)
    operator_throttle: LoginGuard | None = None
    # the election of the node that runs the reaper; None: not elected, not leading (tests)
    leadership: Leadership | None = None
    cluster: ClusterNode | None = None  # this node's Redis side; None: a single node

    def now_s(self) -> int:
        """The clock in epoch seconds (what the key manager and tokens use)."""
        return int(self.clock().timestamp())
