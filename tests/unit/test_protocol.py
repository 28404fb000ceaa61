"""hal.protocol against packets built independently from docs/spi-protocol.md (tests/frames)."""

from __future__ import annotations

import itertools

import pytest
from frames import (
    BUSY,
    FRAME_INFO,
    IDENTIFY,
    OK,
    READ_CHUNK,
    SET_COADDS,
    START,
    STATUS,
    chunk_request,
    chunk_response,
    crc32,
    frame_info,
    identity,
    request,
    response,
)

from hal import protocol as p
from hal.errors import CrcError, FrameError


def test_crc_is_crc32_iso_hdlc() -> None:
    assert p.crc32(b"123456789") == 0xCBF43926
    assert crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize("cmd", [c.value for c in p.Command])
@pytest.mark.parametrize("payload", [b"", b"\x01", bytes(range(8))])
def test_request_encoding_matches_document(cmd: int, payload: bytes) -> None:
    assert p.encode_request(cmd, 0x7E, payload) == request(cmd, 0x7E, payload)
    req = p.decode_request(request(cmd, 3, payload))
    assert (req.command, req.seq, req.payload) == (cmd, 3, payload)


def test_response_encoding_and_decoding() -> None:
    raw = response(STATUS, 9, OK, b"\x02\x00\x05\x00")
    assert p.encode_response(STATUS, 9, OK, b"\x02\x00\x05\x00") == raw
    resp = p.decode_response(raw + bytes(20))  # padding after the CRC is ignored
    assert (resp.command, resp.seq, resp.status, resp.payload) == (STATUS, 9, OK, raw[6:10])
    err = p.decode_response(response(START, 1, BUSY))
    assert err.status == BUSY and err.payload == b""


def test_damaged_or_short_responses_are_rejected() -> None:
    raw = bytearray(response(IDENTIFY, 1, OK, identity("SE-ATR-X", "S1", (1, 0, 0))))
    raw[10] ^= 0x01
    with pytest.raises(CrcError):
        p.decode_response(bytes(raw))
    with pytest.raises(CrcError):
        p.decode_response(response(IDENTIFY, 1, OK, bytes(40))[:30])
    with pytest.raises(FrameError):
        p.decode_response(bytes(50))  # not-ready bytes, no sync
    bad_req = bytearray(request(SET_COADDS, 1, b"\x10\x00"))
    bad_req[5] ^= 0xFF
    with pytest.raises(CrcError):
        p.decode_request(bytes(bad_req))


def test_payload_layouts_match_document() -> None:
    ident = p.IdentityPayload(b"SPXE", 1, (1, 2, 3), "SE-ATR-MIR1", "SN42")
    assert ident.pack() == identity("SE-ATR-MIR1", "SN42", (1, 2, 3))
    assert p.IdentityPayload.unpack(identity("SE-ATR-MIR1", "SN42", (1, 2, 3))) == ident
    data = bytes(range(256)) * 8
    info = p.FrameInfo(7, 1024, 16, True, 16, 50_000, 3215, 3, len(data), crc32(data))
    assert info.pack() == frame_info(7, 1024, 16, 1, 16, 50_000, 3215, 3, data)
    assert p.FrameInfo.unpack(info.pack()) == info
    assert p.pack_chunk_request(7, 4080, 100) == chunk_request(7, 4080, 100)
    assert p.unpack_chunk(chunk_response(7, 4080, b"abc")) == (7, 4080, b"abc")
    coeffs = (640.0, 3.29, 1e-5)
    assert p.unpack_calibration(p.pack_calibration(coeffs)) == coeffs
    with pytest.raises(FrameError):
        p.unpack_calibration(b"\x03" + bytes(16))


@pytest.mark.parametrize(("pixels", "bits"), [(1024, 16), (1024, 32), (4096, 16), (4096, 32)])
def test_chunk_plan_covers_frame_within_transfer_limit(pixels: int, bits: int) -> None:
    nbytes = pixels * bits // 8
    plan = p.chunk_plan(nbytes, bits)
    assert plan[0][0] == 0
    assert sum(n for _, n in plan) == nbytes
    for (off, n), (nxt, _) in itertools.pairwise(plan):
        assert off + n == nxt
    for off, n in plan:
        assert off % (bits // 8) == 0 and n % (bits // 8) == 0
        assert p.response_length(READ_CHUNK, n) <= 4096
    assert p.response_length(READ_CHUNK, p.MAX_CHUNK) == 4096
    assert p.response_length(FRAME_INFO) == 10 + 24
