"""Open the instrument the configuration names, together with its sample handler.

``driver = "sim"``: the real SPI driver against the wire-level simulator, whose samples by name
come from the reference library (falling back to ``hal.sim``'s built-in set);
``driver = "spi"``: the real front end on ``/dev/spidev<bus>.<cs>`` with its data-ready GPIO;
``driver = "replay"``: recorded spectrum files.

:func:`open_instrument` hands back the instrument *and* what changes the crystal's contents
(its :class:`SampleHandler`: the simulator's stage, the replay driver's switch, or None on
real hardware, where the officer's hands do it), the way gpiozero hands back the pin factory
you chose. Whoever simulates the officer (the demo, ``--sample``, tests) places samples
through it; nothing above this module knows how a simulator works.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from edge.config.schema import InstrumentConfig
from edge.errors import EdgeError, LibraryError
from hal.bus import DigitalInput, SpiBus
from hal.clock import Clock, SystemClock
from hal.instrument import Instrument
from hal.sim import BUILTIN_SUBSTANCES, AbsorbanceSource, Stage, make_simulator
from hal.sim.stage import Resolver
from hal.spectrometer import SpiSpectrometer

log = logging.getLogger(__name__)


class SampleError(EdgeError, ValueError):
    """A sample cannot be placed: a malformed spec, an unknown substance, or an instrument
    that cannot place samples by name (only the simulator can)."""


class SampleHandler(Protocol):
    """What changes the contents of the crystal, on instruments that can do it themselves
    (the simulator's stage, the replay driver's switch). Real hardware has none."""

    def check(self, spec: str) -> None:
        """Raise :class:`SampleError` unless *spec* could be placed (nothing changes)."""
        ...

    def place(self, spec: str | None = None) -> None:
        """Put a sample on the crystal (:class:`SampleError` when that cannot be done)."""
        ...

    def clear(self) -> None:
        """Take everything off the crystal (for a background)."""
        ...


class SimulatedCrystal:
    """The simulator's stage: places ``"NAME[:FRACTION],..."`` (library or built-in names)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __repr__(self) -> str:
        return f"<SimulatedCrystal {'empty' if self.stage.empty else 'loaded'}>"

    def check(self, spec: str) -> None:
        """Parse *spec* and resolve every name, placing nothing."""
        try:
            self.stage.check_spec(spec)
        except (KeyError, ValueError) as err:
            raise SampleError(str(err.args[0] if err.args else err)) from err

    def place(self, spec: str | None = None) -> None:
        """Place *spec* (replacing what lay there); None leaves the crystal as it is."""
        if spec:
            self.check(spec)  # fail before anything changes
            self.stage.place_spec(spec)

    def clear(self) -> None:
        """Take everything off the crystal."""
        self.stage.remove()


class ReplaySwitch:
    """The replay driver's ``sample_present`` switch: it plays its files, names nothing."""

    def __init__(self, instrument: ReplaySpectrometerLike) -> None:
        self.instrument = instrument

    def __repr__(self) -> str:
        return f"<ReplaySwitch sample_present={self.instrument.sample_present}>"

    def check(self, spec: str) -> None:
        """Always refused: the replay driver plays recorded files, in order."""
        raise SampleError(f"the replay driver plays its recorded files; it cannot place {spec!r}")

    def place(self, spec: str | None = None) -> None:
        """Next sample frame plays the next file (*spec* must be None)."""
        if spec:
            self.check(spec)
        self.instrument.sample_present = True

    def clear(self) -> None:
        """Next frames are backgrounds."""
        self.instrument.sample_present = False


class ReplaySpectrometerLike(Protocol):
    """What :class:`ReplaySwitch` needs of :class:`hal.replay.ReplaySpectrometer`."""

    sample_present: bool


class OpenInstrument(NamedTuple):
    """An opened instrument and its sample handler (None on real hardware).

    Unpacks as a pair and closes the instrument as a context manager::

        with open_instrument(cfg) as (instrument, samples): ...
    """

    instrument: Instrument
    samples: SampleHandler | None

    def __enter__(self) -> OpenInstrument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.instrument.close()


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
) -> OpenInstrument:
    """The instrument named by ``cfg.driver``, opened and configured, with its sample handler.

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
        driver = _spi_driver(cfg, sim.bus, sim.data_ready, clock)
        return OpenInstrument(driver, SimulatedCrystal(sim.stage))
    if cfg.driver == "spi":
        driver = SpiSpectrometer.spidev(
            cfg.spi.bus,
            cfg.spi.chip_select,
            data_ready_pin=cfg.spi.data_ready_pin,
            max_speed_hz=cfg.spi.max_speed_hz,
            clock=clock,
            integration_ms=cfg.integration_ms,
            coadds=cfg.coadds,
            timeout_s=cfg.timeout_s,
            retries=cfg.retries,
        )
        return OpenInstrument(driver, None)
    if cfg.driver == "replay":
        from hal.replay import ReplaySpectrometer

        replay = ReplaySpectrometer(
            cfg.replay.files, integration_ms=cfg.integration_ms, coadds=cfg.coadds
        )
        return OpenInstrument(replay, ReplaySwitch(replay))
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
