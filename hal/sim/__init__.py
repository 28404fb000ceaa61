"""Wire-level simulator of the spectrometer front end (``docs/spi-protocol.md``).

>>> from hal.clock import FakeClock
>>> from hal.spectrometer import SpiSpectrometer
>>> sim = make_simulator(clock=FakeClock(), pixels=1024)
>>> with SpiSpectrometer(sim.bus, sim.data_ready, sim.clock) as spec:
...     _ = sim.stage.place("polystyrene")
...     frame = spec.acquire()
>>> frame.counts.shape
(1024,)

Samples are absorbance spectra the caller supplies (arrays on a wavenumber grid or callables),
by name through a resolver, or from the small built-in set :data:`BUILTIN_SUBSTANCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal.clock import Clock
from hal.sim.frontend import Fault, Faults, FrontEnd, SimDataReady, SimSpiBus
from hal.sim.optics import OpticsParams
from hal.sim.stage import Sample, Stage, parse_sample_spec
from hal.sim.substances import BUILTIN_SUBSTANCES, AbsorbanceSource, as_absorbance_fn

__all__ = [
    "BUILTIN_SUBSTANCES",
    "AbsorbanceSource",
    "Fault",
    "Faults",
    "FrontEnd",
    "OpticsParams",
    "Sample",
    "SimDataReady",
    "SimSpiBus",
    "Simulator",
    "Stage",
    "as_absorbance_fn",
    "make_simulator",
    "parse_sample_spec",
]


@dataclass(frozen=True, repr=False)
class Simulator:
    """A front end with its bus and data-ready line, ready to hand to the driver.

    Make one with :func:`make_simulator`; it stands where the real hardware is wired::

        real front end                       simulator
        /dev/spidev0.0 (SpidevBus)           sim.bus         (SimSpiBus)
        DRDY on GPIO25 (GpioDataReady)       sim.data_ready  (SimDataReady)
        the crystal                          sim.stage       (place / remove samples)
        a bad cable, old firmware, ...       sim.faults      (inject Fault.*)
        time                                 sim.clock       (FakeClock: no real waiting)

    ``SpiSpectrometer(sim.bus, sim.data_ready, sim.clock)`` is the real driver on top of it.
    """

    frontend: FrontEnd
    bus: SimSpiBus
    data_ready: SimDataReady

    def __repr__(self) -> str:
        fe = self.frontend
        state = "unplugged" if fe.unplugged else "closed" if self.bus.closed else "plugged in"
        return (
            f"<hal.sim.Simulator {fe.MODEL} {fe.serial} {fe.pixels} px x {fe.bits} bit, "
            f"{fe.temperature_c:g} °C, clock {type(fe.clock).__name__}, {state}>"
        )

    @property
    def clock(self) -> Clock:
        """The clock the front end keeps time on."""
        return self.frontend.clock

    @property
    def stage(self) -> Stage:
        """Put samples on the crystal, take them off."""
        return self.frontend.stage

    @property
    def faults(self) -> Faults:
        """Inject faults."""
        return self.frontend.faults


def make_simulator(**frontend_kwargs: Any) -> Simulator:
    """A :class:`FrontEnd` (keyword arguments as its constructor: ``clock``, ``pixels``,
    ``bits``, ``seed``, ``temperature_c``, ``atmosphere``, ``substances``, ...) with its bus
    and data-ready line; the simulator's entry point."""
    fe = FrontEnd(**frontend_kwargs)
    return Simulator(fe, SimSpiBus(fe), SimDataReady(fe))
