"""Open the instrument the configuration names, and reach its sample stage when it has one.

``driver = "sim"``: the real SPI driver against the wire-level simulator, whose samples by name
come from the reference library (falling back to ``hal.sim``'s built-in set);
``driver = "spi"``: the real front end on ``/dev/spidev<bus>.<cs>`` with its data-ready GPIO;
``driver = "replay"``: recorded spectrum files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.config.schema import InstrumentConfig
from edge.errors import LibraryError
from hal.bus import DigitalInput, SpiBus
from hal.clock import Clock, SystemClock
from hal.errors import DeviceNotFoundError, HalError
from hal.instrument import Instrument
from hal.sim import BUILTIN_SUBSTANCES, AbsorbanceSource, SimSpiBus, Stage, make_simulator
from hal.sim.stage import Resolver
from hal.spectrometer import SpiSpectrometer

log = logging.getLogger(__name__)


def library_resolver(library_path: Path | None = None) -> Resolver:
    """Substance name -> absorbance from the reference library, else the built-in set.

    A library that cannot be loaded is logged once and the built-in set is used alone.
    """
    try:
        from edge.library import load_library

        library = load_library(library_path)
    except (ImportError, LibraryError, OSError) as err:
        log.warning("reference library unavailable (%s); simulating built-in substances", err)
        return BUILTIN_SUBSTANCES.__getitem__

    def resolve(name: str) -> AbsorbanceSource:
        if name in library:
            grid, absorbance = library.absorbance(name)
            return grid, np.nan_to_num(absorbance.astype(np.float64), nan=0.0)
        if name in BUILTIN_SUBSTANCES:
            return BUILTIN_SUBSTANCES[name]
        raise KeyError(
            f"{name!r} is neither in library {library.name!r} nor built in "
            f"({', '.join(sorted(BUILTIN_SUBSTANCES))})"
        )

    return resolve


def open_instrument(
    cfg: InstrumentConfig,
    *,
    clock: Clock | None = None,
    substances: Resolver | None = None,
    library_path: Path | None = None,
) -> Instrument:
    """The instrument named by ``cfg.driver``, opened and configured.

    *substances* resolves sample names for the simulator (default: :func:`library_resolver`
    of *library_path*). Missing hardware raises :class:`~hal.errors.DeviceNotFoundError`.
    """
    clock = clock or SystemClock()
    if cfg.driver == "sim":
        sim = make_simulator(
            clock=clock,
            pixels=cfg.sim.pixels,
            bits=cfg.sim.bits,
            seed=cfg.sim.seed,
            temperature_c=cfg.sim.temperature_c,
            atmosphere=cfg.sim.atmosphere,
            substances=substances or library_resolver(library_path),
        )
        return _spi_driver(cfg, sim.bus, sim.data_ready, clock)
    if cfg.driver == "spi":
        from hal.bus import GpioDataReady, SpidevBus

        bus = SpidevBus(cfg.spi.bus, cfg.spi.chip_select, cfg.spi.max_speed_hz)
        try:
            line = GpioDataReady(cfg.spi.data_ready_pin)
        except DeviceNotFoundError:
            bus.close()
            raise
        return _spi_driver(cfg, bus, line, clock)
    if cfg.driver == "replay":
        from hal.replay import ReplaySpectrometer

        return ReplaySpectrometer(
            cfg.replay.files, integration_ms=cfg.integration_ms, coadds=cfg.coadds
        )
    raise ValueError(f"unknown instrument driver {cfg.driver!r}")  # pragma: no cover


def _spi_driver(
    cfg: InstrumentConfig, bus: SpiBus, line: DigitalInput | None, clock: Clock
) -> SpiSpectrometer:
    return SpiSpectrometer(
        bus,
        line,
        clock,
        integration_ms=cfg.integration_ms,
        coadds=cfg.coadds,
        timeout_s=cfg.timeout_s,
        retries=cfg.retries,
    )


class SampleHandler(Protocol):
    """Who changes what is on the crystal: the simulator's stage, the replay driver, or
    nobody (real hardware: the officer does it, prompted by the panel)."""

    def clear(self) -> None:
        """Empty the crystal (for a background)."""
        ...

    def load(self) -> None:
        """Put the sample on the crystal."""
        ...


class SimulatedSample:
    """Places *spec* (``"NAME[:FRACTION],..."``) on a simulator stage; with None, ``load``
    leaves the crystal as it is (empty after a background)."""

    def __init__(self, stage: Stage, spec: str | None) -> None:
        if spec:
            stage.check_spec(spec)  # fail before any frame is taken
        self.stage = stage
        self.spec = spec

    def clear(self) -> None:
        """Take everything off the crystal."""
        self.stage.remove()

    def load(self) -> None:
        """Place the sample (KeyError for an unknown name, ValueError for a bad spec)."""
        if self.spec:
            self.stage.place_spec(self.spec)


class ReplaySample:
    """The replay driver's ``sample_present`` switch."""

    def __init__(self, instrument: object) -> None:
        self.instrument = instrument

    def clear(self) -> None:
        """Next frames are backgrounds."""
        self.instrument.sample_present = False  # type: ignore[attr-defined]

    def load(self) -> None:
        """Next frame plays the next file."""
        self.instrument.sample_present = True  # type: ignore[attr-defined]


def simulator_stage(instrument: Instrument) -> Stage | None:
    """The sample stage of a simulated instrument, None for anything else."""
    if isinstance(instrument, SpiSpectrometer):
        try:
            bus = instrument.bus
        except HalError:
            return None
        if isinstance(bus, SimSpiBus):
            return bus.frontend.stage
    return None


def sample_handler(instrument: Instrument, sample: str | None = None) -> SampleHandler | None:
    """How samples change on *instrument*: the simulator stage (placing *sample*), the replay
    switch, or None on real hardware. *sample* is only meaningful on the simulator."""
    stage = simulator_stage(instrument)
    if stage is not None:
        return SimulatedSample(stage, sample)
    if hasattr(instrument, "sample_present"):
        return ReplaySample(instrument)
    return None
