"""The simulator speaks docs/spi-protocol.md byte for byte: every command over its fake bus,
with packets built and parsed by tests/frames.py (not by hal.protocol)."""

from __future__ import annotations

import struct

import frames as f
import numpy as np
import pytest

from hal.clock import FakeClock
from hal.sim import Fault, Simulator, make_simulator

pytestmark = pytest.mark.timeout(60)


class Wire:
    """Host side written from the document: one request transaction, one response read."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.seq = 0

    def send(self, cmd: int, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFF
        miso = self.sim.bus.xfer2(list(f.request(cmd, self.seq, payload)))
        assert len(miso) == len(f.request(cmd, self.seq, payload))
        return self.seq

    def read(self, length: int) -> bytes:
        return bytes(self.sim.bus.xfer2([0] * length))

    def call(self, cmd: int, payload: bytes = b"", length: int = 4096) -> tuple[int, bytes]:
        seq = self.send(cmd, payload)
        rcmd, rseq, status, data = f.parse_response(self.read(length))
        assert (rcmd, rseq) == (cmd, seq)
        return status, data


@pytest.fixture
def wire() -> Wire:
    return Wire(make_simulator(clock=FakeClock(), pixels=1024, bits=16, seed=5))


def test_identify_and_geometry(wire: Wire) -> None:
    status, data = wire.call(f.IDENTIFY, length=50)
    assert status == f.OK and len(data) == 40
    assert data[:4] == b"SPXE" and data[4] == 1
    assert tuple(data[5:8]) >= (1, 0, 0)
    assert data[8:24].rstrip(b"\0").decode().startswith("SE-ATR")
    assert wire.call(f.PIXELS)[1] == struct.pack("<H", 1024)
    assert wire.call(f.SAMPLE_WIDTH)[1] == b"\x10"


def test_calibration_and_temperature(wire: Wire) -> None:
    _status, data = wire.call(f.CALIBRATION)
    n = data[0]
    coeffs = struct.unpack(f"<{n}d", data[1 : 1 + 8 * n])
    axis = np.polynomial.polynomial.polyval(np.arange(1024), coeffs)
    assert axis[0] == pytest.approx(640.0) and axis[-1] == pytest.approx(4010.0)
    assert np.all(np.diff(axis) > 0)
    wire.sim.frontend.temperature_c = -5.25
    assert struct.unpack("<h", wire.call(f.TEMPERATURE)[1])[0] == -525


@pytest.mark.parametrize(
    ("get", "set_", "fmt", "value", "bad"),
    [
        (f.GET_INTEGRATION, f.SET_INTEGRATION, "<I", 20_000, 50),
        (f.GET_COADDS, f.SET_COADDS, "<H", 64, 0),
        (f.GET_SOURCE, f.SET_SOURCE, "<B", 1, 2),
    ],
)
def test_registers_write_read_back_and_reject_bad_values(
    wire: Wire, get: int, set_: int, fmt: str, value: int, bad: int
) -> None:
    assert wire.call(set_, struct.pack(fmt, value)) == (f.OK, struct.pack(fmt, value))
    assert wire.call(get) == (f.OK, struct.pack(fmt, value))
    assert wire.call(set_, struct.pack(fmt, bad)) == (f.BAD_ARGUMENT, b"")
    assert wire.call(get)[1] == struct.pack(fmt, value)


def test_full_acquisition_in_chunks(wire: Wire) -> None:
    clock = wire.sim.clock
    wire.call(f.SET_INTEGRATION, struct.pack("<I", 10_000))
    wire.call(f.SET_COADDS, struct.pack("<H", 4))
    wire.call(f.SET_SOURCE, b"\x01")
    status, data = wire.call(f.START)
    frame_id, duration = struct.unpack("<HI", data)
    assert status == f.OK and duration == 4 * 10_000 + 4 * 200 + 1000
    # busy: settings and START refused, no frame info yet, data-ready low
    assert wire.call(f.START)[0] == f.BUSY
    assert wire.call(f.SET_COADDS, b"\x01\x00")[0] == f.BUSY
    assert wire.call(f.FRAME_INFO)[0] == f.NO_FRAME
    flags, _, fid = struct.unpack("<BBH", wire.call(f.STATUS)[1])
    assert flags & 0x01 and not flags & 0x02 and fid == frame_id
    assert not wire.sim.data_ready.is_active
    clock.sleep(duration / 1e6)
    assert wire.sim.data_ready.is_active
    flags, _, fid = struct.unpack("<BBH", wire.call(f.STATUS)[1])
    assert flags == 0x02 | 0x04 and fid == frame_id
    status, info = wire.call(f.FRAME_INFO)
    fid, pixels, bits, source, coadds, integ, temp, _sat, nbytes, fcrc = struct.unpack(
        "<HHBBHIhHII", info
    )
    assert (fid, pixels, bits, source, coadds, integ) == (frame_id, 1024, 16, 1, 4, 10_000)
    assert nbytes == 2048 and temp == 3200
    # read in three arbitrary chunks, out of order, one of them twice (idempotent)
    parts = {}
    for off, n in [(1000, 1048), (0, 1000), (1000, 1048)]:
        status, payload = wire.call(f.READ_CHUNK, f.chunk_request(frame_id, off, n))
        assert status == f.OK
        rid, roff = struct.unpack_from("<HI", payload)
        assert (rid, roff) == (frame_id, off)
        assert parts.setdefault(off, payload[6:]) == payload[6:]
    frame = parts[0] + parts[1000]
    assert f.crc32(frame) == fcrc
    counts = np.frombuffer(frame, "<u2")
    assert counts.min() > 1400 and counts.max() < 65535
    # wrong frame id, out of range, too long
    assert wire.call(f.READ_CHUNK, f.chunk_request(frame_id + 1, 0, 8))[0] == f.NO_FRAME
    assert wire.call(f.READ_CHUNK, f.chunk_request(frame_id, 2040, 16))[0] == f.BAD_ARGUMENT
    assert wire.call(f.READ_CHUNK, f.chunk_request(frame_id, 0, 4081))[0] == f.BAD_ARGUMENT


def test_32_bit_frames_carry_the_coadd_sum() -> None:
    sim = make_simulator(clock=FakeClock(), pixels=4096, bits=32, seed=5)
    wire = Wire(sim)
    wire.call(f.SET_COADDS, struct.pack("<H", 8))
    frame_id, duration = struct.unpack("<HI", wire.call(f.START)[1])
    sim.clock.sleep(duration / 1e6)
    info = wire.call(f.FRAME_INFO)[1]
    assert struct.unpack_from("<H", info, 2)[0] == 4096 and info[4] == 32
    nbytes = struct.unpack_from("<I", info, 16)[0]
    assert nbytes == 16384
    data = b""
    while len(data) < nbytes:
        n = min(4080, nbytes - len(data))
        data += wire.call(f.READ_CHUNK, f.chunk_request(frame_id, len(data), n))[1][6:]
    assert f.crc32(data) == struct.unpack_from("<I", info, 20)[0]
    counts = np.frombuffer(data, "<u4") / 8
    assert 1400 < counts.mean() < 2200  # source off by default: a dark frame


def test_status_errors(wire: Wire) -> None:
    assert wire.call(0x55) == (f.UNKNOWN_COMMAND, b"")
    assert wire.call(f.SET_COADDS, b"\x01") == (f.BAD_ARGUMENT, b"")
    raw = bytearray(f.request(f.PIXELS, 77))
    raw[-1] ^= 0xFF  # damaged on MOSI
    wire.sim.bus.xfer2(list(raw))
    cmd, seq, status, _ = f.parse_response(wire.read(16))
    assert (cmd, seq, status) == (f.PIXELS, 77, f.BAD_CRC)


def test_response_is_held_and_rereadable(wire: Wire) -> None:
    wire.send(f.IDENTIFY)
    first = wire.read(50)
    assert wire.read(50) == first
    assert wire.read(20) == first[:20]  # a short read sees the start of the same packet
    assert wire.read(60)[50:] == bytes(10)  # padding after the packet is 0x00


def test_not_ready_then_ready_and_unplugged() -> None:
    sim = make_simulator(clock=FakeClock(), response_latency_s=0.001)
    wire = Wire(sim)
    wire.send(f.PIXELS)
    assert wire.read(12) == bytes(12)  # §3.3: 0x00 = not ready
    sim.clock.sleep(0.001)
    assert f.parse_response(wire.read(12))[3] == struct.pack("<H", 1024)
    sim.frontend.unplug()
    assert wire.read(12) == b"\xff" * 12
    assert sim.bus.xfer2(list(f.request(f.PIXELS, 1))) == [0xFF] * 9


def test_injected_wire_faults(wire: Wire) -> None:
    faults = wire.sim.faults
    faults.inject(Fault.CORRUPT_CRC)
    wire.send(f.PIXELS)
    with pytest.raises(AssertionError, match="CRC"):
        f.parse_response(wire.read(12))
    assert f.parse_response(wire.read(12))[3] == struct.pack("<H", 1024)  # only once
    faults.inject(Fault.WRONG_IDENTITY)
    assert b"SE-ATR" not in wire.call(f.IDENTIFY)[1]
    faults.inject(Fault.STALE_RESPONSE)
    seq = wire.send(f.SAMPLE_WIDTH)
    cmd, rseq, _, _ = f.parse_response(wire.read(50))
    assert (cmd, rseq) == (f.IDENTIFY, seq - 1)
    assert f.parse_response(wire.read(50))[:2] == (f.SAMPLE_WIDTH, seq)
