"""The exceptions of :mod:`csms.operators`, under :class:`OperatorError`, one branch of
:class:`csms.errors.CsmsError`.

::

    OperatorError
    ├── OperatorNameTaken     an account with that name exists
    ├── OperatorNotFound      no account with that name
    ├── SignInFailed          unknown name, wrong password or disabled (one message for all)
    └── LastAdmin             the change would leave no enabled admin
"""

from __future__ import annotations

from csms.errors import CsmsError


class OperatorError(CsmsError):
    """Root of every error raised by :mod:`csms.operators`."""


class OperatorNameTaken(OperatorError):
    """An operator account with that name already exists."""


class OperatorNotFound(OperatorError):
    """No operator account has that name."""


class SignInFailed(OperatorError):
    """The name is unknown, the password wrong or the account disabled; callers must not
    tell which."""

    def __init__(self) -> None:
        super().__init__("incorrect name or password")


class LastAdmin(OperatorError):
    """Disabling or demoting this account would leave nobody able to manage accounts."""
