"""``spectra-edge probe`` and ``spectra-edge acquire``: talk to the instrument directly.

``probe`` opens the configured instrument and prints who it is; ``acquire`` takes one reading
(dark, background, sample) and writes it as JCAMP-DX or CSV, or prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.cli.common import config_from_args
from hal.errors import DeviceNotFoundError, HalError, IdentityError
from spectra_io.errors import SpectraEdgeError, SpectrumFileError

if TYPE_CHECKING:  # the handlers import these when they run (start-up time)
    from edge.config import Config
    from edge.scan.acquisition import Measurement, Officer
    from edge.scan.opener import OpenInstrument

_HINTS = {
    DeviceNotFoundError: "is the front end connected and powered? is SPI enabled? "
    "([instrument] driver = 'sim' runs without hardware)",
    IdentityError: "is the right device on this chip-select, with spectra-edge firmware?",
}


def _fail(err: SpectraEdgeError, what: str) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[bold red]{what}:[/] {err}", highlight=False)
    for kind, hint in _HINTS.items():
        if isinstance(err, kind):
            console.print(f"[yellow]hint:[/] {hint}", highlight=False)
    return 1


def _open(cfg: Config, args: argparse.Namespace) -> OpenInstrument:
    from edge.scan.opener import open_instrument

    opened = open_instrument(cfg.instrument, library_path=cfg.identify.library)
    if getattr(args, "integration_ms", None) or getattr(args, "coadds", None):
        opened.instrument.configure(
            args.integration_ms or cfg.instrument.integration_ms,
            args.coadds or cfg.instrument.coadds,
        )
    return opened


def _probe(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    cfg = config_from_args(args)
    try:
        with _open(cfg, args) as (inst, _):
            ident = inst.identity
            axis = inst.wavenumbers()
            temperature = inst.temperature_c()
    except HalError as err:
        return _fail(err, f"no instrument ({cfg.instrument.driver})")
    table = Table(title="spectra-edge instrument", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in (
        ("driver", cfg.instrument.driver),
        ("model", ident.model),
        ("serial", ident.serial),
        ("firmware", ident.firmware),
        ("pixels", f"{ident.pixels} x {ident.bits} bit"),
        ("axis", f"{axis[0]:.1f} .. {axis[-1]:.1f} cm^-1"),
        ("temperature", f"{temperature:.2f} °C"),
    ):
        table.add_row(field, value)
    Console().print(table)
    return 0


class _Officer:
    """Real hardware: ask the person at the box (only when someone is at a terminal)."""

    def _ask(self, what: str) -> None:
        if sys.stdin.isatty():
            input(f"{what}, then press Enter ")

    def clean_crystal(self) -> None:
        self._ask("Clean the crystal (nothing on it)")

    def place_sample(self) -> None:
        self._ask("Place the sample on the crystal")


def _peaks(m: Measurement, n: int = 5) -> list[tuple[float, float]]:
    import numpy as np
    from scipy.signal import find_peaks

    idx, props = find_peaks(m.absorbance, prominence=0.03)
    top = idx[np.argsort(props["prominences"])[::-1][:n]]
    return sorted((float(m.wavenumbers[i]), float(m.absorbance[i])) for i in top)


def _summary(m: Measurement, sample: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="spectra-edge reading", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("sample", sample or "(as on the crystal)")
    table.add_row(
        "pixels", f"{m.wavenumbers.size}, {m.wavenumbers[0]:.1f}..{m.wavenumbers[-1]:.1f}"
    )
    table.add_row("exposure", f"{m.sample.integration_ms:g} ms x {m.sample.coadds}")
    table.add_row("temperature", f"{m.sample.temperature_c:.2f} °C")
    table.add_row("absorbance", f"{m.absorbance.min():.3f} .. {m.absorbance.max():.3f}")
    table.add_row("saturated", str(m.saturated))
    peaks = ", ".join(f"{x:.0f} ({y:.2f})" for x, y in _peaks(m)) or "none"
    table.add_row("peaks cm^-1 (A)", peaks)
    Console().print(table)


def _write(path: Path, m: Measurement, cfg: Config, sample: str | None) -> None:
    from spectra_io import SpectrumRecord, write_spectrum

    ident_meta = {
        "origin": f"spectra-edge acquire, device {cfg.device.id}, driver {cfg.instrument.driver}",
        "integration_ms": f"{m.sample.integration_ms:g}",
        "coadds": str(m.sample.coadds),
        "temperature_c": f"{m.sample.temperature_c:.2f}",
        "saturated": str(m.saturated),
    }
    if sample:
        ident_meta["sample"] = sample
    record = SpectrumRecord(
        x=m.wavenumbers,
        y=m.absorbance,
        y_units="absorbance",
        title=sample or "spectra-edge reading",
        metadata=ident_meta,
    )
    write_spectrum(path, record)


def _acquire(args: argparse.Namespace) -> int:
    from rich.console import Console

    from edge.scan.acquisition import SimulatedOfficer, acquire_measurement
    from edge.scan.opener import SampleError

    cfg = config_from_args(args)
    if args.sample and cfg.instrument.driver != "sim":
        print("spectra-edge acquire: --sample only applies to driver = 'sim'", file=sys.stderr)
        return 2
    try:
        with _open(cfg, args) as (inst, samples):
            officer: Officer = _Officer()
            if samples is not None:  # the simulated officer works the sample handler
                try:
                    officer = SimulatedOfficer(samples, args.sample)
                except SampleError as err:
                    print(f"spectra-edge acquire: bad --sample: {err}", file=sys.stderr)
                    return 2
            m = acquire_measurement(inst, officer)
    except HalError as err:
        return _fail(err, "acquisition failed")
    if args.out is None:
        _summary(m, args.sample)
        return 0
    try:
        _write(args.out, m, cfg, args.sample)
    except SpectrumFileError as err:
        return _fail(err, "cannot write")
    Console().print(f"wrote {args.out} ({m.wavenumbers.size} points, absorbance)")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``probe`` and ``acquire``."""
    p = sub.add_parser(
        "probe",
        parents=[common],
        help="print the instrument's identity, firmware, pixels, axis and temperature",
    )
    p.set_defaults(handler=_probe)
    a = sub.add_parser(
        "acquire",
        parents=[common],
        help="take one reading; write it as JCAMP-DX/CSV or print a summary",
    )
    a.add_argument(
        "--sample",
        metavar="NAME[:FRACTION],...",
        help="simulator only: substances on the crystal (library or built-in names)",
    )
    a.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="write the absorbance here: .jdx/.dx/.jcamp (JCAMP-DX) or .csv",
    )
    a.add_argument("--integration-ms", type=float, help="override integration time, ms")
    a.add_argument("--coadds", type=int, help="override co-added scans")
    a.set_defaults(handler=_acquire)
