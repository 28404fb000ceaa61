"""Service-side costs: remote-command checks on the network thread, and archiving a scan.

1. ``Dispatcher.submit`` (what paho's network thread runs per request) for a valid ping, a
   malformed body, an oversized body and a request beyond the rate limit, against the
   baseline ``json.loads`` of the same valid payload in the same run. Nothing is published:
   responses go to a no-op responder, so this is the pure checking cost.
2. ``Archive.put`` / ``Archive.get`` of one scan (three 1,024-pixel raw frames plus the
   838-point processed spectrum, compressed npz in SQLite, WAL) against the baseline of a
   plain SQLite INSERT of the same arrays as raw bytes in the same run.

    .venv/bin/python bench/bench_service.py [--n N]

Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.preprocess.grid import STANDARD_GRID
from edge.scan.data import ScanData
from edge.service.commands import Dispatcher
from edge.store.archive import Archive, ScanRecord

RESULTS = Path(__file__).parent / "results"
PREFIX = "customs/bench/dev"


def per_call_us(fn: Callable[[], object], n: int) -> float:
    """Median of 5 runs of *n* calls, microseconds per call."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return float(np.median(runs))


def bench_commands(n: int) -> dict[str, Any]:
    def dispatcher(rate: float = 1e12, burst: int = 10**9) -> Dispatcher:
        return Dispatcher(
            PREFIX,
            {"ping": lambda a: {}},
            lambda t, p, c: None,
            device="dev",
            post="bench",
            rate=rate,
            burst=burst,
            queue_size=10**7,
        )

    valid = b'{"nonce": "abc"}'
    topic = f"{PREFIX}/cmd/ping"
    d_ok = dispatcher()
    d_flood = dispatcher(rate=1e-9, burst=1)
    d_flood.submit(topic, valid)  # use the one token
    out = {
        "baseline_json_loads_us": per_call_us(lambda: json.loads(valid), n),
        "submit_valid_us": per_call_us(lambda: d_ok.submit(topic, valid, None, b"c"), n),
        "submit_bad_json_us": per_call_us(lambda: d_ok.submit(topic, b"{nope", None, b"c"), n),
        "submit_too_large_us": per_call_us(lambda: d_ok.submit(topic, b"x" * 5000, None, b"c"), n),
        "submit_rate_limited_us": per_call_us(lambda: d_flood.submit(topic, valid), n),
        "submit_foreign_topic_us": per_call_us(
            lambda: d_ok.submit("customs/bench/other/cmd/ping", valid), n
        ),
    }
    base = out["baseline_json_loads_us"]
    out["ratio_valid_to_baseline"] = out["submit_valid_us"] / base
    out["ratio_rate_limited_to_baseline"] = out["submit_rate_limited_us"] / base
    out["flood_drops_per_s"] = 1e6 / out["submit_rate_limited_us"]
    return out


def bench_archive(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    raw_x = np.linspace(600.0, 4100.0, 1024)

    def record(i: int) -> ScanRecord:
        return ScanRecord(
            scan_id=f"s-{i}",
            created=time.time(),
            result={"status": "identified", "confidence": 0.9},
            data=ScanData(
                wavenumbers=STANDARD_GRID,
                spectrum=rng.random(STANDARD_GRID.size),
                raw_wavenumbers=raw_x,
                sample=rng.normal(2e4, 100, 1024).round(),
                background=rng.normal(3e4, 100, 1024).round(),
                dark=rng.normal(200, 5, 1024).round(),
            ),
        )

    records = [record(i) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        base_db = sqlite3.connect(Path(tmp) / "base.sqlite")
        base_db.execute("PRAGMA journal_mode=WAL")
        base_db.execute("PRAGMA synchronous=NORMAL")
        base_db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, result TEXT, blob BLOB)")
        t0 = time.perf_counter()
        for r in records:
            blob = b"".join(a.tobytes() for a in r.data.arrays().values())
            with base_db:
                base_db.execute(
                    "INSERT INTO t VALUES (?, ?, ?)", (r.scan_id, json.dumps(r.result), blob)
                )
        base_us = (time.perf_counter() - t0) / n * 1e6
        base_db.close()
        with Archive(Path(tmp) / "archive.sqlite") as ar:
            t0 = time.perf_counter()
            for r in records:
                ar.put(r)
            put_us = (time.perf_counter() - t0) / n * 1e6
            t0 = time.perf_counter()
            for r in records:
                ar.get(r.scan_id)
            get_us = (time.perf_counter() - t0) / n * 1e6
            stored = ar.total_bytes() / n
    raw_bytes = sum(a.nbytes for a in records[0].data.arrays().values())
    return {
        "baseline_sqlite_insert_raw_us": base_us,
        "archive_put_us": put_us,
        "archive_get_us": get_us,
        "ratio_put_to_baseline": put_us / base_us,
        "bytes_per_scan_raw": raw_bytes,
        "bytes_per_scan_stored": stored,
        "compression_ratio": raw_bytes / stored,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="calls per command measurement")
    ap.add_argument("--scans", type=int, default=300, help="scans archived")
    args = ap.parse_args()
    result = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "commands": bench_commands(args.n),
        "archive": bench_archive(args.scans),
    }
    for section in ("commands", "archive"):
        print(f"[{section}]")
        for k, v in result[section].items():  # type: ignore[union-attr]
            print(f"  {k:34s} {v:12.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_service.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
