"""SpiSpectrometer against the wire-level simulator on a FakeClock: geometry, acquisition,
and every injected fault ending in the right typed error within its deadline."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import frames as f
import numpy as np
import pytest

from hal.clock import FakeClock, SystemClock
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
from hal.instrument import Instrument
from hal.sim import Fault, Simulator, make_simulator
from hal.spectrometer import RESPONSE_TIMEOUT_S, SpiSpectrometer

pytestmark = pytest.mark.timeout(60)

INTEGRATION_MS = 20.0
COADDS = 4
TIMEOUT_S = 2.0
RETRIES = 2
# START answers duration = integration*coadds + 200 us*coadds + 1 ms (docs §5.1)
DURATION_S = (INTEGRATION_MS * COADDS + 0.2 * COADDS + 1.0) / 1000


def open_spec(sim: Simulator, **kw: object) -> SpiSpectrometer:
    args: dict[str, object] = {
        "integration_ms": INTEGRATION_MS,
        "coadds": COADDS,
        "timeout_s": TIMEOUT_S,
        "retries": RETRIES,
    }
    args.update(kw)
    return SpiSpectrometer(sim.bus, sim.data_ready, sim.clock, **args)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Simulator:
    return make_simulator(clock=FakeClock(), seed=11)


@pytest.fixture
def spec(sim: Simulator) -> Iterator[SpiSpectrometer]:
    with open_spec(sim) as s:
        yield s


def decode_held(sim: Simulator) -> np.ndarray:
    held = sim.frontend.held_frame
    assert held is not None
    info, data = held
    raw = np.frombuffer(data, "<u2" if info.bits == 16 else "<u4").astype(float)
    return raw / info.coadds if info.bits == 32 else raw


@pytest.mark.parametrize(("pixels", "bits"), [(1024, 16), (1024, 32), (4096, 16), (4096, 32)])
def test_geometry_and_frames(pixels: int, bits: int) -> None:
    sim = make_simulator(clock=FakeClock(), pixels=pixels, bits=bits, seed=3)
    with open_spec(sim) as spec:
        assert isinstance(spec, Instrument)
        ident = spec.identity
        assert (ident.pixels, ident.bits, ident.model, ident.firmware) == (
            pixels,
            bits,
            "SE-ATR-MIR1",
            "1.2.0",
        )
        axis = spec.wavenumbers()
        assert axis.shape == (pixels,) and axis[0] == pytest.approx(640.0)
        assert axis[-1] == pytest.approx(4010.0) and np.all(np.diff(axis) > 0)
        t0 = sim.clock.monotonic()
        frame = spec.acquire()
        assert sim.clock.monotonic() - t0 >= DURATION_S  # waited for the exposure
        assert frame.counts.shape == (pixels,)
        np.testing.assert_array_equal(frame.counts, decode_held(sim))
        assert (frame.coadds, frame.integration_ms, frame.dark) == (COADDS, INTEGRATION_MS, False)
        assert frame.temperature_c == pytest.approx(32.0)
        assert frame.full_scale == 65535.0
        chunks = -(-pixels * bits // 8 // 4080)
        assert sim.frontend.transactions.count(0x12) == chunks


def test_configure_temperature_and_dark(sim: Simulator, spec: SpiSpectrometer) -> None:
    spec.configure(5.0, 32)
    assert (sim.frontend.integration_us, sim.frontend.coadds) == (5000, 32)
    with pytest.raises(ValueError):
        spec.configure(0.01, 1)
    with pytest.raises(ValueError):
        spec.configure(10.0, 2000)
    sim.frontend.temperature_c = 41.37
    assert spec.temperature_c() == pytest.approx(41.37)
    dark = spec.acquire(dark=True)
    assert dark.dark and not sim.frontend.source_on
    light = spec.acquire()
    assert not light.dark and sim.frontend.source_on
    assert light.counts.max() > dark.counts.max() + 2000
    assert light.sequence == dark.sequence + 1
    assert dark.temperature_c == pytest.approx(41.37)


def test_saturation_is_reported(sim: Simulator, spec: SpiSpectrometer) -> None:
    assert spec.acquire().saturated == 0
    spec.configure(150.0, 2)
    frame = spec.acquire()
    assert frame.saturated > 10
    assert frame.counts.max() == 65535.0


def test_polling_without_data_ready_line(sim: Simulator) -> None:
    with SpiSpectrometer(sim.bus, None, sim.clock, integration_ms=10, coadds=2) as spec:
        frame = spec.acquire()
    assert frame.counts.mean() > 2000


def test_response_latency_is_waited_for() -> None:
    sim = make_simulator(clock=FakeClock(), response_latency_s=0.0015)
    with open_spec(sim) as spec:
        frame = spec.acquire()
    assert frame.counts.shape == (1024,)
    assert spec.stats.transfers > 2 * len(sim.frontend.transactions)  # re-read "not ready"


def test_real_clock_short_frame() -> None:
    sim = make_simulator(clock=SystemClock())
    with SpiSpectrometer(
        sim.bus, sim.data_ready, sim.clock, integration_ms=1.0, coadds=2, timeout_s=1.0
    ) as spec:
        assert spec.acquire().counts.shape == (1024,)


def test_close_is_idempotent_and_closed_use_fails(sim: Simulator) -> None:
    spec = open_spec(sim)
    spec.acquire()
    assert sim.frontend.source_on
    spec.close()
    assert not sim.frontend.source_on  # source switched off at close
    assert sim.bus.closed and spec.closed
    spec.close()
    with pytest.raises(InstrumentStateError):
        spec.acquire()
    with pytest.raises(InstrumentStateError):
        spec.wavenumbers()
    with pytest.raises(InstrumentStateError):
        spec.temperature_c()


# --- faults: each ends in its typed error within its deadline, or recovers --------------------


def elapsed(sim: Simulator, t0: float) -> float:
    return sim.clock.monotonic() - t0


@pytest.mark.parametrize(
    "fault",
    [Fault.CORRUPT_CRC, Fault.CORRUPT_REQUEST, Fault.STALE_RESPONSE, Fault.TRUNCATED_FRAME],
)
def test_transient_wire_fault_recovers(sim: Simulator, spec: SpiSpectrometer, fault: Fault) -> None:
    sim.faults.inject(fault, times=1, command=0x12 if fault is Fault.CORRUPT_CRC else None)
    frame = spec.acquire()
    assert sim.faults.fired[fault] == 1
    np.testing.assert_array_equal(frame.counts, decode_held(sim))
    assert spec.stats.retries >= 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.CORRUPT_CRC, CrcError),
        (Fault.CORRUPT_REQUEST, CrcError),
        (Fault.STALE_RESPONSE, SequenceError),
        (Fault.TRUNCATED_FRAME, FrameError),
    ],
)
def test_persistent_wire_fault_raises_typed_error(
    sim: Simulator, spec: SpiSpectrometer, fault: Fault, error: type[HalError]
) -> None:
    sim.faults.inject(fault, times=None)
    t0 = sim.clock.monotonic()
    with pytest.raises(error) as info:
        spec.acquire()
    if error is FrameError:
        assert "truncated" in str(info.value) and not isinstance(info.value, CrcError)
    assert "SPI bus" in str(info.value)
    assert elapsed(sim, t0) <= (RETRIES + 1) * (DURATION_S + TIMEOUT_S)
    assert sim.faults.fired[fault] <= (RETRIES + 1) ** 2


def test_corrupted_crc_with_no_retries_fails_at_once(sim: Simulator) -> None:
    with open_spec(sim, retries=0) as spec:
        sim.faults.inject(Fault.CORRUPT_CRC, times=1)
        with pytest.raises(CrcError):
            spec.temperature_c()
        assert spec.temperature_c() == pytest.approx(32.0)


def test_dropped_data_ready_once_is_retried(
    sim: Simulator, spec: SpiSpectrometer, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults.inject(Fault.DROP_DATA_READY, times=1)
    t0 = sim.clock.monotonic()
    with caplog.at_level(logging.WARNING):
        frame = spec.acquire()
    assert frame.counts.shape == (1024,)
    assert "data-ready" in caplog.text
    # one full wait (exposure + timeout) lost, then a normal frame
    assert elapsed(sim, t0) == pytest.approx(2 * DURATION_S + TIMEOUT_S, abs=0.01)


@pytest.mark.parametrize("fault", [Fault.DROP_DATA_READY, Fault.DATA_READY_STUCK_LOW])
def test_data_ready_never_comes(sim: Simulator, spec: SpiSpectrometer, fault: Fault) -> None:
    sim.faults.inject(fault, times=None)
    t0 = sim.clock.monotonic()
    with pytest.raises(InstrumentTimeoutError, match="data-ready") as info:
        spec.acquire()
    assert "wiring" in str(info.value)
    assert elapsed(sim, t0) == pytest.approx((RETRIES + 1) * (DURATION_S + TIMEOUT_S), abs=0.05)


def test_data_ready_stuck_high_falls_back_to_status(
    sim: Simulator, spec: SpiSpectrometer, caplog: pytest.LogCaptureFixture
) -> None:
    sim.faults.inject(Fault.DATA_READY_STUCK_HIGH, times=None)
    t0 = sim.clock.monotonic()
    with caplog.at_level(logging.WARNING):
        frame = spec.acquire()
        assert DURATION_S <= elapsed(sim, t0) <= DURATION_S + 0.03  # polled, not read early
        np.testing.assert_array_equal(frame.counts, decode_held(sim))
        spec.acquire()
        assert caplog.text.count("stuck") == 1  # logged once, not per frame
        sim.faults.clear()
        spec.acquire()
        assert "works again" in caplog.text


@pytest.mark.parametrize("fault", [Fault.WRONG_IDENTITY, Fault.OLD_FIRMWARE])
def test_wrong_identity_is_refused_at_open(sim: Simulator, fault: Fault) -> None:
    sim.faults.inject(fault)
    with pytest.raises(IdentityError) as info:
        open_spec(sim)
    msg = str(info.value)
    assert "SPI bus 0, chip-select 0" in msg
    assert ("wiring" in msg) if fault is Fault.WRONG_IDENTITY else ("firmware" in msg)
    assert sim.bus.closed  # a failed open releases the bus


def test_absent_device_at_open(sim: Simulator) -> None:
    sim.frontend.unplug()
    t0 = sim.clock.monotonic()
    with pytest.raises(DeviceNotFoundError, match="chip-select 0"):
        open_spec(sim)
    assert elapsed(sim, t0) <= RESPONSE_TIMEOUT_S + 0.001


def test_unplugged_mid_frame() -> None:
    sim2 = make_simulator(clock=FakeClock(), pixels=4096, bits=32)
    with open_spec(sim2) as big:
        sim2.faults.inject(Fault.UNPLUG_MID_FRAME)
        t0 = sim2.clock.monotonic()
        with pytest.raises(DeviceNotFoundError, match="no answer"):
            big.acquire()
        assert elapsed(sim2, t0) <= DURATION_S + RESPONSE_TIMEOUT_S + 0.005
        assert sim2.frontend.transactions.count(0x12) == 1  # died after the first chunk
    assert big.closed  # close after unplug does not raise


def test_recovers_after_replug_with_its_settings(
    sim: Simulator, spec: SpiSpectrometer, caplog: pytest.LogCaptureFixture
) -> None:
    spec.acquire(dark=True)
    sim.frontend.unplug()
    with pytest.raises(DeviceNotFoundError):
        spec.acquire()
    sim.frontend.replug()  # rebooted: 50 ms x 16, source off
    with caplog.at_level(logging.WARNING):
        frame = spec.acquire()
    assert "reset" in caplog.text
    assert (frame.integration_ms, frame.coadds, frame.dark) == (INTEGRATION_MS, COADDS, False)
    assert (sim.frontend.integration_us, sim.frontend.coadds) == (20_000, COADDS)


def test_waits_for_a_frame_it_did_not_start(sim: Simulator, spec: SpiSpectrometer) -> None:
    spec.configure(500.0, 3)  # someone (a previous host run) starts a 1.5 s frame
    sim.bus.xfer2(list(f.request(f.START, 200)))
    t0 = sim.clock.monotonic()
    spec.configure(INTEGRATION_MS, COADDS)  # BUSY until that frame is done, then written
    assert elapsed(sim, t0) == pytest.approx(1.5 + 0.0006 + 0.001, abs=0.03)
    assert sim.frontend.coadds == COADDS
    assert spec.acquire().coadds == COADDS


def test_front_end_busy_forever_times_out(sim: Simulator, spec: SpiSpectrometer) -> None:
    with pytest.raises(ValueError, match="71 minutes"):
        spec.configure(10_000.0, 1024)
    spec.configure(4000.0, 1024)  # a frame of 68 minutes
    sim.bus.xfer2(list(f.request(f.START, 200)))
    t0 = sim.clock.monotonic()
    with pytest.raises(InstrumentTimeoutError, match="busy"):
        spec.acquire(dark=True)
    # each attempt waits timeout_s for the front end to become idle; retried `retries` times
    assert elapsed(sim, t0) == pytest.approx((RETRIES + 1) * TIMEOUT_S, abs=0.05)


def test_frame_crc_catches_damage_that_chunk_crcs_miss(
    sim: Simulator, spec: SpiSpectrometer
) -> None:
    sim.faults.inject(Fault.CORRUPT_FRAME_DATA, times=1)
    frame = spec.acquire()
    np.testing.assert_array_equal(frame.counts, decode_held(sim))
    assert sim.frontend.transactions.count(0x12) == 2  # the frame was read twice
    sim.faults.inject(Fault.CORRUPT_FRAME_DATA, times=None)
    with pytest.raises(CrcError, match=r"frame \d+ CRC mismatch"):
        spec.acquire()
