"""Local authorisation of RFID-style id tags (OCPP 1.6 "Local Authorization" / 2.0.1 C):
the local authorisation list sent by the CSMS and the cache of earlier Authorize answers.

``decide`` is pure given the store's contents: it says whether a tag is accepted locally,
refused locally, or has to be asked of the CSMS. The configuration keys
``LocalPreAuthorize`` (online: start at once on a locally valid tag, Authorize later is not
needed) and ``LocalAuthorizeOffline`` (offline: start on a locally valid tag) decide which.
"""

from __future__ import annotations

from enum import StrEnum

from charge_point.configuration import Configuration
from charge_point.store import Store


class Decision(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    ASK_CSMS = "ask_csms"


def local_status(store: Store, config: Configuration, id_tag: str, now: float) -> str | None:
    """The tag's status from the local list, else the cache (None when neither knows it)."""
    if config["LocalAuthListEnabled"]:
        entry = store.local_list().get(id_tag)
        if entry is not None:
            status, expiry = entry
            return "Expired" if expiry is not None and expiry < now else status
    if config["AuthorizationCacheEnabled"]:
        cached = store.cached(id_tag)
        if cached is not None:
            status, expiry = cached
            return "Expired" if expiry is not None and expiry < now else status
    return None


def decide(
    store: Store, config: Configuration, id_tag: str, *, online: bool, now: float
) -> Decision:
    """What to do with a presented id tag before (or instead of) asking the CSMS."""
    status = local_status(store, config, id_tag, now)
    if online:
        if status == "Accepted" and config["LocalPreAuthorize"]:
            return Decision.ACCEPT
        return Decision.ASK_CSMS
    if status == "Accepted" and config["LocalAuthorizeOffline"]:
        return Decision.ACCEPT
    return Decision.REFUSE


def remember(
    store: Store, config: Configuration, id_tag: str, status: str, expiry: float | None
) -> None:
    """Caches a CSMS answer (if the cache is enabled)."""
    if config["AuthorizationCacheEnabled"]:
        store.cache(id_tag, status, expiry)
