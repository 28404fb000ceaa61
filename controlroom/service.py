"""The console process: database, ingester, gap watcher, command link and web app together.

``spectra-edge console`` runs :func:`run_console`. :class:`Console` is the same composition
for tests and benchmarks (``start()``/``stop()``, web server on a thread). With
``ingest=False`` a process serves only the web app (more web processes); with ``web=False``
only the ingester (more ingesters on the shared subscription, docs/deploy.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from controlroom.commands import CommandLink
from controlroom.db import Database, open_database, sqlite_url
from controlroom.errors import ControlRoomError
from controlroom.gaps import GapPolicy, GapWatcher
from controlroom.ingest import Ingester, IngestSettings
from controlroom.topics import DEFAULT_FILTER

log = logging.getLogger(__name__)

DB_FILE = "console.sqlite"


def default_db_url(data_dir: Path) -> str:
    """The embedded default: an SQLite file in the data directory."""
    return sqlite_url(Path(data_dir) / DB_FILE)


@dataclass(frozen=True)
class ConsoleSettings:
    """Everything ``spectra-edge console`` can be told."""

    db_url: str
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    filter: str = DEFAULT_FILTER
    share_group: str = "spectra-console"
    client_id: str | None = None
    ingest: bool = True
    web: bool = True
    library: Path | None = None
    secure_cookies: bool = False
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    gap_policy: GapPolicy = field(default_factory=GapPolicy)


class Console:
    """One console process; :meth:`start` brings every part up, :meth:`stop` takes it down."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.db: Database | None = None
        self.ingester: Ingester | None = None
        self.gaps: GapWatcher | None = None
        self.link: CommandLink | None = None
        self.server: object | None = None
        self._server_thread: threading.Thread | None = None

    def start(self, *, serve_web_in_thread: bool = True) -> None:
        """Open the database (migrating it), connect to the broker, start the web server."""
        st = self.settings
        self.db = open_database(st.db_url)
        self.link = CommandLink(
            st.mqtt_host, st.mqtt_port, username=st.mqtt_username, password=st.mqtt_password
        )
        self.link.start(wait_s=0)
        if st.ingest:
            self.ingester = Ingester(
                IngestSettings(
                    host=st.mqtt_host,
                    port=st.mqtt_port,
                    filter=st.filter,
                    share_group=st.share_group,
                    client_id=st.client_id,
                    username=st.mqtt_username,
                    password=st.mqtt_password,
                ),
                self.db,
            )
            self.ingester.start()
            self.gaps = GapWatcher(self.db, self.link, st.gap_policy)
            self.gaps.start()
        if st.web and serve_web_in_thread:
            self._server_thread = threading.Thread(
                target=self.serve, name="console-web", daemon=True
            )
            self._server_thread.start()
            self._wait_web()

    def app(self):  # type: ignore[no-untyped-def]
        """The web app over this console's database and broker link."""
        from controlroom.web.app import create_app
        from controlroom.web.context import ConsoleContext

        assert self.db is not None
        ctx = ConsoleContext(
            self.db,
            self.link,
            library=self.settings.library,
            secure_cookies=self.settings.secure_cookies,
        )
        if self.ingester is not None:
            self.ingester.add_listener(lambda report: ctx.notifier.notify())
        return create_app(ctx)

    def serve(self) -> None:
        """Run the web server until it is told to stop (blocks)."""
        import uvicorn

        config = uvicorn.Config(
            self.app(),
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self.server = server
        server.run()

    def _wait_web(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.server is not None and getattr(self.server, "started", False):
                return
            if self._server_thread is not None and not self._server_thread.is_alive():
                break
            time.sleep(0.05)
        raise ControlRoomError(
            f"web server on {self.settings.http_host}:{self.settings.http_port} did not start"
        )

    @property
    def url(self) -> str:
        """The console's base URL."""
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def stop(self, *, leave_group: bool = False) -> None:
        """Stop the web server, the ingester and the links (bounded)."""
        if self.server is not None:
            self.server.should_exit = True  # type: ignore[attr-defined]
        if self._server_thread is not None:
            self._server_thread.join(10)
        if self.gaps is not None:
            self.gaps.stop()
        if self.ingester is not None:
            self.ingester.stop(leave_group=leave_group)
        if self.link is not None:
            self.link.stop()
        if self.db is not None:
            self.db.close()


def run_console(settings: ConsoleSettings) -> int:
    """What ``spectra-edge console`` runs: until SIGINT/SIGTERM."""
    console = Console(settings)
    console.start(serve_web_in_thread=False)
    try:
        if settings.web:
            print(f"spectra-edge console: {console.url}  (database {settings.db_url})", flush=True)
            console.serve()  # uvicorn handles SIGINT/SIGTERM
        else:
            import signal

            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_a: stop.set())
            signal.signal(signal.SIGINT, lambda *_a: stop.set())
            print(f"spectra-edge console: ingesting into {settings.db_url}", flush=True)
            while not stop.wait(1.0):
                pass
    finally:
        console.server = None
        console.stop()
    return 0
