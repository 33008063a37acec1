"""The one exception root of the demo: a step of the set-up that did not work.

::

    DemoError
    └── ProvisionError   an API call of the set-up was refused (status and answer in the text)
"""

from __future__ import annotations


class DemoError(Exception):
    """The demo could not be set up or run."""


class ProvisionError(DemoError):
    """A set-up call to the CSMS API was refused."""
