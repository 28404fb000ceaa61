#!/usr/bin/env python3
"""Start-up time of the command line, as ratios against ``python -c pass`` in the same run.

Each case is a fresh interpreter running exactly what the ``spectra-edge`` console script runs
(``from edge.cli import main; sys.exit(main())``): ``--help``, ``config validate FILE``, and
``identify FILE`` on one spectrum (a library entry written as JCAMP-DX). The cases and the
baseline are run interleaved, round by round, so that load from other processes hits them
alike; the report gives the median and minimum wall time of each, its ratio to the baseline's
median, and, from one extra run under ``python -X importtime``, the share of imports in it and
the heaviest top-level packages. Writes ``bench/results/bench_startup.json``.

    .venv/bin/python bench/bench_startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from edge.cli import main; sys.exit(main())"  # = the console script


def _cases(tmp: Path) -> dict[str, list[str]]:
    from edge.config import default_config_text
    from edge.library import load_library
    from spectra_io import SpectrumRecord, write_spectrum

    config = tmp / "config.toml"
    config.write_text(default_config_text())
    library = load_library(ROOT / "models" / "library")
    name = library.names()[0]
    grid, absorbance = library.absorbance(name)
    ok = absorbance == absorbance  # measured range only (NaN outside)
    spectrum = tmp / "one.jdx"
    write_spectrum(
        spectrum, SpectrumRecord(x=grid[ok], y=absorbance[ok], y_units="absorbance", title=name)
    )
    env_config = ["--config", str(config)]
    return {
        "python -c pass": ["-c", "pass"],
        "spectra-edge --help": ["-c", CLI, "--help"],
        "spectra-edge config validate FILE": ["-c", CLI, "config", "validate", str(config)],
        "spectra-edge identify FILE": ["-c", CLI, "identify", *env_config, str(spectrum)],
    }


def _run(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
        cwd=ROOT,
    )
    return time.perf_counter() - t


def _import_profile(args: list[str]) -> dict[str, Any]:
    """Total self time of all imports and the heaviest top-level packages (``-X importtime``)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    wall = time.perf_counter() - t
    per_package: Counter[str] = Counter()
    modules = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        per_package[name.strip().split(".")[0]] += int(self_us)
        modules += 1
    total = sum(per_package.values()) / 1e6
    return {
        "modules": modules,
        "import_s": round(total, 3),
        "wall_s_under_importtime": round(wall, 3),
        "import_share": round(total / wall, 3),
        "top_packages_s": {k: round(v / 1e6, 3) for k, v in per_package.most_common(8)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="timed runs of each case")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_startup.json")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        cases = _cases(Path(tmp_dir))
        for argv in cases.values():  # warm the file cache and the bytecode
            _run(argv)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, argv in cases.items():
                times[name].append(_run(argv))
        profiles = {name: _import_profile(argv) for name, argv in cases.items()}

    base = statistics.median(times["python -c pass"])
    results: dict[str, Any] = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        results[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(samples), 4),
            "ratio_to_python_pass": round(median / base, 2),
            **profiles[name],
        }
    summary = {
        "benchmark": "cli_startup",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "rounds": args.rounds,
        "timing": "fresh interpreter per run, cases interleaved; wall clock (perf_counter)",
        "baseline": "python -c pass",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
