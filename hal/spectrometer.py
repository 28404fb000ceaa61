"""The SPI spectrometer driver: the Pi's side of ``docs/spi-protocol.md``.

:class:`SpiSpectrometer` receives its bus, its data-ready line and its clock, so the same code
runs against the real front end (:class:`hal.bus.SpidevBus`, :class:`hal.bus.GpioDataReady`)
and against the wire-level simulator (:mod:`hal.sim`) with a :class:`hal.clock.FakeClock`.

Every wait has a deadline on that clock. A response with a bad CRC is read again (the front end
holds it, §3.3); a request the front end received damaged is sent again; a frame that does not
come in time is started again; each at most ``retries`` times, then a typed error from
:mod:`hal.errors` says what happened and where.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hal import protocol as p
from hal.bus import DigitalInput, SpiBus
from hal.clock import Clock, Deadline, SystemClock
from hal.errors import (
    CrcError,
    DeviceNotFoundError,
    FrameError,
    HalError,
    IdentityError,
    InstrumentStateError,
    InstrumentTimeoutError,
    SequenceError,
)
from hal.instrument import Frame, InstrumentIdentity

log = logging.getLogger(__name__)

EXPECTED_MODEL_PREFIX = "SE-ATR"  # §4.1
MIN_FIRMWARE = (1, 0, 0)
RESPONSE_TIMEOUT_S = 0.020  # §6: firmware answers within 2 ms; 10x margin
RESPONSE_POLL_S = 0.0002  # §6: re-read interval while MISO says "not ready"
STATUS_POLL_MIN_S = 0.001
STATUS_POLL_MAX_S = 0.020


@dataclass
class WireStats:
    """Traffic counters, for benchmarks and diagnostics."""

    transfers: int = 0
    bytes: int = 0
    crc_errors: int = 0
    retries: int = 0


class SpiSpectrometer:
    """The ATR mid-IR spectrometer behind its SPI front end; an :class:`hal.instrument.Instrument`.

    On the Pi, one call opens the real device (spidev bus + gpiozero data-ready line)::

        from hal import SpiSpectrometer

        with SpiSpectrometer.spidev(0, 0, data_ready_pin=25, integration_ms=50, coadds=16) as spec:
            dark = spec.acquire(dark=True)        # source off
            background = spec.acquire()           # empty crystal
            sample = spec.acquire()               # sample on the crystal
            print(spec.identity.model, spec.wavenumbers()[[0, -1]], spec.temperature_c())

    Wiring (Pi 40-pin header, SPI0, 3.3 V logic; ``docs/spi-protocol.md`` §1)::

        Pi pin 19  GPIO10 MOSI  ->  front end MOSI
        Pi pin 21  GPIO9  MISO  <-  front end MISO (pulled up: an absent device reads 0xFF)
        Pi pin 23  GPIO11 SCLK  ->  front end SCLK     (mode 0, 8 MHz default, 16 MHz max)
        Pi pin 24  GPIO8  CE0   ->  front end /CS      (device 0; CE1 = pin 26 is device 1)
        Pi pin 22  GPIO25       <-  front end DRDY     (data ready, active high; optional)
        Pi pin 20  GND          --  front end GND

    Without the DRDY wire pass ``data_ready_pin=None``: the driver polls STATUS instead.
    The constructor takes any :class:`~hal.bus.SpiBus` and :class:`~hal.bus.DigitalInput`,
    so the same driver runs on the wire-level simulator (:func:`hal.sim.make_simulator`)::

        sim = make_simulator(clock=FakeClock())
        spec = SpiSpectrometer(sim.bus, sim.data_ready, sim.clock)

    Opening happens in the constructor: identity check, geometry, stored calibration, then
    *integration_ms* and *coadds* are written (ValueError outside :data:`hal.protocol.LIMITS`).
    One thread at a time: the driver holds no lock.
    """

    def __init__(
        self,
        bus: SpiBus,
        data_ready: DigitalInput | None,
        clock: Clock | None = None,
        *,
        integration_ms: float = 50.0,
        coadds: int = 16,
        timeout_s: float = 5.0,
        retries: int = 3,
        expected_model: str = EXPECTED_MODEL_PREFIX,
    ) -> None:
        self._bus: SpiBus | None = bus
        self._drdy = data_ready
        self._clock: Clock = clock or SystemClock()
        self._timeout_s = timeout_s
        self._retries = retries
        self._seq = 0
        self._source_on: bool | None = None
        self._drdy_stuck = False
        self.label = getattr(bus, "label", "SPI bus")
        self.stats = WireStats()
        try:
            self._identity = self._check_identity(expected_model)
            self._axis = self._read_axis()
            self.configure(integration_ms, coadds)
        except BaseException:
            self.close()
            raise

    @classmethod
    def spidev(
        cls,
        bus: int = 0,
        device: int = 0,
        *,
        data_ready_pin: int | None = 25,
        max_speed_hz: int = 8_000_000,
        pin_factory: Any = None,
        clock: Clock | None = None,
        integration_ms: float = 50.0,
        coadds: int = 16,
        timeout_s: float = 5.0,
        retries: int = 3,
        expected_model: str = EXPECTED_MODEL_PREFIX,
    ) -> SpiSpectrometer:
        """Open the real front end on ``/dev/spidev<bus>.<device>`` with its data-ready line
        on BCM pin *data_ready_pin* (None: no line, poll STATUS), configured and ready.

        *pin_factory* is a gpiozero pin factory for the data-ready line (default:
        gpiozero's ``Device.pin_factory``). ``spidev`` and ``gpiozero`` are imported here, not
        at module import. A missing bus, module or pin raises
        :class:`~hal.errors.DeviceNotFoundError` saying what to check; the bus and line are
        released when anything fails.
        """
        from hal.bus import GpioDataReady, SpidevBus

        spi = SpidevBus(bus, device, max_speed_hz)
        line: GpioDataReady | None = None
        try:
            if data_ready_pin is not None:
                line = GpioDataReady(data_ready_pin, pin_factory=pin_factory)
            return cls(
                spi,
                line,
                clock,
                integration_ms=integration_ms,
                coadds=coadds,
                timeout_s=timeout_s,
                retries=retries,
                expected_model=expected_model,
            )
        except BaseException:
            spi.close()  # the constructor closes both itself once it has them
            if line is not None:
                line.close()
            raise

    def __repr__(self) -> str:
        name = f"{type(self).__module__.split('.')[0]}.{type(self).__name__}"
        if self.closed:
            return f"<{name} closed>"
        ident = self._identity
        return (
            f"<{name} {ident.model} serial {ident.serial} firmware {ident.firmware} "
            f"on {self.label}: {ident.pixels} px x {ident.bits} bit, "
            f"integration_ms={self.integration_ms:g}, coadds={self.coadds}>"
        )

    @property
    def integration_ms(self) -> float:
        """Integration time per scan now, ms (set with :meth:`configure`)."""
        return self._integration_us / 1000.0

    @property
    def coadds(self) -> int:
        """Scans co-added into each frame now (set with :meth:`configure`)."""
        return self._coadds

    # --- Instrument interface ------------------------------------------------------------------

    @property
    def identity(self) -> InstrumentIdentity:
        """Model, serial, firmware, pixel count and sample width, as read at open."""
        return self._identity

    @property
    def bus(self) -> SpiBus:
        """The bus this driver talks on (InstrumentStateError when closed)."""
        if self._bus is None:
            raise InstrumentStateError(f"{self.label}: instrument is closed")
        return self._bus

    def wavenumbers(self) -> npt.NDArray[np.float64]:
        """Wavenumber of each pixel from the calibration polynomial stored on the device."""
        self._check_open()
        return self._axis.copy()

    def temperature_c(self) -> float:
        """Detector temperature, deg C (§4.6)."""
        raw = self._command(p.Command.TEMPERATURE).payload
        return int.from_bytes(raw, "little", signed=True) / 100.0

    def configure(self, integration_ms: float, coadds: int) -> None:
        """Write integration time and co-adds (§4.7, §4.8); ValueError outside
        :data:`hal.protocol.LIMITS`."""
        us = p.LIMITS.check_exposure(integration_ms, coadds)
        self._write_register(p.Command.SET_INTEGRATION, us.to_bytes(4, "little"))
        self._write_register(p.Command.SET_COADDS, coadds.to_bytes(2, "little"))
        self._integration_us = us
        self._coadds = coadds

    def acquire(self, dark: bool = False) -> Frame:
        """One co-added frame; with ``dark=True`` the source is off for it.

        A frame that does not come within its exposure plus ``timeout_s`` is started again,
        at most ``retries`` times, then InstrumentTimeoutError.
        """
        self._check_open()
        for attempt in range(self._retries + 1):
            try:
                return self._acquire_once(dark)
            except InstrumentTimeoutError as err:
                if attempt == self._retries:
                    raise
                self.stats.retries += 1
                log.warning("%s: %s; starting the frame again", self.label, err)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Switch the source off (best effort) and release bus and line; idempotent."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        try:
            if self._source_on:
                self._bus = bus
                self._set_source(False)
        except HalError as err:
            log.debug("%s: source off at close failed: %s", self.label, err)
        finally:
            self._bus = None
            bus.close()
            if self._drdy is not None:
                self._drdy.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._bus is None

    def __enter__(self) -> SpiSpectrometer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- open ----------------------------------------------------------------------------------

    def _check_identity(self, expected_model: str) -> InstrumentIdentity:
        ident = p.IdentityPayload.unpack(self._command(p.Command.IDENTIFY).payload)
        hint = (
            f"check the wiring and chip-select of {self.label}, that the front end is powered, "
            "and that it runs spectra-edge front-end firmware"
        )
        if ident.magic != p.IDENTITY_MAGIC or ident.protocol != p.PROTOCOL_VERSION:
            raise IdentityError(
                f"{self.label}: device answers with magic {ident.magic!r} protocol "
                f"{ident.protocol}, expected {p.IDENTITY_MAGIC!r} protocol "
                f"{p.PROTOCOL_VERSION}: {hint}"
            )
        if not ident.model.startswith(expected_model):
            raise IdentityError(
                f"{self.label}: device is model {ident.model!r}, expected {expected_model}*: {hint}"
            )
        if ident.firmware < MIN_FIRMWARE:
            raise IdentityError(
                f"{self.label}: firmware {'.'.join(map(str, ident.firmware))} is older than "
                f"{'.'.join(map(str, MIN_FIRMWARE))}: update the front-end firmware"
            )
        pixels = int.from_bytes(self._command(p.Command.PIXELS).payload, "little")
        bits = self._command(p.Command.SAMPLE_WIDTH).payload[0]
        try:
            p.LIMITS.check_geometry(pixels, bits)
        except ValueError as err:
            raise IdentityError(f"{self.label}: {err}: {hint}") from None
        return InstrumentIdentity(
            model=ident.model,
            serial=ident.serial,
            firmware=".".join(map(str, ident.firmware)),
            pixels=pixels,
            bits=bits,
        )

    def _read_axis(self) -> npt.NDArray[np.float64]:
        coeffs = p.unpack_calibration(self._command(p.Command.CALIBRATION).payload)
        pixel = np.arange(self._identity.pixels, dtype=np.float64)
        axis = np.polynomial.polynomial.polyval(pixel, coeffs)
        if not (np.all(np.isfinite(axis)) and np.all(np.diff(axis) > 0)):
            raise IdentityError(
                f"{self.label}: stored wavelength calibration is not increasing: "
                "recalibrate the instrument"
            )
        return np.asarray(axis, dtype=np.float64)

    # --- acquisition ---------------------------------------------------------------------------

    def _acquire_once(self, dark: bool) -> Frame:
        frame = self._take_frame(dark)
        if (round(frame.integration_ms * 1000), frame.coadds) == (
            self._integration_us,
            self._coadds,
        ):
            return frame
        # the front end lost its settings (it rebooted): apply them again, take the frame again
        log.warning(
            "%s: frame %d taken at %g ms x %d, configured %g ms x %d: front end reset? "
            "writing the settings again",
            self.label,
            frame.sequence,
            frame.integration_ms,
            frame.coadds,
            self._integration_us / 1000,
            self._coadds,
        )
        self.configure(self._integration_us / 1000, self._coadds)
        return self._take_frame(dark)

    def _take_frame(self, dark: bool) -> Frame:
        self._set_source(not dark)  # every frame: cheap, and right even after a reset
        start = self._when_idle(p.Command.START)
        started = p.StartPayload.unpack(start.payload)
        deadline = Deadline(self._clock, started.duration_us / 1e6 + self._timeout_s)
        self._wait_frame(started, deadline)
        info = p.FrameInfo.unpack(self._command(p.Command.FRAME_INFO).payload)
        if info.frame_id != started.frame_id:
            raise SequenceError(
                f"{self.label}: frame info is for frame {info.frame_id}, "
                f"expected {started.frame_id}"
            )
        ident = self._identity
        if (info.pixels, info.bits) != (ident.pixels, ident.bits) or info.nbytes != (
            ident.pixels * ident.bits // 8
        ):
            raise FrameError(
                f"{self.label}: frame {info.frame_id} is {info.pixels} px x {info.bits} bit, "
                f"{info.nbytes} B; expected {ident.pixels} x {ident.bits}"
            )
        raw = self._read_frame(info)
        dtype = "<u2" if info.bits == 16 else "<u4"
        counts = np.frombuffer(raw, dtype=dtype).astype(np.float64)
        if info.bits == 32:  # 32-bit frames carry the co-add sum (§5.2)
            counts /= info.coadds
        return Frame(
            counts=counts,
            wavenumbers=self._axis.copy(),
            sequence=info.frame_id,
            integration_ms=info.integration_us / 1000.0,
            coadds=info.coadds,
            temperature_c=info.temperature_centi_c / 100.0,
            dark=not info.source_on,
            saturated=info.saturated,
            full_scale=p.FULL_SCALE_COUNTS,
        )

    def _wait_frame(self, started: p.StartPayload, deadline: Deadline) -> None:
        """Wait for the frame via data-ready (§6), confirmed by STATUS; poll when no line."""
        drdy = self._drdy
        if drdy is not None:
            stuck = drdy.is_active  # must have dropped at START (§6): the line is stuck active
            if stuck != self._drdy_stuck:  # log transitions only
                self._drdy_stuck = stuck
                if stuck:
                    log.warning("%s active right after START: stuck? polling STATUS", drdy.label)
                else:
                    log.warning("%s works again", drdy.label)
            if not stuck and not drdy.wait_for_active(deadline.remaining()):
                status = self._status()
                if self._frame_ready(status, started.frame_id):
                    raise InstrumentTimeoutError(
                        f"{self.label}: frame {started.frame_id} is ready but {drdy.label} "
                        f"never went active within {deadline.seconds:.3f} s: check the "
                        "data-ready wiring and pin number"
                    )
                raise InstrumentTimeoutError(
                    f"{self.label}: frame {started.frame_id} not ready within "
                    f"{deadline.seconds:.3f} s (exposure plus timeout)"
                )
        interval = min(STATUS_POLL_MAX_S, max(STATUS_POLL_MIN_S, started.duration_us / 20e6))
        while True:
            if self._frame_ready(self._status(), started.frame_id):
                return
            if deadline.expired():
                raise InstrumentTimeoutError(
                    f"{self.label}: frame {started.frame_id} not ready within "
                    f"{deadline.seconds:.3f} s (exposure plus timeout)"
                )
            self._clock.sleep(min(interval, deadline.remaining()))

    @staticmethod
    def _frame_ready(status: p.StatusPayload, frame_id: int) -> bool:
        return bool(status.flags & p.StatusFlags.FRAME_READY) and status.frame_id == frame_id

    def _read_frame(self, info: p.FrameInfo) -> bytes:
        """All chunks of the frame (§5.3), checked against the whole-frame CRC."""
        for attempt in range(self._retries + 1):
            buf = bytearray(info.nbytes)
            for offset, length in p.chunk_plan(info.nbytes, info.bits):
                buf[offset : offset + length] = self._read_chunk(info.frame_id, offset, length)
            if p.crc32(buf) == info.frame_crc:
                return bytes(buf)
            self.stats.crc_errors += 1
            if attempt < self._retries:
                log.warning("%s: frame %d CRC mismatch; reading again", self.label, info.frame_id)
        raise CrcError(f"{self.label}: frame {info.frame_id} CRC mismatch after all retries")

    def _read_chunk(self, frame_id: int, offset: int, length: int) -> bytes:
        request = p.pack_chunk_request(frame_id, offset, length)
        for attempt in range(self._retries + 1):
            resp = self._command(p.Command.READ_CHUNK, request, chunk_length=length)
            fid, off, data = p.unpack_chunk(resp.payload)
            if (fid, off) != (frame_id, offset):
                raise SequenceError(
                    f"{self.label}: chunk is frame {fid} offset {off}, "
                    f"expected frame {frame_id} offset {offset}"
                )
            if len(data) == length:
                return data
            if attempt < self._retries:
                self.stats.retries += 1
                log.warning("%s: chunk at %d truncated; reading again", self.label, offset)
        raise FrameError(
            f"{self.label}: frame {frame_id} truncated: chunk at offset {offset} has "
            f"{len(data)} of {length} bytes"
        )

    # --- transactions ----------------------------------------------------------------------------

    def _status(self) -> p.StatusPayload:
        return p.StatusPayload.unpack(self._command(p.Command.STATUS).payload)

    def _set_source(self, on: bool) -> None:
        self._write_register(p.Command.SET_SOURCE, bytes([int(on)]))
        self._source_on = on

    def _when_idle(self, command: int, payload: bytes = b"") -> p.Response:
        """Send *command*; while the front end answers BUSY (a frame is still running, e.g.
        one the host gave up on), send it again every 20 ms for up to ``timeout_s``."""
        resp = self._command(command, payload)
        deadline = Deadline(self._clock, self._timeout_s)
        while resp.status == p.Status.BUSY:
            if deadline.expired():
                raise InstrumentTimeoutError(
                    f"{self.label}: front end still busy after {self._timeout_s:g} s"
                )
            self._clock.sleep(min(STATUS_POLL_MAX_S, deadline.remaining()))
            resp = self._command(command, payload)
        return resp

    def _write_register(self, command: p.Command, value: bytes) -> None:
        resp = self._when_idle(command, value)
        if resp.payload != value:
            raise FrameError(
                f"{self.label}: {command.name} wrote {value.hex()} but read back "
                f"{resp.payload.hex()}"
            )

    def _command(self, command: int, payload: bytes = b"", chunk_length: int = 0) -> p.Response:
        """Send a request and read its response; resend when the front end saw a bad CRC."""
        for attempt in range(self._retries + 1):
            seq = self._next_seq()
            self._xfer(p.encode_request(command, seq, payload))
            resp = self._read_response(command, seq, p.response_length(command, chunk_length))
            if resp.status != p.Status.BAD_CRC:
                break
            self.stats.crc_errors += 1
            if attempt == self._retries:
                raise CrcError(f"{self.label}: front end reports request CRC errors")
            self.stats.retries += 1
        if resp.status in (p.Status.OK, p.Status.BUSY):
            return resp  # BUSY: see _when_idle
        name = p.Status(resp.status).name if resp.status in set(p.Status) else str(resp.status)
        if resp.status == p.Status.NO_FRAME:
            raise InstrumentStateError(f"{self.label}: front end has no such frame ({name})")
        raise FrameError(f"{self.label}: front end rejected command 0x{command:02X}: {name}")

    def _read_response(self, command: int, seq: int, length: int) -> p.Response:
        """Read the held response (§3.3) until it is there, intact and ours."""
        deadline = Deadline(self._clock, RESPONSE_TIMEOUT_S)
        failures = 0
        only_ff = True
        while True:
            raw = self._xfer(bytes(length))
            if raw[0] == p.RESPONSE_SYNC:
                only_ff = False
                try:
                    return self._decode_ours(raw, command, seq)
                except FrameError as err:
                    failures += 1
                    if isinstance(err, CrcError):
                        self.stats.crc_errors += 1
                    if failures > self._retries:
                        raise type(err)(f"{self.label}: {err}") from err
                    self.stats.retries += 1
                    log.debug("%s: %s; reading the response again", self.label, err)
                    continue
            only_ff = only_ff and all(b == p.NO_DEVICE for b in raw)
            if deadline.expired():
                if only_ff:
                    raise DeviceNotFoundError(
                        f"{self.label}: no answer from the front end (MISO reads 0xFF): "
                        "check the cable, the chip-select and the front end's power"
                    )
                raise InstrumentTimeoutError(
                    f"{self.label}: no response to command 0x{command:02X} within "
                    f"{RESPONSE_TIMEOUT_S * 1000:.0f} ms"
                )
            self._clock.sleep(RESPONSE_POLL_S)

    @staticmethod
    def _decode_ours(raw: bytes, command: int, seq: int) -> p.Response:
        """Decode *raw*; SequenceError when it answers another request (stale or foreign)."""
        try:
            resp = p.decode_response(raw)
        except CrcError:
            if (raw[1], raw[2]) != (command, seq):  # a longer packet for another request
                raise SequenceError(
                    f"response is to command 0x{raw[1]:02X} seq {raw[2]} (unverified), "
                    f"expected 0x{command:02X} seq {seq}"
                ) from None
            raise
        if (resp.command, resp.seq) != (command, seq):
            raise SequenceError(
                f"response is to command 0x{resp.command:02X} seq {resp.seq}, "
                f"expected 0x{command:02X} seq {seq}"
            )
        return resp

    def _xfer(self, data: bytes) -> bytes:
        bus = self.bus
        self.stats.transfers += 1
        self.stats.bytes += len(data)
        out = bus.xfer2(list(data))
        if len(out) != len(data):
            raise FrameError(f"{self.label}: transfer returned {len(out)} of {len(data)} bytes")
        return bytes(out)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _check_open(self) -> None:
        if self._bus is None:
            raise InstrumentStateError(f"{self.label}: instrument is closed")
