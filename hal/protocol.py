"""Codec of the SPI wire protocol between the Pi and the spectrometer front end.

Pure bytes in, bytes out: no bus, no timing. ``docs/spi-protocol.md`` is the specification;
section numbers (``§``) below refer to it. Both the driver (:mod:`hal.spectrometer`) and the
simulator (:mod:`hal.sim`) use this module; the tests check it against frame builders
written independently from the document (``tests/frames.py``).

Request packet (§3.1), MOSI, one chip-select assertion::

    +------+-----+-----+---------+-----------------+-----------+
    | 0x5A | CMD | SEQ | LEN u16 | PAYLOAD (LEN B) | CRC32 u32 |
    +------+-----+-----+---------+-----------------+-----------+

Response packet (§3.2), MISO, a later chip-select assertion (MOSI all 0x00)::

    +------+-----+-----+--------+---------+-----------------+-----------+
    | 0xA5 | CMD | SEQ | STATUS | LEN u16 | PAYLOAD (LEN B) | CRC32 u32 |
    +------+-----+-----+--------+---------+-----------------+-----------+

Multi-byte fields are little-endian. The CRC is CRC-32/ISO-HDLC (``binascii.crc32``) over
every byte after the sync byte up to the end of the payload.
"""

from __future__ import annotations

import binascii
import math
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from hal.errors import CrcError, FrameError

REQUEST_SYNC = 0x5A  # §3.1
RESPONSE_SYNC = 0xA5  # §3.2
NOT_READY = 0x00  # §3.3: first MISO byte while the firmware prepares the response
NO_DEVICE = 0xFF  # §3.3: MISO is pulled up; an absent device reads 0xFF

REQUEST_OVERHEAD = 5 + 4  # sync, cmd, seq, len(2) + crc(4)
RESPONSE_OVERHEAD = 6 + 4  # sync, cmd, seq, status, len(2) + crc(4)
MAX_TRANSFER = 4096  # bytes in one spidev transfer (spidev's default bufsiz)
CHUNK_HEADER = 6  # frame_id u16 + offset u32 in a READ_CHUNK response
MAX_CHUNK = MAX_TRANSFER - RESPONSE_OVERHEAD - CHUNK_HEADER  # 4080 data bytes, §5.3

PROTOCOL_VERSION = 1
IDENTITY_MAGIC = b"SPXE"
FULL_SCALE_COUNTS = 65535.0  # 16-bit ADC, per scan (§4.2)
MAX_CAL_COEFFS = 6  # §4.5


