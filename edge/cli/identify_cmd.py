"""Subcommands ``identify`` (files), ``scan`` (instrument) and ``evaluate`` (challenge set).

``spectra-edge identify [--library LIB] [--model DIR] FILES... [--json]`` prints one result per
file; an unreadable file gets status ``rejected`` with reason ``unreadable`` (and the error)
while the other files go on; the exit status is 1 when any file could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.cli.common import config_from_args
from spectra_io.errors import SpectraEdgeError

if TYPE_CHECKING:
    from edge.identify.result import Identification

STATUS_STYLE = {
    "identified": "bold",
    "mixture": "bold yellow",
    "no_match": "cyan",
    "rejected": "red",
}


def result_object(file: str | None, r: Identification) -> dict[str, Any]:
    """The per-file JSON object of ``identify --json``."""
    sub = r.substance
    obj: dict[str, Any] = {
        "status": r.status,
        "substance": None
        if sub is None
        else {
            "name": sub.name,
            "category": sub.category,
            "family": sub.family,
            "severity": sub.severity,
            "cas": sub.cas,
        },
        "family": r.family,
        "severity": r.severity,
        "confidence": r.confidence,
        "hits": [{"name": h.name, "score": h.score} for h in r.hits],
        "mixture": [{"name": m.name, "contribution": m.contribution} for m in r.mixture],
        "reason": r.reason,
    }
    return {"file": file, **obj} if file is not None else obj


def _unreadable(file: str, err: Exception) -> dict[str, Any]:
    return {
        "file": file,
        "status": "rejected",
        "substance": None,
        "family": None,
        "severity": "info",
        "confidence": 0.0,
        "hits": [],
        "mixture": [],
        "reason": "unreadable",
        "error": str(err),
    }


def _human(obj: dict[str, Any]) -> str:
    head = f"{obj['file']}: " if obj.get("file") else ""
    status = obj["status"]
    if status == "identified":
        s = obj["substance"]
        fam = f", {s['family']}" if s["family"] else ""
        text = f"{s['name']} ({s['category']}{fam}; {s['severity']})"
    elif status == "mixture":
        text = " + ".join(f"{m['name']} {m['contribution']:.0%}" for m in obj["mixture"])
    elif status == "no_match":
        text = "no match" + (f" (nearest family: {obj['family']})" if obj["family"] else "")
    else:
        text = f"rejected: {obj['reason']}" + (f" ({obj['error']})" if obj.get("error") else "")
    conf = f"  confidence {obj['confidence']:.2f}" if status != "rejected" else ""
    hits = ", ".join(f"{h['name']} {h['score']:.3f}" for h in obj["hits"][:3])
    return f"{head}[{status}] {text}{conf}" + (f"\n    hits: {hits}" if hits else "")


def _identify(args: argparse.Namespace) -> int:
    from edge.identify.setup import build_identifier
    from spectra_io import read_spectrum

    cfg = config_from_args(args)
    identifier = build_identifier(
        args.library or cfg.identify.library,
        args.model or cfg.identify.model,
        top_k=args.top or cfg.identify.top_k,
        use_model=not args.no_model,
    )
    failed = False
    for name in args.files:
        try:
            rec = read_spectrum(name)
            result = identifier.identify(rec.x, rec.absorbance())
            obj = result_object(str(name), result)
        except (SpectraEdgeError, OSError, ValueError) as err:
            failed = True
            obj = _unreadable(str(name), err)
        print(json.dumps(obj) if args.json else _human(obj), flush=True)
    return 1 if failed else 0


def _scan(args: argparse.Namespace) -> int:
    from edge.scan.opener import SampleError
    from edge.scan.pipeline import run_scan

    cfg = config_from_args(args)
    update = {k: Path(v) for k, v in (("library", args.library), ("model", args.model)) if v}
    if update:
        cfg = cfg.model_copy(update={"identify": cfg.identify.model_copy(update=update)})
    try:
        scan = run_scan(cfg, sample=args.sample, reference=args.reference)
    except SampleError as err:
        print(f"spectra-edge scan: error: {err}", file=sys.stderr)
        return 2
    obj = result_object(None, scan.decision)
    obj["reference"] = scan.reference
    metrics = scan.quality.metrics if scan.quality is not None else {}
    obj["quality"] = {k: round(v, 6) for k, v in metrics.items()}
    if args.json:
        print(json.dumps(obj))
    else:
        from rich.console import Console

        Console().print(
            _human(obj), style=STATUS_STYLE.get(obj["status"], ""), highlight=False, markup=False
        )
    from edge.publish import deliver_result  # outbox first, then a bounded delivery wait

    report = deliver_result(cfg, scan.decision, consignment=scan.reference)
    print(f"spectra-edge scan: {report.describe()}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from edge.evaluate.evaluate import evaluate_library
    from edge.identify.calibration import CALIBRATION_FILE
    from edge.library import load_library

    library = load_library(args.library)
    classifier = None
    if args.model:
        from edge.identify.classifier import Classifier

        classifier = Classifier.load(args.model)
    out = Path(args.out) if args.out else None
    summary = evaluate_library(
        library, classifier=classifier, holdout=args.holdout, seed=args.seed, out_dir=out
    )
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        _print_summary(summary)
        if out is not None:
            print(f"report: {out}/summary.json, confusion.png, reliability.png, {CALIBRATION_FILE}")
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"{s['library']['name']}: {s['library']['entries']} entries, "
        f"held out {len(s['held_out'])}"
    )
    t.add_column("metric")
    t.add_column("product", justify="right")
    t.add_column("plain correlation", justify="right")
    t.add_column("target", justify="right")
    for key in (
        "top1",
        "top1_hit",
        "top3",
        "unknown_rejection",
        "unknown_family_accuracy",
        "mixture2_both_found",
        "mixture3_component_recall",
    ):
        p, b = s["product"][key], s["baseline"][key]
        target = s["targets"].get(key)
        t.add_row(
            key,
            "-" if p is None else f"{p:.3f}",
            "-" if b is None else f"{b:.3f}",
            "" if target is None else f">= {target:.2f}",
        )
    Console().print(t)
    rel = s["calibration"]["reliability"]
    print(f"calibration: ECE {rel['ece']}, Brier {rel['brier']:.4f} over {rel['n']} answers")
    print(f"beats the baseline on all three targets: {s['beats_baseline_on_all_three']}")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``identify``, ``scan`` and ``evaluate``."""
    p = sub.add_parser("identify", parents=[common], help="identify spectra from files")
    p.add_argument("files", nargs="+", metavar="FILE", help="JCAMP-DX, CSV or JSON spectrum files")
    p.add_argument("--library", metavar="LIB", help="library directory (default: shipped)")
    p.add_argument("--model", metavar="DIR", help="classifier directory (default: shipped)")
    p.add_argument("--no-model", action="store_true", help="search and mixture analysis only")
    p.add_argument("--top", type=int, metavar="K", help="hits to report (default: config)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(handler=_identify)

    s = sub.add_parser("scan", parents=[common], help="acquire through the instrument and identify")
    s.add_argument(
        "--sample",
        metavar="NAME[:FRACTION],...",
        help="what lies on a simulated crystal (sim driver)",
    )
    s.add_argument("--reference", metavar="TEXT", help="consignment / container reference")
    s.add_argument("--library", metavar="LIB", help="library directory (default: config)")
    s.add_argument("--model", metavar="DIR", help="classifier directory (default: config)")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(handler=_scan)

    e = sub.add_parser("evaluate", parents=[common], help="challenge-set evaluation of a library")
    e.add_argument("--library", required=True, metavar="LIB", help="library directory")
    e.add_argument("--model", metavar="DIR", help="classifier trained on the library's known part")
    e.add_argument("--holdout", type=float, default=0.1, help="fraction held out as unknowns")
    e.add_argument("--out", metavar="DIR", help="write summary.json, PNGs, calibration.json here")
    e.add_argument("--seed", type=int, default=0, help="random seed")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.set_defaults(handler=_evaluate)
