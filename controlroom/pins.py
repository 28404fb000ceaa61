"""Pinned device keys for ``spectra-edge monitor``: trust on first use, kept in a file.

The first Ed25519 key a device announces in its ``info`` is pinned and saved. From then on
the monitor verifies that device's results, ``status`` and ``alarm`` against the pinned key
only; a different key announced later is a *key change*: shown loudly, never pinned and never
trusted. To accept a device's new key (a replaced SD card), remove its pin
(``spectra-edge monitor --repin PREFIX``, or delete its entry from the file) and the next
``info`` is pinned again.

The file is JSON, ``{prefix: {"alg", "key_id", "value", "pinned_at"}}``, written atomically.
Default: ``$XDG_DATA_HOME/spectra-edge/monitor-keys.json`` (``~/.local/share/...``).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlroom.errors import ControlRoomError
from edge.errors import EdgeError
from edge.publish.signing import ALGORITHM, key_id, load_public_key, verify
from spectra_io.atomic import atomic_write_text

PINS_FILE = "monitor-keys.json"


def default_pins_path() -> Path:
    """``$XDG_DATA_HOME/spectra-edge/monitor-keys.json`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spectra-edge" / PINS_FILE


@dataclass(frozen=True)
class Pin:
    """One device's pinned key."""

    key_id: str
    value: str
    pinned_at: str
    public: Ed25519PublicKey


@dataclass(frozen=True)
class Announcement:
    """What a device's ``info`` said about its key, compared with the pin."""

    #: "pinned" (first sight, now pinned), "same", "changed" (differs from the pin),
    #: "malformed" (no usable Ed25519 key in the info), "unsigned" (no pin yet, and the info
    #: is not signed by the key it announces: nothing is pinned from it).
    verdict: str
    announced_key_id: str | None


def announced_key(info: dict[str, Any]) -> tuple[str, Ed25519PublicKey] | None:
    """``(base64, key)`` of the Ed25519 key an ``info`` payload announces, if well formed."""
    key = info.get("public_key")
    if not isinstance(key, dict) or key.get("alg") != ALGORITHM:
        return None
    value = key.get("value")
    if not isinstance(value, str):
        return None
    try:
        return value, load_public_key(value)
    except EdgeError:
        return None


class KeyPins:
    """Device prefix -> pinned public key, persisted in *path* (None: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pins: dict[str, Pin] = self._load() if path is not None else {}

    def _load(self) -> dict[str, Pin]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise ControlRoomError(
                f"pinned keys {self.path} unreadable ({err}); fix or move it aside "
                "(every device is then pinned again on first sight)"
            ) from err
        if not isinstance(data, dict):
            raise ControlRoomError(f"pinned keys {self.path}: not a JSON object")
        pins: dict[str, Pin] = {}
        for prefix, entry in data.items():
            try:
                public = load_public_key(str(entry["value"]))
            except (EdgeError, KeyError, TypeError) as err:
                raise ControlRoomError(f"pinned keys {self.path}: entry {prefix!r}: {err}") from err
            pins[prefix] = Pin(
                key_id(public), str(entry["value"]), str(entry.get("pinned_at")), public
            )
        return pins

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            p: {
                "alg": ALGORITHM,
                "key_id": pin.key_id,
                "value": pin.value,
                "pinned_at": pin.pinned_at,
            }
            for p, pin in sorted(self._pins.items())
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as err:
            raise ControlRoomError(f"pinned keys {self.path}: cannot save: {err}") from err

    def get(self, prefix: str) -> Pin | None:
        """The pinned key of *prefix*, if any."""
        with self._lock:
            return self._pins.get(prefix)

    def announce(self, prefix: str, info: dict[str, Any]) -> Announcement:
        """Compare the key in *info* with the pin; pin it (and save) on first sight."""
        announced = announced_key(info)
        if announced is None:
            return Announcement("malformed", None)
        value, public = announced
        kid = key_id(public)  # derived from the key, never taken from the message
        with self._lock:
            pin = self._pins.get(prefix)
            if pin is not None:
                return Announcement("same" if pin.key_id == kid else "changed", kid)
            if not verify(info, public):  # proof of possession before a key is pinned
                return Announcement("unsigned", kid)
            now = datetime.now(UTC).isoformat(timespec="seconds")
            self._pins[prefix] = Pin(kid, value, now, public)
            self._save()
        return Announcement("pinned", kid)

    def forget(self, prefix: str) -> bool:
        """Remove *prefix*'s pin (its next ``info`` is pinned again); True if there was one."""
        with self._lock:
            if self._pins.pop(prefix, None) is None:
                return False
            self._save()
            return True
