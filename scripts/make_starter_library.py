#!/usr/bin/env python3
"""Generate the shipped starter library (models/library) from the band tables.

The band tables in ``models/library-src/*.toml`` list, per substance, published infrared
band positions with relative intensities and widths and name the source of the band data.
Each spectrum is the sum of pseudo-Voigt bands on the standard grid, its strongest band
scaled to the substance's ``peak_absorbance`` (typical single-bounce diamond-ATR values).

Deterministic: the same tables give byte-identical output (the created time comes from
``library.toml``). ``--check`` rebuilds in memory and exits 1 when the committed library
differs.

Like ``spectra-edge library build``, it then fits the library's calibration
(``models/library/calibration.json``, seeded, so the same code gives the same file) and
copies it to ``edge/identify/calibration_default.json``, the fallback for libraries without
their own; ``--no-calibrate`` skips both.

    .venv/bin/python scripts/make_starter_library.py            # writes models/library
    .venv/bin/python scripts/make_starter_library.py --check    # compares only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from edge.errors import LibraryError  # noqa: E402
from edge.library import load_library, save_library  # noqa: E402
from edge.library.starter import build_starter  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Build (or with --check, verify) the starter library; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--src", type=Path, default=ROOT / "models" / "library-src")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "models" / "library")
    ap.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    ap.add_argument("--no-calibrate", action="store_true", help="do not fit calibration.json")
    args = ap.parse_args(argv)
    starter = build_starter(args.src)
    if args.check:
        try:
            committed = load_library(args.out).content_hash
        except LibraryError as err:
            print(f"check failed: {err}", file=sys.stderr)
            return 1
        ok = committed == starter.content_hash
        print(f"{'OK' if ok else 'DIFFERS'}: built {starter.content_hash} committed {committed}")
        return 0 if ok else 1
    digest = save_library(
        args.out,
        starter.grid,
        starter.spectra,
        starter.entries,
        name=starter.name,
        version=starter.version,
        created=starter.created,
        description=starter.description,
    )
    print(f"wrote {args.out}: {len(starter.entries)} entries, sha256 {digest}")
    if not args.no_calibrate:
        from edge.evaluate.runner import calibrate_library
        from edge.identify.calibration import CALIBRATION_FILE, DEFAULT_PATH
        from edge.progress import progress

        with progress("calibrating") as advance:
            cal = calibrate_library(load_library(args.out), seed=0, progress=advance)
        cal.save(args.out / CALIBRATION_FILE)
        cal.save(DEFAULT_PATH)
        print(f"wrote {args.out / CALIBRATION_FILE} and {DEFAULT_PATH.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
