"""The exceptions of :mod:`csms.billing`, under :class:`BillingError`, one branch of
:class:`csms.errors.CsmsError`.

::

    BillingError
    ├── BillingModelInvalid     the fields do not make a valid tariff
    ├── BillingModelNotFound    no billing model (or assignment) with that id
    ├── BillingModelExists      the id is taken (or is the configured default's id)
    ├── BillingModelInUse       a model still assigned somewhere cannot be deleted
    └── AssignmentInvalid       an assignment target that is not allowed or does not exist
        └── AssignmentExists    that target already has a model
"""

from __future__ import annotations

from csms.errors import CsmsError


class BillingError(CsmsError):
    """Root of every error raised by :mod:`csms.billing`."""


class BillingModelInvalid(BillingError, ValueError):
    """The fields do not make a valid :class:`qr_extension.Tariff`."""


class BillingModelNotFound(BillingError, LookupError):
    """No billing model or assignment with that id."""


class BillingModelExists(BillingError):
    """The billing model id is already used."""


class BillingModelInUse(BillingError):
    """The model is still assigned; remove its assignments first."""


class AssignmentInvalid(BillingError, ValueError):
    """An assignment needs a user, a user and a charger, a charger, or a site; and the user or
    charger must exist."""


class AssignmentExists(AssignmentInvalid):
    """That target already has a billing model: delete the assignment first."""
