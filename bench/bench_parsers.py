"""Benchmark of the spectrum readers against hostile files just under the size cap.

    .venv/bin/python bench/bench_parsers.py [--size-mb 48] [--only NAME ...] [--json out.json]

Each hostile file (``tests/support/hostile_spectra.py``: one enormous AFFN line, millions of
short or blank lines, DIF chains, DUP bombs, thousands of blocks or labels, long comments,
JSON with millions of keys or numbers, CSV with millions of comment lines) is written at
``--size-mb`` (default 48 MB, under the 50 MB cap) and, when smaller, at the largest size
whose line count passes the readers' line limit (the files that get furthest into a parser
and cost the most), and read in a fresh process. Reported per file, all measured in this run
on this machine:

- outcome (read, or the error) and wall time;
- peak resident memory added by the read (VmHWM after minus before, the interpreter and numpy
  already loaded), as a ratio to the file size;
- the same two as ratios to reading a normal 3,600-point JCAMP-DX file in the same run.

Two valid files are read beside them: the most points allowed (1,000,000, AFFN, padded to the
size) and the same expanded from one DUP count in a file of a hundred bytes.

Targets (issue 8): peak memory added under 10x the file size and the process never above
200 MB. A tiny file may legally expand to the largest spectrum (DUP), so the 10x target is
taken as max(10x the size, the cost of the largest legal spectrum, 64 MB). The worst
JCAMP-DX file is named at the end. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from spectra_io.json_records import MAX_JSON_BYTES
from spectra_io.textfile import MAX_LINES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from hostile_spectra import (
    JCAMP_MAKERS,
    MAKERS,
    VALID,
    Measurement,
    make,
    measure_read,
    normal_jcamp,
)

MB = 1024 * 1024
#: Targets of issue 8.
MAX_RATIO = 10.0
MAX_TOTAL_BYTES = 200 * MB
#: What reading the largest legal spectrum (1,000,000 points) may cost, whatever the file size.
LARGEST_SPECTRUM_BYTES = 64 * MB


def _row(name: str, size: int, m: Measurement, normal: Measurement) -> dict[str, object]:
    return {
        "file": name,
        "size_mb": round(size / MB, 1),
        "outcome": m.outcome,
        "message": m.message[:120],
        "seconds": round(m.seconds, 3),
        "peak_mb": round(m.peak_bytes / MB, 1),
        "peak_total_mb": round(m.peak_total_bytes / MB, 1),
        "peak_over_size": round(m.peak_bytes / size, 2),
        "over_target": m.peak_bytes > max(MAX_RATIO * size, LARGEST_SPECTRUM_BYTES)
        or m.peak_total_bytes > MAX_TOTAL_BYTES,
        "time_over_normal": round(m.seconds / max(normal.seconds, 1e-6), 1),
        "peak_over_normal": round(m.peak_bytes / max(normal.peak_bytes, 1), 1),
    }


def _under_line_limit(name: str, directory: Path, size: int) -> int:
    """The largest size (at most *size*) at which file *name* has fewer lines than the limit."""
    sample = make(name, directory, MB)
    data = sample.read_bytes()
    sample.unlink()
    lines = max(data.count(b"\n"), 1)
    return min(size, int(len(data) / lines * (MAX_LINES - 1000)))


def _sizes(name: str, directory: Path, size: int) -> list[int]:
    """Sizes to try file *name* at: *size*, and the largest its reader's limits let through."""
    sizes = {size, _under_line_limit(name, directory, size)}
    if MAKERS[name][1] == ".json":
        sizes.add(min(size, MAX_JSON_BYTES - 4096))
    return sorted(sizes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=48.0)
    ap.add_argument("--only", nargs="*", choices=sorted(MAKERS), help="hostile files to run")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per read")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    size = int(args.size_mb * MB)
    names = args.only or list(MAKERS)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-parsers-") as tmp:
        directory = Path(tmp)
        normal_path = directory / "normal.jdx"
        normal_jcamp(normal_path)
        normal = measure_read(normal_path)
        print(
            f"normal 3600-point JCAMP-DX ({normal_path.stat().st_size} bytes): {normal.outcome}, "
            f"{normal.seconds * 1e3:.1f} ms, peak +{normal.peak_bytes / MB:.1f} MB "
            f"(process {normal.peak_total_bytes / MB:.1f} MB)"
        )
        print(f"{'file':20} {'MB':>5} {'outcome':18} {'s':>7} {'peak MB':>8} {'total':>6} "
              f"{'x size':>7} {'x normal t':>10}")  # fmt: skip
        for name in names:
            done: set[int] = set()
            for target in _sizes(name, directory, size):
                path = make(name, directory, target)
                actual = path.stat().st_size
                if actual in done:  # a maker that ignores the size asked for
                    path.unlink()
                    continue
                done.add(actual)
                m = measure_read(path, timeout=args.timeout)
                path.unlink()
                row = _row(name, actual, m, normal)
                rows.append(row)
                print(
                    f"{name:20} {row['size_mb']:>5} {m.outcome[:18]:18} {m.seconds:7.2f} "
                    f"{row['peak_mb']:>8} {row['peak_total_mb']:>6} {row['peak_over_size']:>7} "
                    f"{row['time_over_normal']:>10}",
                    flush=True,
                )
    jcamp = [r for r in rows if r["file"] in JCAMP_MAKERS and r["file"] not in VALID]
    legal = [r for r in rows if r["file"] in VALID]
    missed = [
        r
        for r in rows
        if r["outcome"] in ("timeout", "crash", "MemoryError")
        or r["over_target"]
        or (r["file"] in VALID and r["outcome"] != "ok")
    ]
    if jcamp:
        worst = max(jcamp, key=lambda r: float(str(r["peak_mb"])))
        slowest = max(jcamp, key=lambda r: float(str(r["seconds"])))
        print(
            f"\nworst hostile JCAMP-DX by memory: {worst['file']} ({worst['size_mb']} MB): "
            f"+{worst['peak_mb']} MB = {worst['peak_over_size']}x the file "
            f"({worst['peak_over_normal']}x a normal read), {worst['seconds']} s"
        )
        print(
            f"worst hostile JCAMP-DX by time: {slowest['file']} ({slowest['size_mb']} MB): "
            f"{slowest['seconds']} s ({slowest['time_over_normal']}x a normal read)"
        )
    for r in legal:
        print(
            f"largest legal spectrum, {r['file']} ({r['size_mb']} MB): +{r['peak_mb']} MB "
            f"(process {r['peak_total_mb']} MB), {r['seconds']} s ({r['time_over_normal']}x)"
        )
    for r in missed:
        print(f"MISSED target: {r['file']}: {r['outcome']} peak {r['peak_mb']} MB "
              f"({r['peak_over_size']}x), process {r['peak_total_mb']} MB")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"normal": normal.__dict__, "rows": rows}, indent=1))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
