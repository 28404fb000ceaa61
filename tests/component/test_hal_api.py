"""The hal/ API a hardware engineer uses: exports, the one-call opener for the real device,
``repr``, read-only settings. The real spidev cannot exist here, so a stand-in ``spidev``
module forwards transfers to the wire-level simulator: the opener, ``SpidevBus`` and the driver
run unchanged on top of it; the data-ready line is gpiozero's on a ``MockFactory``."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

import hal
from hal import SpiSpectrometer
from hal.bus import GpioDataReady, SpidevBus
from hal.clock import FakeClock
from hal.errors import DeviceNotFoundError, IdentityError
from hal.sim import FrontEnd, Simulator, make_simulator

pytestmark = pytest.mark.timeout(60)


class FakeSpiDev:
    """The shape of ``spidev.SpiDev`` (open, mode, bits_per_word, max_speed_hz, xfer2, close),
    wired to a simulated front end."""

    frontend: FrontEnd
    opened: ClassVar[list[FakeSpiDev]] = []

    def __init__(self) -> None:
        self.mode = -1
        self.bits_per_word = -1
        self.max_speed_hz = -1
        self.where: tuple[int, int] | None = None
        FakeSpiDev.opened.append(self)

    def open(self, bus: int, device: int) -> None:
        self.where = (bus, device)

    def xfer2(self, data: list[int]) -> list[int]:
        assert self.where is not None, "transfer before open"
        return list(self.frontend.transfer(bytes(data)))

    def close(self) -> None:
        self.where = None


@pytest.fixture
def fake_spidev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Simulator]:
    """A ``spidev`` module and a device node for bus 0 / device 1, backed by a simulator."""
    sim = make_simulator(clock=FakeClock(), atmosphere=False, serial="SIM-API-1")
    FakeSpiDev.frontend = sim.frontend
    FakeSpiDev.opened = []
    module = types.ModuleType("spidev")
    module.SpiDev = FakeSpiDev  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spidev", module)
    (tmp_path / "spidev0.1").touch()
    monkeypatch.setattr(SpidevBus, "DEVICE_PATH", str(tmp_path / "spidev{bus}.{chip_select}"))
    yield sim


@pytest.fixture
def mock_factory() -> Iterator[object]:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    yield factory
    factory.close()


def test_spidev_opener_polling_without_a_data_ready_line(fake_spidev: Simulator) -> None:
    with SpiSpectrometer.spidev(
        0, 1, data_ready_pin=None, clock=fake_spidev.clock, integration_ms=20, coadds=4
    ) as spec:
        (dev,) = FakeSpiDev.opened
        assert dev.where == (0, 1) and (dev.mode, dev.bits_per_word) == (0, 8)
        assert dev.max_speed_hz == 8_000_000
        assert spec.identity.serial == "SIM-API-1"
        assert (spec.integration_ms, spec.coadds) == (20.0, 4)
        assert (fake_spidev.frontend.integration_us, fake_spidev.frontend.coadds) == (20_000, 4)
        frame = spec.acquire()
        assert frame.counts.shape == (1024,) and not frame.dark
    assert spec.closed and dev.where is None


def test_spidev_opener_with_a_gpiozero_data_ready_line(
    fake_spidev: Simulator, mock_factory: object
) -> None:
    spec = SpiSpectrometer.spidev(
        0, 1, data_ready_pin=25, pin_factory=mock_factory, clock=fake_spidev.clock
    )
    line = spec._drdy
    assert isinstance(line, GpioDataReady) and line.pin == 25
    assert repr(line) == "<hal.bus.GpioDataReady GPIO25, is_active=False>"
    assert mock_factory.pin(25) is line._dev.pin  # type: ignore[attr-defined]
    spec.close()
    assert line.closed and repr(line) == "<hal.bus.GpioDataReady GPIO25, closed>"
    GpioDataReady(25, pin_factory=mock_factory).close()  # the pin was released


def test_spidev_opener_releases_the_bus_when_the_device_is_wrong(
    fake_spidev: Simulator, mock_factory: object
) -> None:
    from hal.sim import Fault

    fake_spidev.faults.inject(Fault.WRONG_IDENTITY)
    with pytest.raises(IdentityError, match="SPI bus 0, chip-select 1"):
        SpiSpectrometer.spidev(0, 1, pin_factory=mock_factory, clock=fake_spidev.clock)
    (dev,) = FakeSpiDev.opened
    assert dev.where is None  # the bus was closed
    GpioDataReady(25, pin_factory=mock_factory).close()  # and the data-ready pin released


def test_spidev_opener_releases_the_bus_when_the_pin_is_taken(
    fake_spidev: Simulator, mock_factory: object
) -> None:
    taken = GpioDataReady(25, pin_factory=mock_factory)
    with pytest.raises(DeviceNotFoundError, match="GPIO25"):
        SpiSpectrometer.spidev(0, 1, pin_factory=mock_factory, clock=fake_spidev.clock)
    (dev,) = FakeSpiDev.opened
    assert dev.where is None
    taken.close()


def test_spidev_opener_without_the_device_node_says_what_to_check(
    fake_spidev: Simulator,
) -> None:
    with pytest.raises(DeviceNotFoundError, match=r"SPI bus 3, chip-select 0.*spi=on"):
        SpiSpectrometer.spidev(3, 0, data_ready_pin=None)
    assert FakeSpiDev.opened == []


def test_repr_and_read_only_settings() -> None:
    sim = make_simulator(clock=FakeClock(), atmosphere=False)
    spec = SpiSpectrometer(sim.bus, sim.data_ready, sim.clock, integration_ms=12.5, coadds=3)
    assert repr(spec) == (
        "<hal.SpiSpectrometer SE-ATR-MIR1 serial SIM-000001 firmware 1.2.0 on simulated SPI "
        "bus 0, chip-select 0: 1024 px x 16 bit, integration_ms=12.5, coadds=3>"
    )
    spec.configure(40.0, 8)
    assert (spec.integration_ms, spec.coadds) == (40.0, 8)
    with pytest.raises(AttributeError):
        spec.coadds = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"coadds 0 outside 1\.\.1024"):
        spec.configure(40.0, 0)
    assert (spec.integration_ms, spec.coadds) == (40.0, 8)  # a refused setting changes nothing
    spec.close()
    assert repr(spec) == "<hal.SpiSpectrometer closed>"
    assert repr(sim).startswith("<hal.sim.Simulator SE-ATR-MIR1 SIM-000001 1024 px x 16 bit")


def test_hal_exports_the_classes_a_hardware_engineer_uses() -> None:
    for name in hal.__all__:
        assert getattr(hal, name) is not None, name
    assert hal.SpiSpectrometer is SpiSpectrometer
    assert {"Panel", "SpiSpectrometer", "ReplaySpectrometer", "make_simulator", "LIMITS"} <= set(
        hal.__all__
    )
    assert set(hal.__all__) <= set(dir(hal))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = hal.Nope  # type: ignore[attr-defined]


def test_hal_exports_load_lazily() -> None:
    """``import hal`` (and the error tree under it) loads neither numpy nor gpiozero."""
    code = (
        "import sys, hal, hal.errors, hal.protocol; "
        "heavy = [m for m in ('numpy', 'gpiozero', 'spidev', 'hal.spectrometer', 'hal.panel') "
        "if m in sys.modules]; "
        "assert not heavy, heavy; "
        "hal.SpiSpectrometer; assert 'numpy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_no_private_gpiozero_api() -> None:
    root = Path(hal.__file__).parent
    offenders = [p for p in root.rglob("*.py") if "_default_pin_factory" in p.read_text()]
    assert offenders == []


def test_replay_repr_and_read_only_settings(tmp_path: Path) -> None:
    import numpy as np

    from hal import ReplaySpectrometer
    from spectra_io import SpectrumRecord, write_spectrum

    x = np.linspace(600.0, 4000.0, 851)
    write_spectrum(tmp_path / "a.jdx", SpectrumRecord(x, 0.1 + 0 * x, "absorbance"))
    inst = ReplaySpectrometer([tmp_path / "a.jdx"], pixels=256, integration_ms=20, coadds=2)
    assert (inst.integration_ms, inst.coadds) == (20.0, 2)
    assert repr(inst) == (
        "<hal.ReplaySpectrometer 1 file(s), next a.jdx, 256 px, integration_ms=20, coadds=2>"
    )
    with pytest.raises(AttributeError):
        inst.integration_ms = 5.0  # type: ignore[misc]
    inst.close()
    assert repr(inst) == "<hal.ReplaySpectrometer closed>"
