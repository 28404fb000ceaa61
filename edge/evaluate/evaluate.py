"""One evaluation run: split, calibrate on the known part, challenge, product vs baseline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.evaluate.baseline import PlainCorrelation
from edge.evaluate.challenge import build_challenge, family_of, split_library
from edge.evaluate.report import plot_confusion, plot_reliability, reliability, write_summary
from edge.evaluate.runner import calibrate_library, metrics, run
from edge.identify.calibration import CALIBRATION_FILE
from edge.identify.identifier import Identifier
from edge.library import Library

TARGETS = {"top1": 0.97, "unknown_rejection": 0.90, "mixture2_both_found": 0.85}


def evaluate_library(
    library: Library,
    *,
    classifier: Any | None = None,
    classifier_factory: Callable[[Library], Any] | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    out_dir: Path | None = None,
    singles_per_compound: int = 5,
    mixtures2: int = 200,
    mixtures3: int = 60,
) -> dict[str, Any]:
    """Evaluate the product and the plain-correlation baseline on one challenge set.

    A *classifier* must have been trained on the known part of the split; alternatively
    *classifier_factory* is called with that known part and returns one (e.g. trains it).
    Writes PNGs, ``summary.json`` and the fitted ``calibration.json`` to *out_dir* when
    given; returns the summary.
    """
    t0 = time.perf_counter()
    split = split_library(library, holdout, seed)
    known = library.subset(split.known)
    if classifier is None and classifier_factory is not None:
        classifier = classifier_factory(known)
    calibration = calibrate_library(known, seed=seed + 1)
    product = Identifier(known, classifier, calibration=calibration)
    queries = build_challenge(
        library,
        split,
        seed=seed,
        singles_per_compound=singles_per_compound,
        mixtures2=mixtures2,
        mixtures3=mixtures3,
    )
    ours = run(product, queries)
    base = run(PlainCorrelation(known), queries)
    families = {family_of(library, i) for i in split.known}
    m_ours, m_base = metrics(ours, families), metrics(base, families)
    rel_ours = reliability(ours)
    beats = {k: (m_ours[k] or 0) > (m_base[k] or 0) for k in TARGETS}
    summary: dict[str, Any] = {
        "library": {"name": library.name, "version": library.version, "entries": len(library)},
        "held_out": [library.entries[i].name for i in split.held_out],
        "holdout": holdout,
        "seed": seed,
        "classifier": classifier is not None,
        "product": m_ours,
        "baseline": m_base,
        "targets": TARGETS,
        "targets_met": {k: (m_ours[k] or 0) >= v for k, v in TARGETS.items()},
        "beats_baseline_on_all_three": all(beats.values()),
        "calibration": {
            "identify_min_r": calibration.params.identify_min_r,
            "mixture_min_fit": calibration.params.mixture.min_fit,
            "reliability": rel_ours,
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_confusion(out_dir / "confusion.png", ours, f"{library.name}: product")
        plot_confusion(
            out_dir / "confusion_baseline.png", base, f"{library.name}: plain correlation"
        )
        plot_reliability(out_dir / "reliability.png", {"product": rel_ours})
        calibration.save(out_dir / CALIBRATION_FILE)
        write_summary(out_dir / "summary.json", summary)
    return summary