@dataclass(frozen=True)
class Limits:
    """What the front end accepts and reports, in one place (§4, §5).

    The driver (:mod:`hal.spectrometer`), the simulator (:mod:`hal.sim`) and the config schema
    (``edge/config/schema.py``) all check against :data:`LIMITS`, so a configuration that
    passes ``spectra-edge config validate`` is one the driver accepts at open. The check
    methods raise :class:`ValueError` with a message that names the limit.
    """

    integration_us: tuple[int, int] = (100, 10_000_000)  # §4.7 SET_INTEGRATION, inclusive
    coadds: tuple[int, int] = (1, 1024)  # §4.8 SET_COADDS, inclusive
    pixels: tuple[int, int] = (1024, 4096)  # §4.3 PIXELS, inclusive
    sample_bits: tuple[int, ...] = (16, 32)  # §4.4 SAMPLE_WIDTH
    readout_us_per_scan: int = 200  # §5.1: detector readout after each scan
    frame_setup_us: int = 1000  # §5.1: frame set-up and CRC
    max_frame_us: int = 0xFFFFFFFF  # §5.1: START's u32 duration field (71.6 minutes)
    max_transfer: int = MAX_TRANSFER  # §5.3: bytes in one spidev transfer
    max_chunk: int = MAX_CHUNK  # §5.3: data bytes in one READ_CHUNK answer
    full_scale_counts: float = FULL_SCALE_COUNTS  # §4.4: per scan
    max_calibration_coefficients: int = MAX_CAL_COEFFS  # §4.5

    @property
    def integration_ms(self) -> tuple[float, float]:
        """The integration range in milliseconds (0.1..10,000)."""
        lo, hi = self.integration_us
        return lo / 1000.0, hi / 1000.0

    def frame_duration_us(self, integration_us: int, coadds: int) -> int:
        """How long a frame takes (§5.1): exposure and readout of each scan, plus set-up."""
        return (integration_us + self.readout_us_per_scan) * coadds + self.frame_setup_us

    def integration_to_us(self, integration_ms: float) -> int:
        """*integration_ms* as the register's whole microseconds; ValueError when outside."""
        lo, hi = self.integration_ms
        us = round(integration_ms * 1000) if math.isfinite(integration_ms) else -1
        if not self.integration_us[0] <= us <= self.integration_us[1]:
            raise ValueError(f"integration {integration_ms} ms outside {lo:g}..{hi:g} ms")
        return us

    def check_coadds(self, coadds: int) -> None:
        """ValueError when *coadds* is outside the register's range."""
        lo, hi = self.coadds
        if not lo <= coadds <= hi:
            raise ValueError(f"coadds {coadds} outside {lo}..{hi}")

    def check_exposure(self, integration_ms: float, coadds: int) -> int:
        """Check integration time and co-adds together; returns the integration in µs.

        ValueError when either is outside its range, or when the frame they make would not
        fit START's duration field (§5.1).
        """
        us = self.integration_to_us(integration_ms)
        self.check_coadds(coadds)
        if self.frame_duration_us(us, coadds) > self.max_frame_us:
            minutes = self.max_frame_us // 60_000_000
            raise ValueError(
                f"a frame of {integration_ms:g} ms x {coadds} exceeds {minutes} minutes "
                "(the longest the front end can take, §5.1): lower integration_ms or coadds"
            )
        return us

    def check_geometry(self, pixels: int, bits: int) -> None:
        """ValueError unless *pixels* x *bits* is a detector geometry the protocol carries."""
        lo, hi = self.pixels
        if not lo <= pixels <= hi or bits not in self.sample_bits:
            raise ValueError(
                f"unsupported geometry {pixels} pixels x {bits} bits (pixels {lo}..{hi}, "
                f"bits {' or '.join(map(str, self.sample_bits))})"
            )


#: The one set of protocol limits (see :class:`Limits`).
LIMITS = Limits()


class Command(IntEnum):
    """Command codes (§4, table 1). A register write is its read code | 0x80."""

    IDENTIFY = 0x01
    STATUS = 0x02
    PIXELS = 0x03
    SAMPLE_WIDTH = 0x04
    CALIBRATION = 0x05
    TEMPERATURE = 0x06
    GET_INTEGRATION = 0x07
    GET_COADDS = 0x08
    GET_SOURCE = 0x09
    START = 0x10
    FRAME_INFO = 0x11
    READ_CHUNK = 0x12
    SET_INTEGRATION = 0x87
    SET_COADDS = 0x88
    SET_SOURCE = 0x89


class Status(IntEnum):
    """Status byte of a response (§3.4)."""

    OK = 0
    BAD_CRC = 1  # the request's CRC did not match; resend it
    UNKNOWN_COMMAND = 2
    BAD_ARGUMENT = 3
    BUSY = 4  # an acquisition is running
    NO_FRAME = 5  # no frame ready, or not the frame asked for


class StatusFlags(IntFlag):
    """Flags of the STATUS response (§4.2)."""

    BUSY = 0x01
    FRAME_READY = 0x02
    SOURCE_ON = 0x04


# Fixed payload sizes of responses (§4, table 1); READ_CHUNK and CALIBRATION vary.
RESPONSE_PAYLOAD = {
    Command.IDENTIFY: 40,
    Command.STATUS: 4,
    Command.PIXELS: 2,
    Command.SAMPLE_WIDTH: 1,
    Command.TEMPERATURE: 2,
    Command.GET_INTEGRATION: 4,
    Command.GET_COADDS: 2,
    Command.GET_SOURCE: 1,
    Command.SET_INTEGRATION: 4,
    Command.SET_COADDS: 2,
    Command.SET_SOURCE: 1,
    Command.START: 6,
    Command.FRAME_INFO: 24,
}
CALIBRATION_PAYLOAD_MAX = 1 + 8 * MAX_CAL_COEFFS

