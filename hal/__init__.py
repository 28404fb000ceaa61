"""Hardware abstraction layer of spectra-edge: the spectrometer on SPI, the panel on GPIO.

``hal`` talks to the spectrometer front end over SPI and to the operator panel over GPIO.
It knows nothing of :mod:`edge`; ``edge`` reaches hardware only through the interfaces here.

On the Pi::

    from hal import Panel, SpiSpectrometer

    with SpiSpectrometer.spidev(0, 0, data_ready_pin=25) as spec:   # /dev/spidev0.0, GPIO25
        frame = spec.acquire()

    with Panel(scan_button=17, ready_led=5, busy_led=6, alarm_led=13, buzzer=19) as panel:
        panel.show_ready()

Anywhere, the same driver on the wire-level simulator::

    from hal import FakeClock, SpiSpectrometer, make_simulator

    sim = make_simulator(clock=FakeClock())
    with SpiSpectrometer(sim.bus, sim.data_ready, sim.clock) as spec:
        sim.stage.place("polystyrene")
        frame = spec.acquire()

The names below load on first use (``import hal`` itself costs almost nothing, so the error
tree and the protocol limits are cheap to reach from a command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hal.errors import HalError, SpectraEdgeError
from spectra_io.lazy import lazy_exports

if TYPE_CHECKING:
    from hal.bus import DigitalInput, GpioDataReady, SpiBus, SpidevBus, SpyBus
    from hal.clock import Clock, Deadline, FakeClock, SystemClock
    from hal.errors import (
        DeviceNotFoundError,
        IdentityError,
        InstrumentStateError,
        InstrumentTimeoutError,
        PanelError,
    )
    from hal.instrument import Frame, Instrument, InstrumentIdentity
    from hal.panel import Panel
    from hal.protocol import LIMITS, Limits
    from hal.replay import ReplaySpectrometer
    from hal.sim import Fault, Simulator, make_simulator
    from hal.spectrometer import SpiSpectrometer

#: Exported name -> the module that defines it.
_EXPORTS = {
    # the spectrometer
    "SpiSpectrometer": "hal.spectrometer",
    "ReplaySpectrometer": "hal.replay",
    "Instrument": "hal.instrument",
    "InstrumentIdentity": "hal.instrument",
    "Frame": "hal.instrument",
    "LIMITS": "hal.protocol",
    "Limits": "hal.protocol",
    # the simulator
    "make_simulator": "hal.sim",
    "Simulator": "hal.sim",
    "Fault": "hal.sim",
    # the operator panel
    "Panel": "hal.panel",
    # buses, lines and clocks
    "SpiBus": "hal.bus",
    "DigitalInput": "hal.bus",
    "SpidevBus": "hal.bus",
    "GpioDataReady": "hal.bus",
    "SpyBus": "hal.bus",
    "Clock": "hal.clock",
    "SystemClock": "hal.clock",
    "FakeClock": "hal.clock",
    "Deadline": "hal.clock",
    # errors
    "DeviceNotFoundError": "hal.errors",
    "IdentityError": "hal.errors",
    "InstrumentStateError": "hal.errors",
    "InstrumentTimeoutError": "hal.errors",
    "PanelError": "hal.errors",
}

__all__ = [
    "LIMITS",
    "Clock",
    "Deadline",
    "DeviceNotFoundError",
    "DigitalInput",
    "FakeClock",
    "Fault",
    "Frame",
    "GpioDataReady",
    "HalError",
    "IdentityError",
    "Instrument",
    "InstrumentIdentity",
    "InstrumentStateError",
    "InstrumentTimeoutError",
    "Limits",
    "Panel",
    "PanelError",
    "ReplaySpectrometer",
    "Simulator",
    "SpectraEdgeError",
    "SpiBus",
    "SpiSpectrometer",
    "SpidevBus",
    "SpyBus",
    "SystemClock",
    "make_simulator",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
