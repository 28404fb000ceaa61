"""Test-side packet builders written from docs/spi-protocol.md, NOT from hal.protocol.

They use only ``struct`` and ``zlib`` so that a mistake shared by the driver and the simulator
(both use hal.protocol) shows up as a mismatch here.
"""

from __future__ import annotations

import struct
import zlib

REQ_SYNC = 0x5A  # §3.1
RESP_SYNC = 0xA5  # §3.2

# §4, table 1
IDENTIFY, STATUS, PIXELS, SAMPLE_WIDTH, CALIBRATION, TEMPERATURE = 1, 2, 3, 4, 5, 6
GET_INTEGRATION, GET_COADDS, GET_SOURCE = 7, 8, 9
SET_INTEGRATION, SET_COADDS, SET_SOURCE = 0x87, 0x88, 0x89
START, FRAME_INFO, READ_CHUNK = 0x10, 0x11, 0x12

# §3.4
OK, BAD_CRC, UNKNOWN_COMMAND, BAD_ARGUMENT, BUSY, NO_FRAME = 0, 1, 2, 3, 4, 5


def crc32(data: bytes) -> int:
    """§3.5: CRC-32/ISO-HDLC, check value 0xCBF43926."""
    return zlib.crc32(data) & 0xFFFFFFFF


def request(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """§3.1 request packet."""
    body = bytes([cmd, seq]) + struct.pack("<H", len(payload)) + payload
    return bytes([REQ_SYNC]) + body + struct.pack("<I", crc32(body))


def response(cmd: int, seq: int, status: int, payload: bytes = b"") -> bytes:
    """§3.2 response packet."""
    body = bytes([cmd, seq, status]) + struct.pack("<H", len(payload)) + payload
    return bytes([RESP_SYNC]) + body + struct.pack("<I", crc32(body))


def parse_response(raw: bytes) -> tuple[int, int, int, bytes]:
    """(cmd, seq, status, payload) of a response; asserts sync and CRC per §3.2/§3.5."""
    assert raw[0] == RESP_SYNC, f"sync byte is 0x{raw[0]:02X}"
    cmd, seq, status = raw[1], raw[2], raw[3]
    (n,) = struct.unpack_from("<H", raw, 4)
    payload = raw[6 : 6 + n]
    (crc,) = struct.unpack_from("<I", raw, 6 + n)
    assert crc == crc32(raw[1 : 6 + n]), "response CRC mismatch"
    return cmd, seq, status, payload


def identity(model: str, serial: str, fw: tuple[int, int, int], proto: int = 1) -> bytes:
    """§4.1 IDENTIFY payload (40 bytes)."""
    return (
        b"SPXE"
        + bytes([proto, *fw])
        + model.encode().ljust(16, b"\0")
        + serial.encode().ljust(16, b"\0")
    )


def frame_info(
    frame_id: int,
    pixels: int,
    bits: int,
    source: int,
    coadds: int,
    integration_us: int,
    temp_centi: int,
    saturated: int,
    data: bytes,
) -> bytes:
    """§5.2 FRAME_INFO payload (24 bytes)."""
    return struct.pack(
        "<HHBBHIhHII",
        frame_id,
        pixels,
        bits,
        source,
        coadds,
        integration_us,
        temp_centi,
        saturated,
        len(data),
        crc32(data),
    )


def chunk_request(frame_id: int, offset: int, length: int) -> bytes:
    """§5.3 READ_CHUNK request payload."""
    return struct.pack("<HIH", frame_id, offset, length)


def chunk_response(frame_id: int, offset: int, data: bytes) -> bytes:
    """§5.3 READ_CHUNK response payload."""
    return struct.pack("<HI", frame_id, offset) + data
