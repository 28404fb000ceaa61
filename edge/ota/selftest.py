"""The self-test of a release: its reference spectra must still identify as they say.

Run with the interpreter of the app release under test and the models directory under test::

    python -m edge.ota.selftest --models DIR [--outbox DATA_DIR] [--json]

``DIR/selftest/selftest.json`` lists ``{"file", "expect"}`` pairs (spectra files beside it);
each is identified with ``DIR/library`` and ``DIR/model`` and must come out ``identified`` as
``expect``. ``--outbox`` also checks that the outbox in ``DATA_DIR`` takes a write
transaction. Exit status 0 when everything passes; a JSON report on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from edge.publish.outbox import FILE_NAME as OUTBOX_FILE
from edge.shipped import MODELS_ENV

#: Longest wait for the outbox's write lock, s.
OUTBOX_LOCK_TIMEOUT_S = 5.0


def run_selftest(models: Path) -> dict[str, Any]:
    """Identify every reference spectrum of *models*; ``{"ok", "cases", "failures"}``."""
    from edge.identify.setup import build_identifier
    from spectra_io import read_spectrum

    spec_path = models / "selftest" / "selftest.json"
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        cases = list(spec["spectra"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return {"ok": False, "cases": 0, "failures": [f"no usable {spec_path}: {err}"]}
    if not cases:
        return {"ok": False, "cases": 0, "failures": ["selftest.json lists no spectra"]}
    previous = os.environ.get(MODELS_ENV)
    os.environ[MODELS_ENV] = str(models)  # for the duration of the load only
    try:
        ident = build_identifier(models / "library", models / "model")
    except Exception as err:  # any load failure is a failed self-test, reported
        return {"ok": False, "cases": len(cases), "failures": [f"cannot load: {err}"]}
    finally:
        if previous is None:
            os.environ.pop(MODELS_ENV, None)
        else:
            os.environ[MODELS_ENV] = previous
    failures = []
    for case in cases:
        record = read_spectrum(spec_path.parent / case["file"])
        result = ident.identify(record.x, record.y)
        name = result.substance.name if result.substance else None
        if result.status != "identified" or name != case["expect"]:
            failures.append(
                f"{case['file']}: expected {case['expect']}, got {result.status} {name}"
            )
    return {
        "ok": not failures,
        "cases": len(cases),
        "failures": failures,
        "versions": dict(ident.versions),
    }


def outbox_writable(data_dir: Path) -> str | None:
    """None when the outbox (or, before the first result, its directory) takes a write."""
    path = data_dir / OUTBOX_FILE
    try:
        if not path.exists():
            probe = data_dir / ".ota-write-probe"
            probe.write_bytes(b"")
            probe.unlink()
            return None
        con = sqlite3.connect(path, timeout=OUTBOX_LOCK_TIMEOUT_S)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        finally:
            con.close()
    except (OSError, sqlite3.Error) as err:
        return f"outbox in {data_dir} not writable: {err}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc)."""
    ap = argparse.ArgumentParser(prog="python -m edge.ota.selftest")
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--outbox", type=Path, help="data_dir whose outbox must take a write")
    args = ap.parse_args(argv)
    report = run_selftest(args.models)
    if args.outbox is not None:
        problem = outbox_writable(args.outbox)
        report["outbox"] = problem or "writable"
        if problem:
            report["ok"] = False
            report["failures"].append(problem)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
