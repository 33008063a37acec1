"""TLS on the CSMS's one port: server certificate, chargers' client certificates (OCPP security
profiles 2 and 3), and the ASGI TLS extension that tells the app who the peer is.

With ``tls_cert_file`` set the port speaks only TLS (1.2 or later, as OCPP requires). When a
client-certificate CA is configured (``tls_client_ca_file``, else the charger CA
``ca_cert_file`` that signs chargers' CSRs) the server *asks* every client for a certificate
(``CERT_OPTIONAL``) and verifies any it gets against that CA: a certificate the CA did not
sign fails the TLS handshake and never reaches the app. A client without a certificate still
connects, because profile 2 chargers, browsers and the APIs share the port; the OCPP endpoint
then decides per charger whether a certificate was required (:mod:`csms.protocol.admission`).
The CA file's certificates are all trust anchors, an intermediate CA included (partial chains
are accepted), so the file names exactly what is trusted.

uvicorn does not yet put the peer's certificate in the ASGI scope, so :class:`TlsWebSocketProtocol`
(the websockets-sansio protocol, given as uvicorn's ``ws`` class) adds the ``tls`` extension of
the ASGI spec (version 0.2) to WebSocket scopes: ``client_cert_chain`` holds the verified client
certificate as PEM (CPython's ``ssl`` gives the leaf only before 3.13), ``client_cert_name`` its
subject. HTTP requests do not need it and do not get it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from config.settings import Settings

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # the spec's integers for tls_version


def client_ca_file(settings: Settings) -> str | None:
    """The CA file that signs chargers' client certificates, if any: ``tls_client_ca_file``,
    else the charger CA's certificate (``ca_cert_file``); None without TLS."""
    if not settings.tls_cert_file:
        return None
    return settings.tls_client_ca_file or settings.ca_cert_file or None


def uvicorn_tls_options(settings: Settings) -> dict[str, object]:
    """The :class:`uvicorn.Config` options that serve TLS as configured (none without it).

    Raises ValueError for a configuration that cannot be what was meant: a client-certificate
    CA without TLS. (Production without TLS is one of :mod:`csms.production`'s refusals.)"""
    if settings.tls_client_ca_file and not settings.tls_cert_file:
        raise ValueError("tls_client_ca_file needs TLS: set tls_cert_file and tls_key_file")
    if not settings.tls_cert_file:
        return {}
    options: dict[str, object] = {
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file or None,
        "ssl_context_factory": _context_factory(client_ca_file(settings)),
    }
    return options


def _context_factory(
    ca_file: str | None,
) -> Callable[[Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    def factory(config: Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default()  # the server certificate and key from the Config
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
            context.verify_mode = ssl.CERT_OPTIONAL
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    return factory


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI ``tls`` scope extension of one TLS connection."""
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        certificate = x509.load_der_x509_certificate(der)
        chain = [certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")]
        name = certificate.subject.rfc4514_string()
    return {
        "server_cert": None,  # CPython cannot read back the server's own certificate
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,  # a certificate that fails verification ends the handshake
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # CPython gives the suite's name, the spec wants its number
    }


class TlsWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with the ASGI ``tls`` extension in the scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        ssl_object = self.transport.get_extra_info("ssl_object")
        scope = getattr(self, "scope", None)
        # the app's task only starts on the next turn of the loop: the scope is still ours
        if ssl_object is not None and scope is not None:
            scope["extensions"]["tls"] = tls_extension(ssl_object)
