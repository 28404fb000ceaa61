"""``spectra-edge library build | info | add | remove | export``: manage reference libraries.

- ``library build SOURCES... -o LIB [--metadata FILE] [--category CAT] [--strict]
  [--no-calibrate]`` imports JCAMP-DX, CSV and JSON spectra (files or directories); bad files
  are listed on stderr and skipped (``--strict``: any bad file aborts, nothing written). Then
  it fits the library's decision calibration and writes ``LIB/calibration.json`` (a minute
  for a hundred entries; ``--no-calibrate`` skips it, and identification then warns).
- ``library calibrate LIB`` (re)fits ``LIB/calibration.json`` (after ``add`` or ``remove``,
  which change the library's content).
- ``library info [LIB]`` prints grid, hash, version and counts per category (default: the
  shipped library).
- ``library add LIB FILE --name NAME --category CAT [--family F] ...`` adds a measured scan
  as a user entry; ``library remove LIB NAME``; ``library export LIB NAME -o FILE`` writes
  one entry as JCAMP-DX (``.jdx``) or CSV (``.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge.cli.common import config_from_args
from edge.errors import LibraryError
from edge.library.categories import CATEGORY_SEVERITY, Category
from spectra_io.errors import SpectrumFileError

# numpy and the library format are imported by the handlers that use them (start-up time)


def _build(args: argparse.Namespace) -> int:
    from edge.library.build import build_library, iter_source_files
    from edge.progress import progress

    files = list(iter_source_files(args.sources))
    with progress("reading spectra", total=len(files)) as advance:
        report = build_library(
            files,
            args.out,
            args.metadata,
            name=args.name,
            version=args.lib_version,
            default_category=args.category,
            strict=args.strict,
            progress=advance,
        )
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    for problem in report.ignored:
        print(f"ignored {problem}", file=sys.stderr)
    for problem in report.warnings:
        print(f"warning {problem}", file=sys.stderr)
    print(f"{args.out}: {report.summary()}; sha256 {report.content_hash}")
    if args.no_calibrate:
        print(
            f"{args.out}: not calibrated (--no-calibrate); identification will warn until "
            f"'spectra-edge library calibrate {args.out}' is run",
            file=sys.stderr,
        )
        return 0
    return _write_calibration(args.out, seed=0, rounds=3)


def _write_calibration(path: Path, *, seed: int, rounds: int) -> int:
    from edge.evaluate.runner import calibrate_library
    from edge.identify.calibration import CALIBRATION_FILE
    from edge.library import load_library
    from edge.progress import progress

    lib = load_library(path)
    with progress(f"calibrating {len(lib)} entries") as advance:
        cal = calibrate_library(lib, seed=seed, rounds=rounds, progress=advance)
    cal.save(path / CALIBRATION_FILE)
    print(
        f"{path / CALIBRATION_FILE}: fitted on {cal.meta['n_records']} simulated measurements"
        f" ({cal.meta['cross_source_queries']} cross-source)"
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    return _write_calibration(args.library, seed=args.seed, rounds=args.rounds)


def _info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from edge.library import load_library

    path = args.library
    if path is None:  # the configured library, else the shipped one
        path = config_from_args(args).identify.library
    lib = load_library(path)
    console = Console()
    head = Table(show_header=False, box=None)
    head.add_row("library", f"{lib.name} ({lib.path})")
    head.add_row("version", lib.version)
    head.add_row("entries", str(len(lib)))
    head.add_row(
        "grid",
        f"{lib.grid[0]:g}-{lib.grid[-1]:g} cm-1, step {lib.grid[1] - lib.grid[0]:g}, "
        f"{lib.grid.size} points",
    )
    head.add_row("sha256", lib.content_hash)
    head.add_row("created", str(lib.manifest.get("created", "?")))
    head.add_row("calibration", _calibration_status(lib))
    console.print(head)
    table = Table(title="entries per category")
    table.add_column("category")
    table.add_column("severity")
    table.add_column("entries", justify="right")
    table.add_column("user-added", justify="right")
    for cat in Category:
        rows = [e for e in lib.entries if e.category == cat.value]
        if rows:
            user = sum(e.user_added for e in rows)
            table.add_row(cat.value, CATEGORY_SEVERITY[cat], str(len(rows)), str(user))
    console.print(table)
    if args.entries:
        listing = Table(title="entries")
        for col in ("#", "name", "category", "family", "severity", "cas", "range cm-1"):
            listing.add_column(col)
        for i, e in enumerate(lib.entries):
            vr = f"{e.valid_range[0]:g}-{e.valid_range[1]:g}" if e.valid_range else ""
            listing.add_row(str(i), e.name, e.category, e.family or "", e.severity, e.cas or "", vr)
        console.print(listing)
    return 0


def _calibration_status(lib: Any) -> str:
    from edge.errors import ModelError
    from edge.identify.calibration import CALIBRATION_FILE, Calibration
    from edge.identify.identifier import library_spec_hash

    path = (lib.path or Path(".")) / CALIBRATION_FILE
    if not path.is_file():
        return "none (identification uses the shipped default; run 'library calibrate')"
    try:
        cal = Calibration.load(path)
    except ModelError as err:
        return f"unusable ({err})"
    if cal.meta.get("library_hash") not in (None, lib.content_hash):
        return "stale: fitted for other content (run 'library calibrate')"
    if cal.meta.get("spec_hash") != library_spec_hash(lib):
        return "stale: fitted for other search preprocessing (run 'library calibrate')"
    return f"{path.name}, {cal.meta.get('n_records', '?')} records"


def _add(args: argparse.Namespace) -> int:
    from edge.library.convert import record_to_grid
    from edge.library.format import LibraryEntry, load_library
    from spectra_io import read_spectrum

    lib = load_library(args.library)
    try:
        record = read_spectrum(args.file)
    except SpectrumFileError as err:
        raise LibraryError(f"cannot add {args.file}: {err}") from err
    absorb, valid = record_to_grid(record, lib.grid)
    entry = LibraryEntry.create(
        args.name,
        args.category,
        args.family,
        aliases=tuple(args.alias or ()),
        cas=args.cas,
        formula=args.formula,
        salt_form=args.salt_form,
        notes=args.notes or "",
        source=args.source or f"measured scan {Path(args.file).name}",
        user_added=True,
        valid_range=valid,
    )
    new = lib.with_entry(entry, absorb)
    digest = _save(new, lib.path or Path(args.library), lib.manifest)
    print(
        f"added {entry.name!r} ({entry.category}, {entry.severity}); {len(new)} entries, "
        f"sha256 {digest}"
    )
    return 0


def _save(lib: Any, path: Path, manifest: dict[str, Any]) -> str:
    import numpy as np

    from edge.library import save_library

    return save_library(
        path,
        lib.grid,
        np.asarray(lib.spectra),
        lib.entries,
        name=lib.name,
        version=lib.version,
        description=str(manifest.get("description", "")),
    )


def _remove(args: argparse.Namespace) -> int:
    from edge.library import load_library

    lib = load_library(args.library)
    entry = lib.entry(args.name)
    new = lib.without(args.name)
    digest = _save(new, lib.path or Path(args.library), lib.manifest)
    print(f"removed {entry.name!r}; {len(new)} entries, sha256 {digest}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import numpy as np

    from edge.library import load_library
    from spectra_io import SpectrumRecord, write_spectrum

    lib = load_library(args.library)
    entry = lib.entry(args.name)
    grid, absorb = lib.absorbance(args.name)
    lo, hi = entry.valid_range or (grid[0], grid[-1])
    inside = (grid >= lo - 1e-9) & (grid <= hi + 1e-9)
    meta = {
        "cas": entry.cas or "",
        "formula": entry.formula or "",
        "names": "; ".join(entry.aliases),
        "category": entry.category,
        "family": entry.family or "",
        "salt_form": entry.salt_form or "",
        "source": entry.source,
        "origin": f"spectra-edge library {lib.name} {lib.version}",
    }
    record = SpectrumRecord(
        grid[inside],
        absorb[inside].astype(np.float64),
        "absorbance",
        entry.name,
        {k: v for k, v in meta.items() if v},
    )
    try:
        write_spectrum(args.out, record)
    except SpectrumFileError as err:
        raise LibraryError(f"cannot export {entry.name!r}: {err}") from err
    print(f"wrote {args.out}: {entry.name} ({int(inside.sum())} points)")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``library`` command group."""
    p = sub.add_parser("library", parents=[common], help="build, inspect and edit libraries")
    ls = p.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    b = ls.add_parser("build", parents=[common], help="import spectrum files into a library")
    b.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="files or dirs")
    b.add_argument("-o", "--out", required=True, type=Path, metavar="LIB")
    b.add_argument("--metadata", type=Path, metavar="FILE", help="side-car CSV or TOML")
    b.add_argument("--category", help="category for spectra that name none")
    b.add_argument("--name", help="library name (default: the directory name)")
    b.add_argument("--lib-version", default="1", metavar="VERSION", help="library version")
    b.add_argument("--strict", action="store_true", help="abort on any bad file")
    b.add_argument("--no-calibrate", action="store_true", help="do not fit LIB/calibration.json")
    b.set_defaults(handler=_build)

    c = ls.add_parser(
        "calibrate", parents=[common], help="fit LIB/calibration.json from the library itself"
    )
    c.add_argument("library", type=Path, metavar="LIB")
    c.add_argument("--rounds", type=int, default=3, help="inner hold-out rounds")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(handler=_calibrate)

    i = ls.add_parser("info", parents=[common], help="grid, hash, counts per category")
    i.add_argument(
        "library",
        nargs="?",
        type=Path,
        metavar="LIB",
        help="default: identify.library of the config, else the shipped library",
    )
    i.add_argument("--entries", action="store_true", help="also list every entry")
    i.set_defaults(handler=_info)

    a = ls.add_parser("add", parents=[common], help="add a measured scan as a user entry")
    a.add_argument("library", type=Path, metavar="LIB")
    a.add_argument("file", type=Path, metavar="FILE")
    a.add_argument("--name", required=True)
    a.add_argument("--category", required=True, choices=[c.value for c in Category])
    a.add_argument("--family", help="required for narcotics (opioid, stimulant, ...)")
    a.add_argument("--alias", action="append", help="another name (repeatable)")
    a.add_argument("--cas")
    a.add_argument("--formula")
    a.add_argument("--salt-form")
    a.add_argument("--notes")
    a.add_argument("--source", help="where the spectrum comes from")
    a.set_defaults(handler=_add)

    r = ls.add_parser("remove", parents=[common], help="remove an entry")
    r.add_argument("library", type=Path, metavar="LIB")
    r.add_argument("name", metavar="NAME")
    r.set_defaults(handler=_remove)

    e = ls.add_parser("export", parents=[common], help="write one entry as JCAMP-DX or CSV")
    e.add_argument("library", type=Path, metavar="LIB")
    e.add_argument("name", metavar="NAME")
    e.add_argument("-o", "--out", required=True, type=Path, metavar="FILE", help=".jdx or .csv")
    e.set_defaults(handler=_export)
