"""A fake systemd notify socket: a unix datagram socket the test binds and hands to the
service as ``$NOTIFY_SOCKET``; it records every datagram (``KEY=value`` lines)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path


class NotifySocket:
    """Bound at *path*; ``messages`` is every datagram received, as ``{key: value}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fake-notify", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self) -> list[dict[str, str]]:
        with self._lock:
            return [m for _, m in self.messages]

    def since(self, t: float) -> list[dict[str, str]]:
        """Messages received after monotonic time *t*."""
        with self._lock:
            return [m for at, m in self.messages if at > t]

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float, after: float = 0.0
    ) -> dict[str, str]:
        """The first message after *after* matching *predicate*; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.since(after):
                if predicate(m):
                    return m
            time.sleep(0.02)
        raise TimeoutError(f"no matching notify message in {timeout} s: {self.snapshot()[-5:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
