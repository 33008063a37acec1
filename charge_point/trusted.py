"""The charger's trusted CSMS keys, kept durably in the store.

The first set comes from installation config (``--trusted-keys FILE``) or, only when the
``trust-first-keys`` policy allows, from the first ``TrustedKeys`` DataTransfer. Every later
set must be signed by a key of the current set and not be older than it; it then replaces the
whole set. A set that fails is refused and the current keys stay.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from charge_point.store import Store
from qr_extension.keys import KeyRing
from qr_extension.refusal import Reason, Refusal
from qr_extension.trust import verify_trusted_key_set

log = logging.getLogger(__name__)


def current(store: Store) -> KeyRing:
    jwks = store.get("trusted_jwks")
    return KeyRing() if jwks is None else KeyRing.from_jwks(jwks)


def install(store: Store, token: str, *, trust_first: bool) -> Refusal | None:
    """Verifies and installs a ``TrustedKeys`` JWS; the refusal if it is not acceptable."""
    ring = current(store)
    if len(ring) == 0 and not trust_first:
        return Refusal(Reason.UNTRUSTED_KEYS, "no trusted keys and trust-first-keys is off")
    result = verify_trusted_key_set(
        token, trusted=ring if len(ring) else None, not_before=store.get("trusted_iat")
    )
    if isinstance(result, Refusal):
        log.warning("TrustedKeys rejected: %s", result)
        return result
    with store.atomic():
        store.put("trusted_jwks", result.ring.to_jwks())
        store.put("trusted_iat", result.issued_at)
    log.info("trusted CSMS keys now %s", [k.kid for k in result.ring])
    return None


def install_jwks(store: Store, jwks: dict[str, Any]) -> bool:
    """Installation config (a JWKS; raises KeyFormatError). Installed when the charger has no
    keys or the file changed since it was last installed, so a restart with the same file does
    not undo a rotation received since by ``TrustedKeys``. Returns whether it was installed."""
    ring = KeyRing.from_jwks(jwks)
    digest = hashlib.sha256(json.dumps(ring.to_jwks(), sort_keys=True).encode()).hexdigest()
    if len(current(store)) and store.get("trusted_file_digest") == digest:
        return False
    with store.atomic():
        store.put("trusted_jwks", ring.to_jwks())
        store.put("trusted_file_digest", digest)
    log.info("trusted CSMS keys from installation config: %s", [k.kid for k in ring])
    return True
