"""Evaluate identification on the real reference spectra in ../shared/data (never committed).

    .venv/bin/python scripts/evaluate_shared.py [--only enfsi|xsource] [--seeds 5] [--out DIR]
        [--no-held-out] [--classifier [--models DIR] [--epochs N]]

ENFSI (``enfsi-atr``): builds a library with ``spectra-edge library build`` in a temporary
directory (deleted afterwards). For each seed: holds 15 % of the compounds out as unknowns,
calibrates the known part as ``library build`` would (its own spectra only), re-measures
queries under the harsh perturbation model (:data:`edge.evaluate.challenge.HARSH`), mixes
drugs with cutting agents, and measures the product and the plain-correlation baseline on the
same queries. With ``--classifier`` a classifier is trained on each split's known part.

xsource-dev: builds the one-laboratory library with ``library build`` (which fits and writes
its calibration), identifies the 140 queries measured by other laboratories against it, then
holds each queried material (with its chemically equivalent entries) out of the library,
recalibrates, and counts how often a relative is named. Figures per query source too (MPX,
Chabuka): thresholds fitted on one would have to hold on the other.

Prints every figure of issue 10 with the baseline beside it; ``--out`` keeps the reports
(outside the project). Exit status 0 when it ran (targets are reported, not enforced here).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.evaluate.evaluate import LABELLED_TARGETS, TARGETS, evaluate_library, met  # noqa: E402
from edge.evaluate.labelled import LabelledSpectrum, evaluate_labelled  # noqa: E402
from edge.evaluate.runner import WEIGHTS  # noqa: E402
from edge.identify.calibration import find_calibration  # noqa: E402
from edge.library import Library, load_library  # noqa: E402
from spectra_io import read_spectrum  # noqa: E402


def shared_data() -> Path:
    """``shared/data`` beside the project or beside any parent (worktrees live deeper)."""
    for parent in ROOT.parents:
        cand = parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared" / "data"


#: Chemically equivalent library entries that also count as right (xsource-dev/README.md).
XSOURCE_EQUIVALENTS = {
    "polyethylene": ("ethylene propylene", "fibre thermoplastic elastomere", "EPDM rubber"),
    "polypropylene": ("ethylene propylene",),
    "poly(ethylene terephthalate)": ("copolyester",),
    "cellulose": ("plant fibre (coconut, grass, poplar down, turf)",),
}


def build_library(files: list[str], out: Path, *extra: str) -> Path:
    """``spectra-edge library build FILES -o OUT [EXTRA...]``."""
    cmd = [sys.executable, "-m", "edge.cli", "library", "build", *files, "-o", str(out), *extra]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    return out


def trainer(work: Path, epochs: int | None, models: Path | None = None) -> Any:
    """A factory that trains a classifier on a known library (edge.train) and loads it.

    With *models*, a classifier already trained on the same known library (same content hash,
    kept there by an earlier run) is loaded instead of trained again, and new ones are kept.
    """
    from edge.identify.classifier import Classifier
    from edge.train.run import TrainSettings, train

    def make(known: Library) -> Any:
        if models is not None:
            out = models / f"{known.content_hash[:16]}-e{epochs or 'default'}"
            if (out / "model" / "manifest.json").is_file():
                print(f"  classifier for {len(known)} substances from {out}", flush=True)
                return Classifier.load(out / "model")
        else:
            out = Path(tempfile.mkdtemp(prefix="model-", dir=work))
        settings = TrainSettings() if epochs is None else TrainSettings(epochs=epochs)
        t = time.perf_counter()
        train(known, out / "model", settings)
        print(
            f"  trained classifier on {len(known)} substances in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        return Classifier.load(out / "model")

    return make


def pooled(summaries: list[dict[str, Any]], system: str) -> dict[str, float | int | None]:
    """Query-weighted mean of each rate over the seeds; counts summed."""
    out: dict[str, float | int | None] = {}
    for k, weight in WEIGHTS.items():
        vals = [
            (s[system][k], s[system]["counts"][weight])
            for s in summaries
            if s[system][k] is not None and s[system]["counts"][weight]
        ]
        out[k] = (
            round(float(np.average([v for v, _ in vals], weights=[w for _, w in vals])), 4)
            if vals
            else None
        )
    for k in ("false_alarms", "false_alarms_conf90"):
        out[k] = int(sum(s[system][k] for s in summaries))
    for k in summaries[0][system]["counts"]:
        out[f"n_{k}"] = int(sum(s[system]["counts"][k] for s in summaries))
    return out


def run_enfsi(data: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    files = sorted(str(p) for p in data.glob("*.json"))
    if not files:
        raise SystemExit(f"no records in {data}")
    lib = load_library(build_library(files, work / "enfsi", "--no-calibrate"))
    print(f"ENFSI library: {len(lib)} entries from {data}", flush=True)
    factory = trainer(work, args.epochs, args.models) if args.classifier else None
    summaries = []
    for seed in range(args.seeds):
        out_dir = args.out / "enfsi" / f"seed{seed}" if args.out else None
        s = evaluate_library(lib, seed=seed, out_dir=out_dir, classifier_factory=factory)
        summaries.append(s)
        p, b = s["product"], s["baseline"]
        print(
            f"seed {seed}: held out {', '.join(s['held_out'])} ({s['seconds']:.0f} s)\n"
            f"  product : top1 {p['top1']:.3f}  unknown not named {p['unknown_not_named']:.3f}"
            f"  mix2 both {p['mixture2_both_found']:.3f}  false alarms {p['false_alarms']}"
            f"  analogue family named {p['analogue_family_named']}"
            f" right {p['analogue_family_right_when_named']}\n"
            f"  baseline: top1 {b['top1']:.3f}  unknown not named {b['unknown_not_named']:.3f}"
            f"  mix2 both {b['mixture2_both_found']:.3f}  false alarms {b['false_alarms']}",
            flush=True,
        )
        for ex in s["false_alarm_examples"]:
            print(f"  FALSE ALARM: {ex}", flush=True)
    prod = pooled(summaries, "product")
    return {
        "seeds": args.seeds,
        "classifier": args.classifier,
        "product": prod,
        "baseline": pooled(summaries, "baseline"),
        "targets": {k: list(v) for k, v in TARGETS.items()},
        "targets_met": {k: met(prod.get(k), v) for k, v in TARGETS.items()},
        "ece_mean": round(
            float(np.mean([s["calibration"]["reliability"]["ece"] for s in summaries])), 4
        ),
        "held_out_compounds": sorted({n for s in summaries for n in s["held_out"]}),
    }


def xsource_queries(data: Path) -> list[LabelledSpectrum]:
    """The xsource-dev queries with their truth and accepted equivalents."""
    out = []
    with open(data / "queries" / "truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rec = read_spectrum(data / "queries" / row["file"])
            src = "mpx" if row["source"].lower().startswith("mpx") else "chabuka"
            out.append(
                LabelledSpectrum(
                    np.asarray(rec.x, dtype=np.float64),
                    np.asarray(rec.absorbance(), dtype=np.float64),
                    row["class"],
                    XSOURCE_EQUIVALENTS.get(row["class"], ()),
                    src,
                    row["file"],
                )
            )
    return out


def run_xsource(data: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    t = time.perf_counter()
    path = build_library(
        [str(data / "library")], work / "xsource", "--metadata", str(data / "library_meta.csv")
    )
    lib = load_library(path)
    print(
        f"xsource-dev library: {len(lib)} entries (built and calibrated in"
        f" {time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    summary = evaluate_labelled(
        lib,
        xsource_queries(data),
        calibration=find_calibration(path),
        held_out=not args.no_held_out,
    )
    return summary


def print_table(title: str, rows: list[tuple[str, str, Any, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in ("metric", "target", "product", "plain baseline"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for key, target, p, b in rows:
        t.add_row(key, target, _fmt(p), _fmt(b))
    Console().print(t)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _target(t: tuple[str, float] | list[Any] | None) -> str:
    if not t:
        return ""
    return (">= " if t[0] == "min" else "<= ") + _fmt(t[1])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=shared_data())
    ap.add_argument("--only", choices=("enfsi", "xsource"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-held-out", action="store_true", help="xsource: skip held-out materials")
    ap.add_argument("--classifier", action="store_true", help="train a classifier per split")
    ap.add_argument("--epochs", type=int, help="training epochs (default: edge.train's)")
    ap.add_argument("--out", type=Path, help="keep reports here (outside the project)")
    ap.add_argument(
        "--models",
        type=Path,
        help="with --classifier: keep the trained classifiers here and reuse them on later"
        " runs (keyed by the known library's hash; outside the project)",
    )
    args = ap.parse_args()
    enfsi, xsource = args.data / "enfsi-atr", args.data / "xsource-dev"
    if not enfsi.is_dir() and not xsource.is_dir():
        print(f"no shared data at {args.data}; nothing to evaluate", file=sys.stderr)
        return 2
    for opt, path in (("--out", args.out), ("--models", args.models)):
        if path is not None and ROOT in path.resolve().parents:
            print(
                f"{opt} must be outside the project (derived data is never committed)",
                file=sys.stderr,
            )
            return 2
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="shared-eval-") as tmp:
        work = Path(tmp)
        if args.only in (None, "enfsi") and enfsi.is_dir():
            result["enfsi"] = run_enfsi(enfsi, args, work)
        if args.only in (None, "xsource") and xsource.is_dir():
            result["xsource"] = run_xsource(xsource, args, work)
    if "enfsi" in result:
        e = result["enfsi"]
        keys = [*TARGETS, *(k for k in WEIGHTS if k not in TARGETS)]
        print_table(
            f"ENFSI, harsh perturbations, {e['seeds']} seeds",
            [(k, _target(TARGETS.get(k)), e["product"].get(k), e["baseline"].get(k)) for k in keys],
        )
    if "xsource" in result:
        x = result["xsource"]
        rows = []
        for k in ("top1_hit", "top3", "top1", "identified_wrong", "inconclusive_right", "no_match"):
            rows.append(
                (
                    k,
                    _target(LABELLED_TARGETS.get(k)),
                    x["known"]["product"][k],
                    x["known"]["baseline"][k],
                )
            )
        if "held_out" in x:
            for k in ("held_out_named", "held_out_inconclusive"):
                rows.append(
                    (
                        k,
                        _target(LABELLED_TARGETS.get(k)),
                        x["held_out"]["product"][k],
                        x["held_out"]["baseline"][k],
                    )
                )
        print_table("xsource-dev (real spectra from other laboratories)", rows)
        for src, d in x["by_source"].items():
            src_rows = [
                (k, "", d["product"][k], d["baseline"][k])
                for k in ("top1_hit", "top1", "identified_wrong", "inconclusive_right")
            ]
            if "held_out" in d:
                src_rows.append(
                    (
                        "held_out_named",
                        "",
                        d["held_out"]["product"]["held_out_named"],
                        d["held_out"]["baseline"]["held_out_named"],
                    )
                )
            print_table(f"xsource-dev, queries from {src}", src_rows)
    print(json.dumps(result, indent=1, default=str))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pooled.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
