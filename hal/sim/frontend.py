"""Wire-level emulator of the spectrometer's front-end microcontroller.

:class:`FrontEnd` answers SPI transfers byte for byte as ``docs/spi-protocol.md`` specifies;
:class:`SimSpiBus` and :class:`SimDataReady` give it the shape of :class:`hal.bus.SpiBus` and
:class:`hal.bus.DigitalInput`, so :class:`hal.spectrometer.SpiSpectrometer` runs against it
unchanged. Timing follows the given clock: a frame is ready ``duration_us`` after START.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np

from hal import protocol as p
from hal.clock import Clock, SystemClock
from hal.errors import CrcError, DeviceNotFoundError, FrameError
from hal.sim.optics import Atmosphere, OpticsParams, render_scan_mean
from hal.sim.stage import Resolver, Stage
from hal.sim.substances import BUILTIN_SUBSTANCES, AbsorbanceSource, FloatArray


class Fault(Enum):
    """Faults the simulator injects on demand (see :meth:`Faults.inject`)."""

    CORRUPT_CRC = "corrupt_crc"  # a response goes out with a damaged CRC
    CORRUPT_REQUEST = "corrupt_request"  # the front end sees a request with a bad CRC
    STALE_RESPONSE = "stale_response"  # the previous response is sent again
    DROP_DATA_READY = "drop_data_ready"  # a frame completes without raising data-ready
    DATA_READY_STUCK_HIGH = "data_ready_stuck_high"  # line always active
    DATA_READY_STUCK_LOW = "data_ready_stuck_low"  # line never active
    WRONG_IDENTITY = "wrong_identity"  # IDENTIFY reports another model
    OLD_FIRMWARE = "old_firmware"  # IDENTIFY reports firmware 0.9.0
    TRUNCATED_FRAME = "truncated_frame"  # a READ_CHUNK answer carries half the data
    CORRUPT_FRAME_DATA = "corrupt_frame_data"  # a chunk's data damaged before its CRC is made
    UNPLUG_MID_FRAME = "unplug_mid_frame"  # device vanishes after the first chunk of a frame


class Faults:
    """Pending faults: each with a count of occurrences left (None: every time)."""

    def __init__(self) -> None:
        self._left: dict[Fault, int | None] = {}
        self._only: dict[Fault, int] = {}
        self.fired: dict[Fault, int] = {}

    def inject(self, fault: Fault, times: int | None = 1, command: int | None = None) -> None:
        """Arm *fault* for the next *times* occasions (None: always); optionally only for
        responses to *command* (CORRUPT_CRC, STALE_RESPONSE)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        self._left[fault] = times
        if command is not None:
            self._only[fault] = command
        else:
            self._only.pop(fault, None)

    def clear(self, fault: Fault | None = None) -> None:
        """Disarm one fault, or all."""
        if fault is None:
            self._left.clear()
            self._only.clear()
        else:
            self._left.pop(fault, None)
            self._only.pop(fault, None)

    def armed(self, fault: Fault, command: int | None = None) -> bool:
        """True when *fault* would fire now (does not consume it)."""
        if fault not in self._left:
            return False
        only = self._only.get(fault)
        return only is None or command is None or only == command

    def take(self, fault: Fault, command: int | None = None) -> bool:
        """Consume one occurrence of *fault* if armed; True when it fires."""
        if not self.armed(fault, command):
            return False
        left = self._left[fault]
        if left is not None:
            if left <= 1:
                self.clear(fault)
            else:
                self._left[fault] = left - 1
        self.fired[fault] = self.fired.get(fault, 0) + 1
        return True


@dataclass
class _Acquisition:
    frame_id: int
    ready_at: float
    info: p.FrameInfo
    data: bytes
    raises_data_ready: bool


