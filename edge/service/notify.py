"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``): the few lines it takes.

Each message is one datagram of ``KEY=value`` lines sent to the unix socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without ``$NOTIFY_SOCKET``
(not started by systemd: a bench, a test, ``spectra-edge run`` by hand) every call does
nothing. A send that fails is logged once and never raised: the service scans without systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger(__name__)

#: The environment variables systemd sets.
NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


class Notifier:
    """Sends ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``."""

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get(NOTIFY_SOCKET_ENV, "")
        self.address: str | None = ("\0" + addr[1:] if addr.startswith("@") else addr) or None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        """There is a notify socket to talk to."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` *fields* as one datagram; True when sent."""
        if self.address is None:
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(data, self.address)
            except OSError as err:
                if not self._warned:
                    log.warning("systemd notify socket %s: %s", self.address, err)
                    self._warned = True
                return False
        return True

    def ready(self, status: str) -> bool:
        """The service is ready (``READY=1``) and what it is doing."""
        return self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        """Free-form status (``systemctl status`` shows it)."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """Keep-alive (``WATCHDOG=1``)."""
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A reload starts (``READY=1`` follows when it is done)."""
        return self.send("RELOADING=1", "STATUS=reloading the identifier")

    def stopping(self) -> bool:
        """The service is stopping."""
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Close the socket (a later send opens it again)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval_s(default: float | None = None) -> float | None:
    """How often to ping: half of ``$WATCHDOG_USEC`` when it is meant for this process (systemd
    sets ``$WATCHDOG_PID``), else *default* (None: no watchdog)."""
    usec = os.environ.get(WATCHDOG_USEC_ENV)
    pid = os.environ.get(WATCHDOG_PID_ENV)
    if not usec or (pid and pid != str(os.getpid())):
        return default
    try:
        value = int(usec)
    except ValueError:
        return default
    return value / 2e6 if value > 0 else default
