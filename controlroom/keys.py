"""The registry of device signing keys, approved by an admin, and result verification.

A device announces its public key in its retained ``info``. The console never trusts that
announcement: a key seen for the first time is stored as ``pending`` and only an admin
approves it (or registers a key out of band). A result's ``signature_state``:

* ``valid``: signed by an approved key of that device;
* ``invalid``: names an approved key of that device but does not verify (forged or damaged);
* ``pending_key``: verifies against a key nobody approved yet;
* ``rejected_key``: verifies against a key an admin rejected;
* ``unknown_key``: names a key this device never announced, or does not verify against the
  pending/rejected key it names;
* ``unsigned``: carries no signature at all (a retained state message from an older device,
  or anyone on the broker).

Anything but ``valid`` is shown flagged, never as trusted.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlroom.audit import utcnow
from controlroom.db.schema import DeviceKey
from controlroom.db.upsert import insert_ignore
from edge.errors import EdgeError
from edge.publish.signing import key_id as key_id_of
from edge.publish.signing import load_public_key, verify

KEY_STATES: Final = ("pending", "approved", "rejected")
SIGNATURE_STATES: Final = (
    "valid",
    "invalid",
    "pending_key",
    "rejected_key",
    "unknown_key",
    "unsigned",
)


@dataclass(frozen=True)
class KnownKey:
    """One registry entry, with the loaded public key."""

    prefix: str
    key_id: str
    state: str
    public: Ed25519PublicKey


def parse_announced_key(info: dict[str, Any]) -> tuple[str, str] | None:
    """``(key_id, base64 key)`` from an ``info`` payload when its key is well formed."""
    key = info.get("public_key")
    if not isinstance(key, dict) or key.get("alg") != "Ed25519":
        return None
    value = key.get("value")
    if not isinstance(value, str):
        return None
    try:
        public = load_public_key(value)
    except EdgeError:
        return None
    # the key id is derived from the key, never taken from the message
    return key_id_of(public), value


class KeyRegistry:
    """Keys per device prefix, cached in memory and refreshed from the database."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], KnownKey] = {}
        self._lock = threading.Lock()

    def load(self, session: Session) -> None:
        """Reload every key from the database (after an admin's decision elsewhere)."""
        fresh: dict[tuple[str, str], KnownKey] = {}
        for row in session.execute(select(DeviceKey)).scalars():
            try:
                public = load_public_key(row.public_key)
            except EdgeError:
                continue
            fresh[(row.prefix, row.key_id)] = KnownKey(row.prefix, row.key_id, row.state, public)
        with self._lock:
            self._keys = fresh

    def get(self, prefix: str, key_id: str) -> KnownKey | None:
        """The registry entry of *key_id* for *prefix*, if any."""
        with self._lock:
            return self._keys.get((prefix, key_id))

    def learn(self, session: Session, prefix: str, info: dict[str, Any]) -> KnownKey | None:
        """Record the key announced in *info* as pending if it is new; returns its entry.

        Only an ``info`` signed by the key it announces teaches a key (proof of possession:
        nobody can put a device's public key forward as theirs). That proves nothing about
        who the device is; an admin's approval does.
        """
        announced = parse_announced_key(info)
        if announced is None:
            return None
        kid, value = announced
        if not verify(info, load_public_key(value)):
            return None
        known = self.get(prefix, kid)
        if known is not None:
            return known
        row = _insert_key(session, prefix, kid, value, "pending")
        entry = KnownKey(prefix, kid, row.state, load_public_key(row.public_key))
        with self._lock:
            self._keys[(prefix, kid)] = entry
        return entry

    def refresh(self, session: Session, prefix: str, key_id: str) -> KnownKey | None:
        """Re-read one key from the database (an admin may have decided on it meanwhile)."""
        row = session.execute(
            select(DeviceKey).where(DeviceKey.prefix == prefix, DeviceKey.key_id == key_id)
        ).scalar_one_or_none()
        if row is None:
            return None
        entry = KnownKey(prefix, key_id, row.state, load_public_key(row.public_key))
        with self._lock:
            self._keys[(prefix, key_id)] = entry
        return entry

    def signature_state(
        self, prefix: str, payload: dict[str, Any], session: Session | None = None
    ) -> tuple[str, str | None]:
        """``(signature_state, key_id)`` of a signed payload (a result, ``status``, ``alarm``)
        from device *prefix*.

        With *session*, a key not (yet) approved in the cache is re-read first, so an approval
        made by another process counts at once.
        """
        sig = payload.get("signature")
        if sig is None:
            return "unsigned", None
        kid = sig.get("key_id") if isinstance(sig, dict) else None
        if not isinstance(kid, str):
            return "unknown_key", None
        known = self.get(prefix, kid)
        if session is not None and (known is None or known.state != "approved"):
            known = self.refresh(session, prefix, kid)
        if known is None:
            return "unknown_key", kid
        good = verify(payload, known.public)
        if known.state == "approved":
            return ("valid" if good else "invalid"), kid
        if not good:
            return "unknown_key", kid
        return ("pending_key" if known.state == "pending" else "rejected_key"), kid


def register_key(
    session: Session, prefix: str, public_b64: str, *, state: str, by: str
) -> DeviceKey:
    """Add (or decide on) a key out of band: an admin pastes a device's public key."""
    if state not in KEY_STATES:
        raise ValueError(f"bad key state {state!r}")
    public = load_public_key(public_b64.strip())
    kid = key_id_of(public)
    value = base64.b64encode(base64.b64decode(public_b64.strip())).decode("ascii")
    row = _insert_key(session, prefix, kid, value, state)
    now = utcnow()
    row.state = state
    row.decided_by = by
    row.decided_at = now
    session.flush()
    return row


def _insert_key(session: Session, prefix: str, kid: str, value: str, state: str) -> DeviceKey:
    """The registry row of (*prefix*, *kid*), inserted with *state* if absent (race-free:
    two ingesters, or an admin and an ingester, may add the same key at once)."""
    session.execute(
        insert_ignore(session, DeviceKey, ["prefix", "key_id"]),
        [
            {
                "prefix": prefix,
                "key_id": kid,
                "public_key": value,
                "state": state,
                "first_seen": utcnow(),
            }
        ],
    )
    return session.execute(
        select(DeviceKey).where(DeviceKey.prefix == prefix, DeviceKey.key_id == kid)
    ).scalar_one()
