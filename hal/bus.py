"""What the spectrometer driver needs from the outside: an SPI bus and digital lines.

Small typed protocols; the real implementations (:class:`SpidevBus`, :class:`GpioDataReady`)
import ``spidev``/``gpiozero`` lazily so the package imports anywhere, and a missing device
fails with a message that says what to check. The simulator (:mod:`hal.sim`) provides
stand-ins with the same shape. :meth:`hal.spectrometer.SpiSpectrometer.spidev` opens both
for the driver in one call.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from hal.errors import DeviceNotFoundError


@runtime_checkable
class SpiBus(Protocol):
    """One SPI device: the ``xfer2`` shape of spidev (chip-select held for the whole list)."""

    label: str

    def xfer2(self, data: list[int]) -> list[int]:
        """Clock *data* out on MOSI and return the bytes clocked in on MISO."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class DigitalInput(Protocol):
    """An input line, e.g. the front end's data-ready output."""

    label: str

    @property
    def is_active(self) -> bool: ...

    def wait_for_active(self, timeout: float) -> bool:
        """Wait up to *timeout* s for the line to be active; True if it is."""
        ...

    def close(self) -> None: ...


class SpidevBus:
    """``/dev/spidev<bus>.<chip_select>`` through the ``spidev`` module, SPI mode 0."""

    #: Where the kernel's spidev driver puts the device (checked first, for a clear message).
    DEVICE_PATH = "/dev/spidev{bus}.{chip_select}"

    def __init__(self, bus: int, chip_select: int, max_speed_hz: int = 8_000_000) -> None:
        self.label = f"SPI bus {bus}, chip-select {chip_select}"
        self.max_speed_hz = max_speed_hz
        path = self.DEVICE_PATH.format(bus=bus, chip_select=chip_select)
        try:
            import spidev  # type: ignore[import-not-found,unused-ignore]
        except ImportError as err:
            raise DeviceNotFoundError(
                f"{self.label}: the 'spidev' module is not installed "
                "(on the device: apt install python3-spidev, which the release venv sees; "
                "elsewhere: pip install spidev, which builds on Linux)"
            ) from err
        if not os.path.exists(path):
            raise DeviceNotFoundError(
                f"{self.label}: {path} does not exist; enable SPI (dtparam=spi=on in "
                "/boot/firmware/config.txt), check the bus and chip-select numbers in "
                "[instrument.spi], or use driver = 'sim'"
            )
        dev: Any = spidev.SpiDev()
        try:
            dev.open(bus, chip_select)
            dev.mode = 0
            dev.bits_per_word = 8
            dev.max_speed_hz = max_speed_hz
        except OSError as err:
            dev.close()
            raise DeviceNotFoundError(f"{self.label}: cannot open {path}: {err}") from err
        self._dev: Any = dev

    def xfer2(self, data: list[int]) -> list[int]:
        """One transfer with chip-select held; OSError becomes DeviceNotFoundError."""
        if self._dev is None:
            raise DeviceNotFoundError(f"{self.label}: bus is closed")
        try:
            return list(self._dev.xfer2(data))
        except OSError as err:
            raise DeviceNotFoundError(f"{self.label}: transfer failed: {err}") from err

    def close(self) -> None:
        """Release the device; idempotent."""
        if self._dev is not None:
            self._dev.close()
            self._dev = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._dev is None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode 0, {self.max_speed_hz} Hz"
        return f"<hal.bus.SpidevBus {self.label}, {state}>"


def _gpiozero_device(kind: str, pin: int, **kwargs: Any) -> Any:
    try:
        import gpiozero
    except ImportError as err:
        raise DeviceNotFoundError("the 'gpiozero' module is not installed") from err
    try:
        return getattr(gpiozero, kind)(pin, **kwargs)
    except Exception as err:  # gpiozero raises many kinds (BadPinFactory, PinInvalidPin, ...)
        raise DeviceNotFoundError(f"GPIO{pin}: cannot open as {kind}: {err}") from err


class GpioDataReady:
    """The data-ready line on a BCM GPIO pin (active high), through gpiozero.

    *pin_factory* is passed to gpiozero as is: None uses ``gpiozero.Device.pin_factory``
    (the board's, or whatever ``GPIOZERO_PIN_FACTORY`` names), a ``MockFactory`` mock pins.
    """

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        self.label = f"data-ready on GPIO{pin}"
        self.pin = pin
        self._dev: Any = _gpiozero_device(
            "DigitalInputDevice", pin, pull_up=False, pin_factory=pin_factory
        )

    @property
    def is_active(self) -> bool:
        """Level of the line now."""
        return bool(self._dev.is_active)

    def wait_for_active(self, timeout: float) -> bool:
        """Block up to *timeout* s for the line to go active (gpiozero's edge wait)."""
        return bool(self._dev.wait_for_active(timeout=max(0.0, timeout)))

    def close(self) -> None:
        """Release the pin; idempotent."""
        if self._dev is not None:
            self._dev.close()
            self._dev = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._dev is None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"is_active={self.is_active}"
        return f"<hal.bus.GpioDataReady GPIO{self.pin}, {state}>"


class SpyBus:
    """Wraps any :class:`SpiBus` and logs every transfer as hex at DEBUG (field debugging).

    ``SpyBus(SpidevBus(0, 0))`` behaves exactly like the bus it wraps; long transfers are
    logged as their first and last *edge* bytes.
    """

    def __init__(self, inner: SpiBus, edge: int = 24) -> None:
        import logging

        self.inner = inner
        self.label = inner.label
        self.edge = edge
        self.log = logging.getLogger("hal.bus.spy")

    def _hex(self, data: list[int]) -> str:
        if len(data) <= 2 * self.edge:
            return bytes(data).hex(" ")
        head, tail = bytes(data[: self.edge]).hex(" "), bytes(data[-self.edge :]).hex(" ")
        return f"{head} .. ({len(data)} B) .. {tail}"

    def xfer2(self, data: list[int]) -> list[int]:
        """Transfer through the wrapped bus, logging MOSI and MISO."""
        miso = self.inner.xfer2(data)
        self.log.debug("%s MOSI %s", self.label, self._hex(data))
        self.log.debug("%s MISO %s", self.label, self._hex(miso))
        return miso

    def close(self) -> None:
        """Close the wrapped bus."""
        self.inner.close()
