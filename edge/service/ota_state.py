"""The retained, signed ``<prefix>/ota/state``: the updater's ``ota/state.json`` as the
service sees it, published when it changes (checked every :data:`POLL_S`) and, being
retained by the link, again on every reconnect.

The updater runs as root beside the service and writes the file under the install root
(``ota.root``); the service only reads it. No file yet is ``idle``. Signed with the device
key, like results: the control room can tell a device's own report from a forged one.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from edge.config.schema import Config
from edge.lifecycle import Deadline, Worker
from edge.publish import messages
from edge.publish.client import MqttLink
from edge.publish.signing import DeviceKey

log = logging.getLogger(__name__)

#: How often the state file is looked at, s.
POLL_S = 1.0
#: The retained kind (topic ``<prefix>/ota/state``).
KIND = "ota/state"


class OtaStatePublisher:
    """Publishes ``ota/state`` on start and whenever ``<ota.root>/ota/state.json`` changes."""

    def __init__(
        self, cfg: Config, link: MqttLink, key: DeviceKey, *, poll_s: float = POLL_S
    ) -> None:
        self.cfg = cfg
        self.link = link
        self.key = key
        self.root = cfg.ota.root
        self.path = self.root / "ota" / "state.json"
        self.poll_s = poll_s
        self.last: dict[str, Any] | None = None
        self._seen: tuple[int, int] | None = None
        self._thread = Worker("ota-state", self._loop)

    def start(self) -> None:
        """Publish the state now, then follow the file."""
        self.check()
        self._thread.start()

    def stop(self, deadline: float | Deadline) -> bool:
        """Stop following; join until *deadline*."""
        return self._thread.stop(deadline)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def check(self) -> bool:
        """Publish if the file changed since last time (or nothing was published yet)."""
        stamp = self._stamp()
        if self.last is not None and stamp == self._seen:
            return False
        self._seen = stamp
        try:
            self.publish(self.read())
        except Exception:
            log.exception("ota/state not published")
            return False
        return True

    def read(self) -> dict[str, Any]:
        """The updater's state document; ``{}`` (idle) when missing or unreadable."""
        from edge.ota.trial import read_json

        doc = read_json(self.path)
        return doc if isinstance(doc, dict) else {}

    def installed(self) -> dict[str, str | None]:
        """The versions in use under the install root (the app: this one, if not installed)."""
        from edge.ota.layout import Layout

        found = Layout(Path(self.root)).installed()
        if found.get("app") is None:
            found["app"] = messages.versions_of()["app"]
        return found

    def publish(self, state: dict[str, Any]) -> dict[str, Any]:
        """Sign and publish (retained) ``ota/state`` for *state*; returns the payload."""
        payload = messages.ota_state_payload(
            self.cfg.device.id, self.cfg.device.post, state, self.installed()
        )
        signed = self.key.sign(payload)
        self.link.publish_retained(KIND, signed)
        if self.last is None or self.last.get("state") != signed["state"]:
            log.info("ota/state: %s %s", signed["state"], signed.get("reason") or "")
        self.last = signed
        return signed

    def _loop(self, stopping: threading.Event) -> None:
        while not stopping.wait(self.poll_s):
            self.check()
