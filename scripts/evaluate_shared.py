"""Evaluate identification on the real reference spectra in ../shared/data (never committed).

    .venv/bin/python scripts/evaluate_shared.py [--seeds 5] [--out DIR] \
        [--classifier [--models DIR] [--epochs N]]

1. Builds a library from ``../shared/data/enfsi-atr`` with ``spectra-edge library build`` into
   a temporary directory (deleted afterwards; nothing derived from the data is kept in the
   project).
2. For each seed: holds a tenth of the compounds out as unknowns, calibrates on the known
   part only (its own inner hold-out), perturbs queries as a different instrument and a real
   sample would, mixes drugs with cutting agents, and measures the product and the plain
   correlation baseline on the same queries (:func:`edge.evaluate.evaluate.evaluate_library`).
   With ``--classifier`` a classifier is trained on each split's known part with
   ``edge.train`` (minutes per split) and takes part in the decision.
3. Prints per-seed and pooled figures; ``--out`` keeps the reports (outside the project).
"""

from __future__ import annotations

import argparse
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

from edge.evaluate.evaluate import TARGETS, evaluate_library  # noqa: E402
from edge.library import Library, load_library  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "enfsi-atr"
KEYS = (
    "top1",
    "top1_hit",
    "top3",
    "unknown_rejection",
    "unknown_family_named",
    "unknown_family_accuracy",
    "unknown_family_wrong",
    "unknown_family_ceiling",
    "unknown_family_mean_conf",
    "unknown_family_vote_accuracy",
    "mixture2_both_found",
    "mixture3_all_found",
    "mixture3_component_recall",
)


def build_library(data: Path, out: Path) -> Path:
    """``spectra-edge library build`` over every JSON record in *data*."""
    files = sorted(str(p) for p in data.glob("*.json"))
    if not files:
        raise SystemExit(f"no records in {data}")
    cmd = [sys.executable, "-m", "edge.cli", "library", "build", *files, "-o", str(out)]
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


def pooled(summaries: list[dict[str, Any]], system: str) -> dict[str, float | None]:
    """Query-weighted mean of each metric over the seeds."""
    out: dict[str, float | None] = {}
    weights = {
        "top1": "single",
        "top1_hit": "single",
        "top3": "single",
        "unknown_rejection": "unknown",
        "unknown_family_named": "unknown",
        "unknown_family_accuracy": "unknown",
        "unknown_family_wrong": "unknown",
        "unknown_family_ceiling": "unknown",
        "unknown_family_mean_conf": "unknown",
        "unknown_family_vote_accuracy": "unknown",
        "mixture2_both_found": "mixture2",
        "mixture3_all_found": "mixture3",
        "mixture3_component_recall": "mixture3",
    }
    for k in KEYS:
        vals = [
            (s[system][k], s[system]["counts"][weights[k]])
            for s in summaries
            if s[system][k] is not None
        ]
        out[k] = (
            round(float(np.average([v for v, _ in vals], weights=[w for _, w in vals])), 4)
            if vals
            else None
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--holdout", type=float, default=0.1)
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
    if not args.data.is_dir():
        print(f"no shared data at {args.data}; nothing to evaluate", file=sys.stderr)
        return 2
    for opt, path in (("--out", args.out), ("--models", args.models)):
        if path is not None and ROOT in path.resolve().parents:
            print(
                f"{opt} must be outside the project (derived data is never committed)",
                file=sys.stderr,
            )
            return 2
    summaries = []
    with tempfile.TemporaryDirectory(prefix="enfsi-eval-") as tmp:
        work = Path(tmp)
        lib = load_library(build_library(args.data, work / "library"))
        print(f"library: {len(lib)} entries from {args.data}", flush=True)
        factory = trainer(work, args.epochs, args.models) if args.classifier else None
        for seed in range(args.seeds):
            out_dir = args.out / f"seed{seed}" if args.out else None
            s = evaluate_library(
                lib, holdout=args.holdout, seed=seed, out_dir=out_dir, classifier_factory=factory
            )
            summaries.append(s)
            p, b = s["product"], s["baseline"]
            print(
                f"seed {seed}: held out {', '.join(s['held_out'])}\n"
                f"  product : top1 {p['top1']:.3f}  unknown->no_match {p['unknown_rejection']:.3f}"
                f" (family right {p['unknown_family_accuracy']:.3f},"
                f" wrong {p['unknown_family_wrong']:.3f},"
                f" ceiling {p['unknown_family_ceiling']:.3f})"
                f"  mix2 both {p['mixture2_both_found']:.3f}"
                f"  mix3 all {p['mixture3_all_found']:.3f}\n"
                f"  baseline: top1 {b['top1']:.3f} (hit {b['top1_hit']:.3f})  unknown->no_match"
                f" {b['unknown_rejection']:.3f}  mix2 both {b['mixture2_both_found']:.3f}"
                f"  ({s['seconds']:.0f} s, threshold r >= {s['calibration']['identify_min_r']},"
                f" ECE {s['calibration']['reliability']['ece']})",
                flush=True,
            )
    result = {
        "seeds": args.seeds,
        "classifier": args.classifier,
        "product": pooled(summaries, "product"),
        "baseline": pooled(summaries, "baseline"),
        "targets": TARGETS,
        "ece_mean": round(
            float(np.mean([s["calibration"]["reliability"]["ece"] for s in summaries])), 4
        ),
        "held_out_compounds": sorted({n for s in summaries for n in s["held_out"]}),
    }
    prod = result["product"]
    result["targets_met"] = {k: (prod[k] or 0) >= v for k, v in TARGETS.items()}
    result["beats_baseline_on_all_three"] = all(
        (prod[k] or 0) > (result["baseline"][k] or 0) for k in TARGETS
    )
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pooled.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