class FrontEnd:
    """The front-end microcontroller with its detector, source and ADC.

    ``stage`` puts samples on the crystal; ``faults`` injects failures; ``temperature_c`` is the
    detector temperature (drives dark current and wavelength drift); ``unplug()`` pulls the cable.
    """

    MODEL = "SE-ATR-MIR1"
    FIRMWARE = (1, 2, 0)

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        pixels: int = 1024,
        bits: int = 16,
        seed: int = 1234,
        temperature_c: float = 32.0,
        atmosphere: bool = True,
        substances: Mapping[str, AbsorbanceSource] | Resolver | None = None,
        serial: str = "SIM-000001",
        optics: OpticsParams | None = None,
        response_latency_s: float = 0.0,
    ) -> None:
        p.LIMITS.check_geometry(pixels, bits)  # ValueError
        self.clock: Clock = clock or SystemClock()
        self.pixels = pixels
        self.bits = bits
        self.serial = serial
        self.optics = optics or OpticsParams()
        self.temperature_c = temperature_c
        self.atmosphere = atmosphere
        self.response_latency_s = response_latency_s
        self.rng = np.random.default_rng(seed)
        self.stage = Stage(_resolver(substances), np.random.default_rng(seed + 1))
        self.faults = Faults()
        # calibration stored in the device: 640..4010 cm^-1 with a slight curvature
        span = 4010.0 - 640.0
        n1 = pixels - 1
        self.calibration: tuple[float, ...] = (640.0, span / n1 - 40.0 / n1, 40.0 / n1**2)
        self.integration_us = 50_000
        self.coadds = 16
        self.source_on = False
        self.unplugged = False
        self.render_seconds = 0.0  # CPU time spent rendering frames (excluded by benchmarks)
        # command codes received, in order (the last 10,000: a long demo run stays bounded)
        self.transactions: deque[int] = deque(maxlen=10_000)
        self._atm = Atmosphere()
        self._frame_id = 0
        self._acq: _Acquisition | None = None
        self._response: bytes | None = None
        self._previous: bytes | None = None
        self._response_at = 0.0
        self._chunks_served = 0

    # --- the physical world --------------------------------------------------------------------

    def unplug(self) -> None:
        """Pull the cable: MISO floats high (0xFF), data-ready stays low."""
        self.unplugged = True

    def replug(self) -> None:
        """Plug the cable back in: the front end reboots to its power-on state (no frame, no
        held response, default integration and co-adds, source off)."""
        self.unplugged = False
        self._acq = None
        self._response = None
        self.integration_us, self.coadds, self.source_on = 50_000, 16, False

    def true_wavenumbers(self) -> FloatArray:
        """Where each pixel really is now: calibration plus temperature drift."""
        pix = np.arange(self.pixels, dtype=np.float64)
        nominal = np.polynomial.polynomial.polyval(pix, self.calibration)
        drift = self.optics.drift_cm1_per_c * (
            self.temperature_c - self.optics.calibration_temperature_c
        )
        return np.asarray(nominal + drift, dtype=np.float64)

    @property
    def held_frame(self) -> tuple[p.FrameInfo, bytes] | None:
        """The frame the front end holds (header and raw bytes), for tests and benchmarks."""
        return None if self._acq is None else (self._acq.info, self._acq.data)

    # --- lines ----------------------------------------------------------------------------------

    def data_ready_rises_at(self) -> float | None:
        """When the data-ready line is (or will be) active; None: not for the current frame."""
        if self.faults.armed(Fault.DATA_READY_STUCK_HIGH):
            return -np.inf
        if self.unplugged or self.faults.armed(Fault.DATA_READY_STUCK_LOW):
            return None
        acq = self._acq
        if acq is None or not acq.raises_data_ready:
            return None
        return acq.ready_at

    def data_ready(self) -> bool:
        """Level of the data-ready line now."""
        at = self.data_ready_rises_at()
        return at is not None and self.clock.monotonic() >= at

    # --- SPI ------------------------------------------------------------------------------------

    def transfer(self, mosi: bytes) -> bytes:
        """One chip-select assertion: bytes in on MOSI, bytes out on MISO (same length)."""
        n = len(mosi)
        if self.unplugged:
            return b"\xff" * n
        if n and mosi[0] == p.REQUEST_SYNC:
            self._on_request(mosi)
            return bytes(n)
        return self._on_read(n)

    def _on_read(self, n: int) -> bytes:
        if self._response is None or self.clock.monotonic() < self._response_at:
            return bytes(n)  # NOT_READY
        out = self._response
        cmd = out[1]
        if self._previous is not None and self.faults.take(Fault.STALE_RESPONSE, cmd):
            out = self._previous
        if self.faults.take(Fault.CORRUPT_CRC, cmd):
            damaged = bytearray(out)
            damaged[-1] ^= 0x5A
            out = bytes(damaged)
        return out[:n] + bytes(max(0, n - len(out)))

    def _on_request(self, mosi: bytes) -> None:
        self._previous = self._response
        self._response_at = self.clock.monotonic() + self.response_latency_s
        try:
            if self.faults.take(Fault.CORRUPT_REQUEST):
                raise CrcError("injected")
            req = p.decode_request(mosi)
        except FrameError:
            cmd = mosi[1] if len(mosi) > 1 else 0
            seq = mosi[2] if len(mosi) > 2 else 0
            self._response = p.encode_response(cmd, seq, p.Status.BAD_CRC)
            return
        self.transactions.append(req.command)
        status, payload = self._handle(req)
        self._response = p.encode_response(req.command, req.seq, status, payload)

    # --- commands (§4) --------------------------------------------------------------------------

    def _handle(self, req: p.Request) -> tuple[int, bytes]:
        handler = _HANDLERS.get(req.command)
        if handler is None:
            return p.Status.UNKNOWN_COMMAND, b""
        return handler(self, req.payload)

    def _identify(self, _: bytes) -> tuple[int, bytes]:
        model = "XY-OTHER-9" if self.faults.take(Fault.WRONG_IDENTITY) else self.MODEL
        fw = (0, 9, 0) if self.faults.take(Fault.OLD_FIRMWARE) else self.FIRMWARE
        ident = p.IdentityPayload(p.IDENTITY_MAGIC, p.PROTOCOL_VERSION, fw, model, self.serial)
        return p.Status.OK, ident.pack()

    def _status(self, _: bytes) -> tuple[int, bytes]:
        flags = p.StatusFlags(0)
        if self.source_on:
            flags |= p.StatusFlags.SOURCE_ON
        if self._acq is not None:
            if self.clock.monotonic() >= self._acq.ready_at:
                flags |= p.StatusFlags.FRAME_READY
            else:
                flags |= p.StatusFlags.BUSY
        return p.Status.OK, p.StatusPayload(flags, 0, self._frame_id).pack()

    def _pixels(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, self.pixels.to_bytes(2, "little")

    def _width(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, bytes([self.bits])

    def _calibration(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, p.pack_calibration(self.calibration)

    def _temperature(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, round(self.temperature_c * 100).to_bytes(2, "little", signed=True)

    def _get_integration(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, self.integration_us.to_bytes(4, "little")

    def _get_coadds(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, self.coadds.to_bytes(2, "little")

    def _get_source(self, _: bytes) -> tuple[int, bytes]:
        return p.Status.OK, bytes([int(self.source_on)])

    def _busy(self) -> bool:
        return self._acq is not None and self.clock.monotonic() < self._acq.ready_at

    def _set_integration(self, payload: bytes) -> tuple[int, bytes]:
        if len(payload) != 4:
            return p.Status.BAD_ARGUMENT, b""
        value = int.from_bytes(payload, "little")
        lo, hi = p.LIMITS.integration_us
        if not lo <= value <= hi:
            return p.Status.BAD_ARGUMENT, b""
        if self._busy():
            return p.Status.BUSY, b""
        self.integration_us = value
        return p.Status.OK, payload

    def _set_coadds(self, payload: bytes) -> tuple[int, bytes]:
        if len(payload) != 2:
            return p.Status.BAD_ARGUMENT, b""
        value = int.from_bytes(payload, "little")
        lo, hi = p.LIMITS.coadds
        if not lo <= value <= hi:
            return p.Status.BAD_ARGUMENT, b""
        if self._busy():
            return p.Status.BUSY, b""
        self.coadds = value
        return p.Status.OK, payload

    def _set_source(self, payload: bytes) -> tuple[int, bytes]:
        if len(payload) != 1 or payload[0] > 1:
            return p.Status.BAD_ARGUMENT, b""
        if self._busy():
            return p.Status.BUSY, b""
        self.source_on = bool(payload[0])
        return p.Status.OK, payload

    def _start(self, _: bytes) -> tuple[int, bytes]:
        if self._busy():
            return p.Status.BUSY, b""
        duration_us = p.LIMITS.frame_duration_us(self.integration_us, self.coadds)
        if duration_us > p.LIMITS.max_frame_us:
            return p.Status.BAD_ARGUMENT, b""
        self._frame_id = (self._frame_id + 1) & 0xFFFF
        info, data = self._render(self._frame_id)
        self._acq = _Acquisition(
            frame_id=self._frame_id,
            ready_at=self.clock.monotonic() + duration_us / 1e6,
            info=info,
            data=data,
            raises_data_ready=not self.faults.take(Fault.DROP_DATA_READY),
        )
        self._chunks_served = 0
        return p.Status.OK, p.StartPayload(self._frame_id, duration_us).pack()

    def _frame_info(self, _: bytes) -> tuple[int, bytes]:
        acq = self._acq
        if acq is None or self.clock.monotonic() < acq.ready_at:
            return p.Status.NO_FRAME, b""
        return p.Status.OK, acq.info.pack()

    def _read_chunk(self, payload: bytes) -> tuple[int, bytes]:
        if len(payload) != 8:
            return p.Status.BAD_ARGUMENT, b""
        frame_id, offset, length = p.unpack_chunk_request(payload)
        acq = self._acq
        if acq is None or acq.frame_id != frame_id or self.clock.monotonic() < acq.ready_at:
            return p.Status.NO_FRAME, b""
        if not 0 < length <= p.LIMITS.max_chunk or offset + length > len(acq.data):
            return p.Status.BAD_ARGUMENT, b""
        data = acq.data[offset : offset + length]
        if self.faults.take(Fault.TRUNCATED_FRAME):
            data = data[: length // 2]
        if self.faults.take(Fault.CORRUPT_FRAME_DATA):
            data = bytes([data[0] ^ 0x01]) + data[1:]  # packet CRC is fine, frame CRC is not
        self._chunks_served += 1
        if self._chunks_served == 1 and self.faults.take(Fault.UNPLUG_MID_FRAME):
            self.unplugged = True
        return p.Status.OK, p.pack_chunk(frame_id, offset, data)

    # --- rendering ------------------------------------------------------------------------------

    def _render(self, frame_id: int) -> tuple[p.FrameInfo, bytes]:
        t0 = time.process_time()
        nu = self.true_wavenumbers()
        integration_ms = self.integration_us / 1000.0
        atm = np.zeros_like(nu)
        if self.atmosphere and self.source_on:
            wobble = 1.0 + 0.15 * self.rng.standard_normal(2)
            atm = self._atm.absorbance(
                nu, self.optics.humidity * wobble[0], self.optics.co2 * wobble[1]
            )
        mean, saturated = render_scan_mean(
            nu,
            self.stage.absorbance(nu),
            atm,
            integration_ms=integration_ms,
            coadds=self.coadds,
            temperature_c=self.temperature_c,
            source_on=self.source_on,
            params=self.optics,
            rng=self.rng,
        )
        if self.bits == 16:
            data = np.rint(mean).astype("<u2").tobytes()
        else:  # 32-bit frames carry the co-add sum (§5.2)
            data = np.rint(mean * self.coadds).astype("<u4").tobytes()
        info = p.FrameInfo(
            frame_id=frame_id,
            pixels=self.pixels,
            bits=self.bits,
            source_on=self.source_on,
            coadds=self.coadds,
            integration_us=self.integration_us,
            temperature_centi_c=round(self.temperature_c * 100),
            saturated=saturated,
            nbytes=len(data),
            frame_crc=p.crc32(data),
        )
        self.render_seconds += time.process_time() - t0
        return info, data


_HANDLERS: dict[int, Callable[[FrontEnd, bytes], tuple[int, bytes]]] = {
    p.Command.IDENTIFY: FrontEnd._identify,
    p.Command.STATUS: FrontEnd._status,
    p.Command.PIXELS: FrontEnd._pixels,
    p.Command.SAMPLE_WIDTH: FrontEnd._width,
    p.Command.CALIBRATION: FrontEnd._calibration,
    p.Command.TEMPERATURE: FrontEnd._temperature,
    p.Command.GET_INTEGRATION: FrontEnd._get_integration,
    p.Command.GET_COADDS: FrontEnd._get_coadds,
    p.Command.GET_SOURCE: FrontEnd._get_source,
    p.Command.SET_INTEGRATION: FrontEnd._set_integration,
    p.Command.SET_COADDS: FrontEnd._set_coadds,
    p.Command.SET_SOURCE: FrontEnd._set_source,
    p.Command.START: FrontEnd._start,
    p.Command.FRAME_INFO: FrontEnd._frame_info,
    p.Command.READ_CHUNK: FrontEnd._read_chunk,
}


def _resolver(substances: Mapping[str, AbsorbanceSource] | Resolver | None) -> Resolver:
    if substances is None:
        return BUILTIN_SUBSTANCES.__getitem__
    if isinstance(substances, Mapping):
        return substances.__getitem__
    return substances


class SimSpiBus:
    """A :class:`hal.bus.SpiBus` wired to a :class:`FrontEnd`."""

    def __init__(self, frontend: FrontEnd, label: str = "simulated SPI bus 0, chip-select 0"):
        self.frontend = frontend
        self.label = label
        self.closed = False

    def xfer2(self, data: list[int]) -> list[int]:
        """One transfer with chip-select held."""
        if self.closed:
            raise DeviceNotFoundError(f"{self.label}: bus is closed")
        if len(data) > p.LIMITS.max_transfer:
            raise OSError(f"transfer of {len(data)} bytes exceeds spidev's {p.LIMITS.max_transfer}")
        return list(self.frontend.transfer(bytes(data)))

    def close(self) -> None:
        """Idempotent."""
        self.closed = True


class SimDataReady:
    """The data-ready line of a :class:`FrontEnd`; waits advance the front end's clock."""

    def __init__(self, frontend: FrontEnd, label: str = "simulated data-ready line") -> None:
        self.frontend = frontend
        self.label = label

    @property
    def is_active(self) -> bool:
        """Level now."""
        return self.frontend.data_ready()

    def wait_for_active(self, timeout: float) -> bool:
        """Sleep on the front end's clock until the line rises or *timeout* s pass."""
        clock = self.frontend.clock
        now = clock.monotonic()
        at = self.frontend.data_ready_rises_at()
        if at is not None and at - now <= timeout:
            clock.sleep(at - now)
            return True
        clock.sleep(timeout)
        return self.frontend.data_ready()

    def close(self) -> None:
        """Nothing to release."""
