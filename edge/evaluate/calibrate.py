"""Fit and write a library's ``calibration.json`` from its own simulated challenges.

    python -m edge.evaluate.calibrate LIB OUT.json [--seed N] [--rounds R]

``spectra-edge library build`` and ``spectra-edge library calibrate LIB`` do this for a library
(``LIB/calibration.json``, which :func:`edge.identify.calibration.find_calibration` prefers).
The shipped fallback ``edge/identify/calibration_default.json`` is made this way from the
shipped starter library.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from edge.evaluate.runner import calibrate_library
from edge.library import load_library


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m edge.evaluate.calibrate", description=__doc__)
    ap.add_argument("library", help="library directory")
    ap.add_argument("out", help="calibration file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    from edge.progress import progress

    with progress("calibrating") as advance:
        cal = calibrate_library(
            load_library(args.library), seed=args.seed, rounds=args.rounds, progress=advance
        )
    cal.save(Path(args.out))
    print(f"{args.out}: {cal.meta['n_records']} records, floors {cal.floors}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
