"""hal.bus and hal.clock: real implementations fail clearly without hardware; the gpiozero
data-ready line works on MockFactory; FakeClock and Deadline; hal never imports edge."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from hal.bus import DigitalInput, GpioDataReady, SpiBus, SpidevBus
from hal.clock import Clock, Deadline, FakeClock, SystemClock
from hal.errors import DeviceNotFoundError
from hal.sim import make_simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def mock_pins() -> Iterator[object]:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = old


def test_fake_clock_and_deadline() -> None:
    clock = FakeClock(start=5.0)
    assert isinstance(clock, Clock) and isinstance(SystemClock(), Clock)
    d = Deadline(clock, 2.0)
    clock.sleep(0.5)
    assert clock.monotonic() == 5.5 and d.remaining() == 1.5 and not d.expired()
    clock.advance(3.0)
    assert d.expired() and d.remaining() == 0.0 and clock.slept == 0.5
    clock.sleep(-1.0)
    assert clock.monotonic() == 8.5
    with pytest.raises(ValueError):
        clock.advance(-1.0)


def test_simulator_parts_satisfy_the_protocols() -> None:
    sim = make_simulator(clock=FakeClock())
    assert isinstance(sim.bus, SpiBus)
    assert isinstance(sim.data_ready, DigitalInput)


@pytest.mark.skipif(os.path.exists("/dev/spidev5.4"), reason="device present")
def test_spidev_bus_missing_device_names_bus_and_chip_select() -> None:
    with pytest.raises(DeviceNotFoundError) as info:
        SpidevBus(5, 4)
    msg = str(info.value)
    assert "SPI bus 5, chip-select 4" in msg and "spidev5.4" in msg
    assert isinstance(info.value, OSError)


def test_gpio_data_ready_on_mock_pins(mock_pins: object) -> None:
    line = GpioDataReady(25)
    assert isinstance(line, DigitalInput) and "GPIO25" in line.label
    assert not line.is_active
    assert line.wait_for_active(0.05) is False
    pin = mock_pins.pin(25)  # type: ignore[attr-defined]
    timer = threading.Timer(0.05, pin.drive_high)
    timer.start()
    try:
        assert line.wait_for_active(5.0) is True
    finally:
        timer.cancel()
    assert line.is_active
    line.close()
    line.close()  # idempotent


def test_gpio_pin_in_use_is_device_error(mock_pins: object) -> None:
    first = GpioDataReady(24)
    try:
        with pytest.raises(DeviceNotFoundError, match="GPIO24"):
            GpioDataReady(24)
    finally:
        first.close()


def test_hal_does_not_import_edge() -> None:
    code = (
        "import sys, hal.sim, hal.spectrometer, hal.bus, hal.protocol; "
        "bad = [m for m in sys.modules if m == 'edge' or m.startswith('edge.')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_spy_bus_logs_traffic_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from hal.bus import SpyBus
    from hal.spectrometer import SpiSpectrometer

    sim = make_simulator(clock=FakeClock(), seed=1)
    with caplog.at_level(logging.DEBUG, logger="hal.bus.spy"):
        spy = SpyBus(sim.bus)
        assert isinstance(spy, SpiBus)
        with SpiSpectrometer(spy, sim.data_ready, sim.clock, integration_ms=5, coadds=2) as spec:
            frame = spec.acquire()
    assert "MOSI 5a 01 01 00 00" in caplog.text  # IDENTIFY, seq 1, LEN 0 (docs §3.1)
    assert "MISO a5 01 01 00 28 00 53 50 58 45" in caplog.text  # "SPXE", LEN 40
    assert "(2064 B)" in caplog.text  # the 1,024-pixel frame in one chunk
    assert frame.counts.shape == (1024,) and sim.bus.closed
