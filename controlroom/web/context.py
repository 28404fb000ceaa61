"""What the web app needs: the database, a way to send commands, the live-feed notifier."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from controlroom.commands import CommandSender
from controlroom.db import Database


class Notifier:
    """Wakes live-feed streams when an in-process ingester committed new rows.

    Without an ingester in this process the streams poll the database (every
    :data:`controlroom.web.events.POLL_S`); with one, they wake at once.
    """

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self) -> None:
        """Wake every waiting stream (callable from any thread)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout_s: float) -> None:
        """Return when notified or after *timeout_s*."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)


@dataclass
class ConsoleContext:
    """Shared state of one web app."""

    db: Database
    commands: CommandSender | None = None
    notifier: Notifier = field(default_factory=Notifier)
    #: Reference library directory for the scan page's overlay (None: the shipped one).
    library: Path | None = None
    #: How long the scan page waits for a device's get_spectrum answer, seconds.
    spectrum_wait_s: float = 10.0
    #: Mark the session cookie Secure (behind TLS).
    secure_cookies: bool = False
