"""Stand-ins for the service's neighbours: a scan engine with a fake crystal, a panel that
records what it was told, a link that records what it would publish, a courier that commits
nothing. The service's own parts are always the real ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from helpers_mqtt import make_identification

from edge.identify.result import Identification
from edge.preprocess.grid import STANDARD_GRID
from edge.publish import messages
from edge.publish.courier import Submitted
from edge.publish.topics import Topics
from edge.scan.data import ScanData
from edge.scan.engine import EngineState
from edge.service.panel import PanelView, Severity

PREFIX = "customs/post-1/dev-1"


class FakeCrystal:
    """The fake engine's sample handler: the test, as the officer, places samples here."""

    def __init__(self) -> None:
        self.spec: str | None = None

    def check(self, spec: str) -> None:
        pass

    def place(self, spec: str | None = None) -> None:
        if spec:
            self.spec = spec

    def clear(self) -> None:
        self.spec = None


class FakeEngine:
    """Deterministic stand-in for instrument + pipeline; can be told to fail. ``scans``
    records what lay on the crystal at each scan ("cocaine" raises an alarm)."""

    def __init__(self, fail: list[BaseException] | None = None) -> None:
        self.fail = fail if fail is not None else []
        self.samples = FakeCrystal()
        self.scans: list[str | None] = []
        self.backgrounds = 0
        self.closed = False

    def identity(self) -> dict[str, Any] | None:
        return {"model": "SIM-ATR", "serial": "T-1", "firmware": "1.0", "pixels": 64, "bits": 16}

    def state(self) -> EngineState:
        return EngineState(31.5, 12.0)

    def identification(self) -> dict[str, Any] | None:
        return {"library": "test", "calibration": "default", "calibration_matches_library": False}

    def take_background(self) -> dict[str, float]:
        if self.fail:
            raise self.fail.pop(0)
        self.backgrounds += 1
        return {"signal": 0.9}

    def scan(self, reference: str | None = None) -> ScanData:
        if self.fail:
            raise self.fail.pop(0)
        on_crystal = self.samples.spec
        self.scans.append(on_crystal)
        rng = np.random.default_rng(len(self.scans))
        raw_x = np.linspace(600.0, 4100.0, 64)
        return ScanData(
            identification=make_identification(len(self.scans), alarm=on_crystal == "cocaine"),
            wavenumbers=STANDARD_GRID,
            spectrum=rng.random(STANDARD_GRID.size),
            raw_wavenumbers=raw_x,
            sample=rng.normal(2e4, 100, 64),
            background=rng.normal(3e4, 100, 64),
            dark=rng.normal(200, 5, 64),
            reference=reference,
        )

    def close(self) -> None:
        self.closed = True


class RecordingPanel(PanelView):
    """A panel that records every light it was asked to show; ``broken`` makes it raise."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def show_ready(self) -> None:
        self.calls.append("ready")

    def show_busy(self) -> None:
        self.calls.append("busy")

    def show_result(self, severity: Severity) -> None:
        self.calls.append(f"result:{severity}")

    def show_error(self) -> None:
        self.calls.append("error")

    def clear_alarm(self) -> None:
        self.calls.append("clear_alarm")


class FakeLink:
    """Records what the device would publish (retained kind -> payloads)."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.topics = Topics(prefix)
        self.last_error: str | None = None
        self.retained: dict[str, list[dict[str, Any]]] = {}

    def publish_retained(self, kind: str, payload: dict[str, Any]) -> None:
        messages.validate(kind, payload)  # every state message keeps its contract
        self.retained.setdefault(kind, []).append(payload)

    def last(self, kind: str) -> dict[str, Any]:
        return self.retained[kind][-1]


@dataclass
class FakeCourier:
    """Commits nothing; hands back what a courier would (seq counts up)."""

    submitted: list[tuple[Identification, str | None, str | None]] = field(default_factory=list)

    def submit_result(
        self,
        identification: Identification,
        *,
        scan_id: str | None = None,
        consignment: str | None = None,
        **_: Any,
    ) -> Submitted:
        self.submitted.append((identification, scan_id, consignment))
        payload = messages.result_payload(
            identification,
            device="dev-1",
            post="post-1",
            seq=len(self.submitted),
            scan_id=scan_id or messages.new_scan_id(),
            consignment=consignment,
        )
        return Submitted(len(self.submitted), payload["scan_id"], len(self.submitted), payload)
