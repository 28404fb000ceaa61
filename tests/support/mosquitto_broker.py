"""A real mosquitto broker per test, on a free loopback port (the fixtures are in conftest).

``mosquitto`` is a started plain broker; ``mosquitto_factory(persistence=..., tls=...)``
makes more (started). A :class:`Broker` can be stopped, killed and restarted on the same
port; with ``persistence=True`` sessions and queued messages survive a clean stop.
Tests needing it are skipped when mosquitto is not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class BrokerTls:
    """TLS listener files: CA, server cert/key; clients must present a cert signed by CA."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = True


@dataclass
class Broker:
    """One mosquitto process with a generated config in *workdir*."""

    workdir: Path
    port: int = field(default_factory=free_port)
    persistence: bool = False
    tls: BrokerTls | None = None
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    max_inflight: int = 0
    users: dict[str, str] | None = None  # name -> password; anonymous refused when set
    #: A whole config of the caller's (listener, TLS, ACL) used instead of the generated one;
    #: the log lines are appended.
    config_text: str | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config_text is not None:
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                f"{self.config_text}\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
                f"log_dest file {self.log_file}\nlog_type error\nlog_type warning\n"
            )
            return conf
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 200000",
            "max_inflight_messages 0"
            if self.max_inflight == 0
            else f"max_inflight_messages {self.max_inflight}",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.users:
            pw = self.workdir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pw.chmod(0o600)
            subprocess.run(
                [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-U", str(pw)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            lines.append(f"password_file {pw}")
        if self.persistence:
            lines += [f"persistence_location {self.workdir}/", "autosave_interval 1"]
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
            ]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> Broker:
        """Start the broker and wait (bounded) until it accepts TCP connections."""
        if MOSQUITTO is None:
            pytest.skip("mosquitto not installed")
        assert self.proc is None or self.proc.poll() is not None, "already running"
        conf = self._write_config()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.log_file.read_text() if self.log_file.exists() else ""
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {err}\n{log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"mosquitto did not listen on {self.port} in {timeout} s")
            time.sleep(0.02)

    def _wait_gone(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Clean stop (SIGTERM: a persistent broker saves its state)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self._wait_gone(timeout)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()

    def kill(self) -> None:
        """Hard stop (SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self._wait_gone(5.0)

    def restart(self, timeout: float = 10.0) -> Broker:
        """Stop cleanly and start again on the same port."""
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


BrokerFactory = Callable[..., Broker]
