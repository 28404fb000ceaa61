"""Driver CPU time per frame against the simulator, vs a raw bytes copy of the same frame.

For 1,024 and 4,096 pixels at 16 bits (and 32 bits for reference), runs
``SpiSpectrometer.acquire()`` against the wire-level simulator on a FakeClock (no real
sleeping). Time spent inside the simulated bus (the simulator's rendering and packet building)
is measured separately and subtracted, so "driver" is the host side only: request encoding,
response parsing, CRC checks, chunk assembly, decoding to float64. Baselines in the same run:
one ``bytes(bytearray(frame))`` copy of the raw frame, and ``np.frombuffer(...).astype(float)``.
Wire time is computed from the bytes the driver actually clocked per frame at 8 and 16 MHz.

    .venv/bin/python bench/bench_driver.py [--frames N]

Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from hal.clock import FakeClock
from hal.sim import SimSpiBus, make_simulator
from hal.spectrometer import SpiSpectrometer

RESULTS = Path(__file__).parent / "results"


class TimedBus:
    """Passes transfers to the simulator's bus and adds up the time spent inside it."""

    def __init__(self, inner: SimSpiBus) -> None:
        self.inner = inner
        self.label = inner.label
        self.inside_ns = 0

    def xfer2(self, data: list[int]) -> list[int]:
        t0 = time.perf_counter_ns()
        try:
            return self.inner.xfer2(data)
        finally:
            self.inside_ns += time.perf_counter_ns() - t0

    def close(self) -> None:
        self.inner.close()


def _per_call_ns(fn: Any, repeat: int) -> float:
    """Median ns per call over *repeat* batches of calls."""
    batch = 200
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - t0) / batch)
    return statistics.median(samples)


def bench_case(pixels: int, bits: int, frames: int) -> dict[str, Any]:
    """One geometry: driver, simulator and baseline timings plus wire time."""
    sim = make_simulator(clock=FakeClock(), pixels=pixels, bits=bits, seed=1)
    bus = TimedBus(sim.bus)
    spec = SpiSpectrometer(bus, sim.data_ready, sim.clock, integration_ms=50, coadds=16)
    sim.stage.place("polystyrene")
    spec.acquire()  # warm-up
    driver_ns, sim_ns, wire_bytes, transfers = [], [], [], []
    for _ in range(frames):
        inside0, bytes0, xfers0 = bus.inside_ns, spec.stats.bytes, spec.stats.transfers
        t0 = time.perf_counter_ns()
        spec.acquire()
        total = time.perf_counter_ns() - t0
        inside = bus.inside_ns - inside0
        driver_ns.append(total - inside)
        sim_ns.append(inside)
        wire_bytes.append(spec.stats.bytes - bytes0)
        transfers.append(spec.stats.transfers - xfers0)
    held = sim.frontend.held_frame
    assert held is not None
    raw = held[1]
    dtype = "<u2" if bits == 16 else "<u4"
    copy_ns = _per_call_ns(lambda: bytes(bytearray(raw)), 25)
    decode_ns = _per_call_ns(lambda: np.frombuffer(raw, dtype).astype(np.float64), 25)
    spec.close()
    drv = statistics.median(driver_ns)
    nbytes = statistics.median(wire_bytes)
    return {
        "pixels": pixels,
        "bits": bits,
        "frame_bytes": len(raw),
        "frames": frames,
        "transfers_per_frame": statistics.median(transfers),
        "wire_bytes_per_frame": nbytes,
        "driver_us_per_frame": drv / 1e3,
        "simulator_us_per_frame": statistics.median(sim_ns) / 1e3,
        "raw_copy_us": copy_ns / 1e3,
        "numpy_decode_us": decode_ns / 1e3,
        "ratio_driver_vs_copy": drv / copy_ns,
        "ratio_driver_vs_numpy_decode": drv / decode_ns,
        "wire_ms_8mhz": nbytes * 8 / 8e6 * 1e3,
        "wire_ms_16mhz": nbytes * 8 / 16e6 * 1e3,
        "exposure_ms_default": 50 * 16 + 0.2 * 16 + 1.0,
    }


def main() -> None:
    """Run all cases, print the table, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames per case")
    args = ap.parse_args()
    cases = [bench_case(px, bits, args.frames) for px, bits in ((1024, 16), (4096, 16), (4096, 32))]
    head = (
        f"{'frame':>12} {'driver us':>10} {'sim us':>9} {'copy us':>8} {'ratio':>7} "
        f"{'np us':>7} {'ratio':>6} {'xfers':>6} {'wire B':>7} {'8MHz ms':>8} {'16MHz ms':>9}"
    )
    print(head)
    for c in cases:
        print(
            f"{c['pixels']:>6}x{c['bits']:<2}bit {c['driver_us_per_frame']:>10.1f} "
            f"{c['simulator_us_per_frame']:>9.1f} {c['raw_copy_us']:>8.3f} "
            f"{c['ratio_driver_vs_copy']:>7.0f} {c['numpy_decode_us']:>7.2f} "
            f"{c['ratio_driver_vs_numpy_decode']:>6.0f} {c['transfers_per_frame']:>6.0f} "
            f"{c['wire_bytes_per_frame']:>7.0f} {c['wire_ms_8mhz']:>8.2f} "
            f"{c['wire_ms_16mhz']:>9.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS / f"bench_driver-{stamp}.json"
    doc = {
        "benchmark": "bench_driver",
        "when": stamp,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cases": cases,
    }
    path.write_text(json.dumps(doc, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
