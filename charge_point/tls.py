"""The charger's TLS client side (OCPP security profiles 2 and 3).

A ``wss://`` CSMS URL is verified against ``ca_file`` (the CA that signed the CSMS's server
certificate; without it, the system's trusted CAs) with the host name checked, as OCPP
requires. With ``client_cert_file`` the charger presents that certificate (profile 3; its key
in ``client_key_file``, or in the certificate file itself). A ``ws://`` URL has no TLS, and
TLS files given for one are refused by :class:`~charge_point.settings.StationSettings`.
"""

from __future__ import annotations

import ssl

from charge_point.settings import StationSettings


def client_context(settings: StationSettings) -> ssl.SSLContext | None:
    """The TLS context of the link (None for ``ws://``); files are read now, so that a
    missing or unreadable one stops the charger at start (``OSError``/``ssl.SSLError``)."""
    if not settings.uses_tls:
        return None
    ca_file = str(settings.ca_file) if settings.ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.client_cert_file is not None:
        key_file = settings.client_key_file
        context.load_cert_chain(
            str(settings.client_cert_file), str(key_file) if key_file is not None else None
        )
    return context
