"""The exceptions of the CSMS, under one root: :class:`CsmsError`.

Where a branch has a module of its own, it is named on the right; the rest are defined here.
Other bases are kept where callers rely on them (``ValueError``, ``LookupError``).

::

    CsmsError
    ├── UnsafeForProduction   production settings that are not fit for it (cli.py exits)
    ├── StoreError            the database refused or lost something
    │   ├── StoreBusy         the store writer's queue is full           (store/writer.py)
    │   ├── StoreTimeout      not committed within the caller's deadline (store/writer.py)
    │   ├── Conflict          a conditional update lost to another writer (store/units_of_work.py)
    │   └── ConnectionBudgetError  max_connections too small for --workers (store/db.py)
    ├── ChargerAuthError      a WebSocket handshake that is not allowed (unknown id, password)
    │   ├── VerifierOverloaded  too many password checks waiting        (passwords.py)
    │   └── PasswordThrottled   too many wrong passwords from an address (password_throttle.py)
    ├── KeyManagerError       the signing key directory is unusable
    ├── CertificateAuthorityError  the configured charger CA (certificate, key) is unusable
    ├── CsrRefused            a charger's certificate signing request the CA will not sign
    ├── SettlementKeyError    a charger settlement key that cannot be pinned or replaced
    ├── ConnectionEnded       the charger's socket is gone (it left, or a newer one replaced it)
    ├── IllegalTransition     a lifecycle step its transition table does not have
    ├── CommandError          delivering an operator command to a charger failed
    │   ├── NotConnected      the charger has no open connection
    │   ├── ChargerBusy       its outgoing queue is full
    │   ├── CommandTimeout    no answer within ``ocpp_call_timeout_s``
    │   ├── ClusterUnavailable  Redis is unreachable: another node cannot be asked
    │   ├── UnknownVersion    no translation for that OCPP version      (protocol/commands.py)
    │   └── CommandRejected   the charger answered with a CALLERROR (or the payload is invalid)
    ├── BodyTooLarge          a request body over its limit              (api/uploads.py)
    ├── GateFull              every photo decode slot and its line busy  (decodes.py)
    ├── UploadsTooFrequent    settlement uploads over the rate           (upload_rate.py)
    ├── UploadTooLarge        a charger's diagnostics / log file over the maximum (upload_files.py)
    ├── DriverError           driver accounts and tokens                 (drivers/errors.py)
    │   └── EmailTaken, InvalidCredentials, TooManyAttempts, TokenInvalid
    ├── OperatorError         operator accounts and sign-in            (operators/errors.py)
    │   └── OperatorNameTaken, OperatorNotFound, SignInFailed, LastAdmin
    ├── BillingError          billing models and assignments             (billing/errors.py)
    │   ├── BillingModelInvalid, BillingModelNotFound, BillingModelExists, BillingModelInUse
    │   └── AssignmentInvalid
    │       └── AssignmentExists
    └── PaymentError          wallet, ledger, provider, orders           (payments/errors.py)
        ├── InvalidAmount, InvalidKey, UnknownWallet, IdempotencyConflict,
        │   InsufficientFunds, HoldExceeded, RefundExceeded, AlreadyCaptured
        ├── ProviderError
        │   ├── PaymentDeclined
        │   └── ProviderUnavailable  the outcome is unknown (no answer, a timeout)
        └── OrderError                                                   (payments/order_errors.py)
            └── OrderNotFound, PaymentNotFound, InvalidOrderRequest, SettlementRefused,
                RefundRefused, OrderNotCancellable

They are converted at the boundary only: to HTTP errors in :mod:`csms.app` and
:mod:`csms.api` (a handler for a branch wins over the root's, by the exception's MRO), to OCPP
answers in :mod:`csms.protocol`. ``BodyTooLarge`` is the one the app hands back to the
middleware that raised it.
"""

from __future__ import annotations


class CsmsError(Exception):
    """Root of every error raised by :mod:`csms`."""


class UnsafeForProduction(CsmsError):
    """``environment = "production"`` with settings that are not fit for it (each named)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refusing to start in production: " + "; ".join(problems))
        self.problems = problems


class StoreError(CsmsError):
    """The database refused an operation or a row that must exist is missing."""


class ChargerAuthError(CsmsError):
    """A charger may not connect: unknown identity, wrong password, or bad header."""


class KeyManagerError(CsmsError):
    """The key directory or its manifest cannot be used."""


class CertificateAuthorityError(CsmsError):
    """The CA certificate or key configured for signing chargers' certificates is unusable."""


class CsrRefused(CsmsError):
    """A certificate signing request that is malformed, unsigned or asks for a weak key."""


class SettlementKeyError(CsmsError, ValueError):
    """A charger settlement key that is malformed or may not replace the pinned one."""


class ConnectionEnded(CsmsError):
    """The charger's socket is closed: raised by a transport's ``recv`` and ``send``.

    Not a fault of either side: it ends the connection's tasks quietly (one log line), and
    nothing more is sent on that socket."""


class CommandError(CsmsError):
    """An operator command could not be delivered or was not answered."""


class NotConnected(CommandError):
    """The charger is not connected to this node."""


class ChargerBusy(CommandError):
    """Too many commands are already waiting for this charger."""


class CommandTimeout(CommandError):
    """The charger did not answer within the call timeout."""


class ClusterUnavailable(CommandError):
    """Redis, through which the node holding the charger's socket is asked, is unreachable."""


class CommandRejected(CommandError):
    """The charger answered with a CALLERROR, or the request failed schema validation."""

    def __init__(self, code: str, description: str, details: object = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class IllegalTransition(CsmsError):
    """A step a lifecycle's transition table does not have (an order, a payment, a PSP attempt,
    a transaction); names the machine, the state and the event."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine} in state {state!r} cannot take event {event!r}")
        self.machine = machine
        self.state = state
        self.event = event