_IDENTITY = struct.Struct("<4sBBBB16s16s")  # §4.1
_STATUS = struct.Struct("<BBH")  # §4.2
_START = struct.Struct("<HI")  # §4.9
_FRAME_INFO = struct.Struct("<HHBBHIhHII")  # §4.10
_CHUNK_REQ = struct.Struct("<HIH")  # §4.11
_CHUNK_HDR = struct.Struct("<HI")
_HDR_REQ = struct.Struct("<BBBH")
_HDR_RESP = struct.Struct("<BBBBH")


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF), §3.5."""
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_request(command: int, seq: int, payload: bytes = b"") -> bytes:
    """A request packet (§3.1)."""
    body = _HDR_REQ.pack(REQUEST_SYNC, command, seq & 0xFF, len(payload)) + payload
    return body + struct.pack("<I", crc32(body[1:]))


def encode_response(command: int, seq: int, status: int, payload: bytes = b"") -> bytes:
    """A response packet (§3.2)."""
    body = _HDR_RESP.pack(RESPONSE_SYNC, command, seq & 0xFF, status, len(payload)) + payload
    return body + struct.pack("<I", crc32(body[1:]))


@dataclass(frozen=True)
class Request:
    """A decoded request."""

    command: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class Response:
    """A decoded response."""

    command: int
    seq: int
    status: int
    payload: bytes


def decode_request(data: bytes | bytearray) -> Request:
    """Parse a request packet; CrcError on a bad CRC, FrameError on a malformed packet."""
    if len(data) < REQUEST_OVERHEAD or data[0] != REQUEST_SYNC:
        raise FrameError("not a request packet")
    _, cmd, seq, n = _HDR_REQ.unpack_from(data)
    end = 5 + n
    if len(data) < end + 4:
        raise FrameError(f"request truncated: LEN={n}, got {len(data)} bytes")
    (crc,) = struct.unpack_from("<I", data, end)
    if crc32(memoryview(data)[1:end]) != crc:
        raise CrcError("request CRC mismatch")
    return Request(cmd, seq, bytes(data[5:end]))


def decode_response(data: bytes | bytearray) -> Response:
    """Parse a response packet whose first byte is the sync byte (§3.2).

    Bytes after the CRC (padding of a longer read) are ignored. Raises CrcError when the CRC
    does not match and FrameError when the packet is cut short.
    """
    if len(data) < RESPONSE_OVERHEAD or data[0] != RESPONSE_SYNC:
        raise FrameError("not a response packet")
    _, cmd, seq, status, n = _HDR_RESP.unpack_from(data)
    end = 6 + n
    if len(data) < end + 4:
        raise CrcError(f"response cut short: LEN={n} needs {end + 4} bytes, got {len(data)}")
    (crc,) = struct.unpack_from("<I", data, end)
    if crc32(memoryview(data)[1:end]) != crc:
        raise CrcError(f"response CRC mismatch (command 0x{cmd:02X}, seq {seq})")
    return Response(cmd, seq, status, bytes(data[6:end]))


def response_length(command: int, chunk_length: int = 0) -> int:
    """Bytes the host clocks in to read the response to *command* (§3.3)."""
    if command == Command.READ_CHUNK:
        return RESPONSE_OVERHEAD + CHUNK_HEADER + chunk_length
    if command == Command.CALIBRATION:
        return RESPONSE_OVERHEAD + CALIBRATION_PAYLOAD_MAX
    return RESPONSE_OVERHEAD + RESPONSE_PAYLOAD[Command(command)]


# --- payloads (§4) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityPayload:
    """IDENTIFY response (§4.1)."""

    magic: bytes
    protocol: int
    firmware: tuple[int, int, int]
    model: str
    serial: str

    def pack(self) -> bytes:
        """Bytes on the wire."""
        return _IDENTITY.pack(
            self.magic,
            self.protocol,
            *self.firmware,
            self.model.encode("ascii"),
            self.serial.encode("ascii"),
        )

    @classmethod
    def unpack(cls, data: bytes) -> IdentityPayload:
        """Parse the wire bytes."""
        magic, proto, major, minor, patch, model, serial = _IDENTITY.unpack(data)
        return cls(
            magic,
            proto,
            (major, minor, patch),
            model.rstrip(b"\0").decode("ascii", "replace"),
            serial.rstrip(b"\0").decode("ascii", "replace"),
        )


@dataclass(frozen=True)
class StatusPayload:
    """STATUS response (§4.2)."""

    flags: StatusFlags
    last_error: int
    frame_id: int

    def pack(self) -> bytes:
        """Bytes on the wire."""
        return _STATUS.pack(int(self.flags), self.last_error, self.frame_id)

    @classmethod
    def unpack(cls, data: bytes) -> StatusPayload:
        """Parse the wire bytes."""
        flags, err, fid = _STATUS.unpack(data)
        return cls(StatusFlags(flags), err, fid)


@dataclass(frozen=True)
class StartPayload:
    """START response (§4.9): the frame being taken and how long it will take."""

    frame_id: int
    duration_us: int

    def pack(self) -> bytes:
        """Bytes on the wire."""
        return _START.pack(self.frame_id, self.duration_us)

    @classmethod
    def unpack(cls, data: bytes) -> StartPayload:
        """Parse the wire bytes."""
        return cls(*_START.unpack(data))


@dataclass(frozen=True)
class FrameInfo:
    """FRAME_INFO response (§4.10)."""

    frame_id: int
    pixels: int
    bits: int
    source_on: bool
    coadds: int
    integration_us: int
    temperature_centi_c: int
    saturated: int
    nbytes: int
    frame_crc: int

    def pack(self) -> bytes:
        """Bytes on the wire."""
        return _FRAME_INFO.pack(
            self.frame_id,
            self.pixels,
            self.bits,
            int(self.source_on),
            self.coadds,
            self.integration_us,
            self.temperature_centi_c,
            self.saturated,
            self.nbytes,
            self.frame_crc,
        )

    @classmethod
    def unpack(cls, data: bytes) -> FrameInfo:
        """Parse the wire bytes."""
        f = _FRAME_INFO.unpack(data)
        return cls(f[0], f[1], f[2], bool(f[3]), f[4], f[5], f[6], f[7], f[8], f[9])


def pack_chunk_request(frame_id: int, offset: int, length: int) -> bytes:
    """READ_CHUNK request payload (§4.11)."""
    return _CHUNK_REQ.pack(frame_id, offset, length)


def unpack_chunk_request(data: bytes) -> tuple[int, int, int]:
    """(frame_id, offset, length) of a READ_CHUNK request payload."""
    fid, off, n = _CHUNK_REQ.unpack(data)
    return int(fid), int(off), int(n)


def pack_chunk(frame_id: int, offset: int, data: bytes) -> bytes:
    """READ_CHUNK response payload (§4.11)."""
    return _CHUNK_HDR.pack(frame_id, offset) + data


def unpack_chunk(payload: bytes) -> tuple[int, int, bytes]:
    """(frame_id, offset, data) of a READ_CHUNK response payload."""
    if len(payload) < CHUNK_HEADER:
        raise FrameError(f"chunk payload of {len(payload)} bytes has no header")
    fid, off = _CHUNK_HDR.unpack_from(payload)
    return int(fid), int(off), payload[CHUNK_HEADER:]


def pack_calibration(coefficients: tuple[float, ...]) -> bytes:
    """CALIBRATION response payload (§4.5): count, then float64 coefficients c0..cn."""
    if not 1 <= len(coefficients) <= MAX_CAL_COEFFS:
        raise ValueError(f"1..{MAX_CAL_COEFFS} coefficients, got {len(coefficients)}")
    return bytes([len(coefficients)]) + struct.pack(f"<{len(coefficients)}d", *coefficients)


def unpack_calibration(data: bytes) -> tuple[float, ...]:
    """Coefficients c0..cn of the CALIBRATION payload."""
    if not data or not 1 <= data[0] <= MAX_CAL_COEFFS or len(data) != 1 + 8 * data[0]:
        raise FrameError(f"bad calibration payload ({len(data)} bytes)")
    return struct.unpack(f"<{data[0]}d", data[1:])


def chunk_plan(nbytes: int, bits: int) -> list[tuple[int, int]]:
    """(offset, length) of each chunk of a frame of *nbytes* (§5.3)."""
    step = MAX_CHUNK - MAX_CHUNK % (bits // 8)
    return [(off, min(step, nbytes - off)) for off in range(0, nbytes, step)]
