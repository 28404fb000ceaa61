"""Evaluation on real labelled spectra measured elsewhere than the library (cross-laboratory).

The library comes from one laboratory, the queries from others, each with the library name
that is right (and chemically equivalent names that also count). Two protocols:

- *known*: every query against the whole library: is the right material first in the hits,
  ``identified`` and right, ``identified`` (or ``mixture``) and wrong;
- *held out*: each material (with its equivalents) taken out of the library, its queries
  against the rest: how often a relative is named anyway.

Each library the product searches is calibrated the way ``library build`` calibrates it (its
own spectra, the field perturbation model), never on the queries. The plain-correlation
baseline answers the same queries.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.evaluate.baseline import PlainCorrelation
from edge.evaluate.challenge import Query
from edge.evaluate.evaluate import LABELLED_TARGETS, met
from edge.evaluate.report import reliability
from edge.evaluate.runner import NAMING, Outcome, calibrate_library, metrics, run
from edge.identify.calibration import Calibration
from edge.identify.identifier import Identifier
from edge.library import Library
from edge.progress import progress


@dataclass(frozen=True)
class LabelledSpectrum:
    """One real query: its spectrum, the right library name, equivalents and its source."""

    wavenumbers: npt.NDArray[np.float64]
    absorbance: npt.NDArray[np.float64]
    truth: str
    accept: tuple[str, ...] = ()
    source: str = ""
    label: str = ""

    def query(self, kind: str = "single") -> Query:
        """As a challenge query (*kind* ``single`` against a library that has it, else
        ``unknown``)."""
        return Query(
            self.wavenumbers,
            self.absorbance,
            kind,
            (self.truth,),
            (1.0,),
            None,
            {},
            self.accept if kind == "single" else (),
        )


def _calibrate(library: Library, rounds: int) -> Calibration:
    with progress(f"calibrating {len(library)} entries") as advance:
        return calibrate_library(library, rounds=rounds, progress=advance)


def _known_metrics(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    m = metrics(outcomes)
    keys = ("top1_hit", "top3", "top1", "identified_wrong", "inconclusive_right")
    out: dict[str, Any] = {k: m[k] for k in keys}
    out["no_match"] = m["single_no_match"]
    out["statuses"] = m["statuses"]["single"]
    out["n"] = m["counts"]["single"]
    return out


def evaluate_labelled(
    library: Library,
    spectra: Sequence[LabelledSpectrum],
    *,
    calibration: Calibration | None = None,
    calibrate: Callable[[Library], Calibration] | None = None,
    held_out: bool = True,
    calibration_rounds: int = 3,
) -> dict[str, Any]:
    """Known and held-out protocols for the product and the baseline; a summary dict.

    *calibration* is the library's own (as ``library build`` wrote it); *calibrate* fits
    one for a library (default: :func:`calibrate_library`), used for every held-out library
    and for *library* when *calibration* is None.
    """
    t0 = time.perf_counter()
    fit = calibrate or (lambda lib: _calibrate(lib, calibration_rounds))
    cal = calibration if calibration is not None else fit(library)
    product = Identifier(library, calibration=cal)
    baseline = PlainCorrelation(library)
    queries = [s.query("single") for s in spectra]
    with progress("identifying (known)", total=2 * len(queries)) as advance:
        ours = run(product, queries, advance)
        base = run(baseline, queries, advance)
    sources = sorted({s.source for s in spectra})
    summary: dict[str, Any] = {
        "library": {"name": library.name, "entries": len(library)},
        "queries": len(spectra),
        "known": {"product": _known_metrics(ours), "baseline": _known_metrics(base)},
        "by_source": {
            src: {
                "product": _known_metrics(
                    [o for o, s in zip(ours, spectra, strict=True) if s.source == src]
                ),
                "baseline": _known_metrics(
                    [o for o, s in zip(base, spectra, strict=True) if s.source == src]
                ),
            }
            for src in sources
        },
        "reliability": reliability(ours),
    }
    if held_out:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(spectra):
            groups[s.truth].append(i)
        held_ours: list[Outcome] = []
        held_base: list[Outcome] = []
        held_src: list[str] = []
        names = library.names()
        for truth in sorted(groups):
            idx = groups[truth]
            drop = {truth, *spectra[idx[0]].accept}
            rows = [i for i, n in enumerate(names) if n not in drop]
            sub = library.subset(rows)
            sub_cal = fit(sub)
            qs = [spectra[i].query("unknown") for i in idx]
            held_ours += run(Identifier(sub, calibration=sub_cal), qs)
            held_base += run(PlainCorrelation(sub), qs)
            held_src += [spectra[i].source for i in idx]

        def held_metrics(outs: Sequence[Outcome]) -> dict[str, Any]:
            return {
                "held_out_named": round(float(np.mean([o.status in NAMING for o in outs])), 4),
                "held_out_inconclusive": round(
                    float(np.mean([o.status == "inconclusive" for o in outs])), 4
                ),
                "n": len(outs),
            }

        summary["held_out"] = {
            "product": held_metrics(held_ours),
            "baseline": held_metrics(held_base),
        }
        for src in sources:
            sel = [i for i, s in enumerate(held_src) if s == src]
            summary["by_source"][src]["held_out"] = {
                "product": held_metrics([held_ours[i] for i in sel]),
                "baseline": held_metrics([held_base[i] for i in sel]),
            }
    flat = dict(summary["known"]["product"])
    if held_out:
        flat["held_out_named"] = summary["held_out"]["product"]["held_out_named"]
    summary["targets"] = {k: list(v) for k, v in LABELLED_TARGETS.items()}
    summary["targets_met"] = {
        k: met(flat.get(k), v) for k, v in LABELLED_TARGETS.items() if k in flat
    }
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary
