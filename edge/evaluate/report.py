"""Evaluation report: confusion matrix and reliability diagram (PNG) and a JSON summary."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from edge.evaluate.runner import Outcome


def reliability(outcomes: Sequence[Outcome], bins: int = 10) -> dict[str, Any]:
    """Confidence vs observed accuracy per bin, and the expected calibration error (ECE).

    Accuracy is whether the answer's claim is true (:attr:`Outcome.claim_right`): the
    confidence of ``inconclusive`` is the probability that its nearest substance is present.
    """
    conf = np.array([o.confidence for o in outcomes if o.status != "rejected"], dtype=np.float64)
    ok = np.array([o.claim_right for o in outcomes if o.status != "rejected"], dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))
        if sel.any():
            mc, acc = float(conf[sel].mean()), float(ok[sel].mean())
            ece += sel.sum() / conf.size * abs(mc - acc)
            rows.append(
                {
                    "lo": float(lo),
                    "hi": float(hi),
                    "n": int(sel.sum()),
                    "confidence": mc,
                    "accuracy": acc,
                }
            )
    brier = float(np.mean((conf - ok) ** 2)) if conf.size else None
    return {
        "bins": rows,
        "ece": round(float(ece), 4) if conf.size else None,
        "brier": brier,
        "n": int(conf.size),
    }


def confusion(outcomes: Sequence[Outcome]) -> tuple[list[str], list[str], list[list[int]]]:
    """Single-substance and unknown queries: truth rows vs answer columns (incl. no_match)."""
    sel = [o for o in outcomes if o.query.kind in ("single", "unknown")]
    truths = sorted({o.query.truth[0] if o.query.kind == "single" else "(unknown)" for o in sel})
    answers: set[str] = set()
    for o in sel:
        answers.add(_answer(o))
    cols = sorted(answers - {"no_match", "mixture", "rejected"}) + [
        a for a in ("mixture", "no_match", "rejected") if a in answers
    ]
    mat = [[0] * len(cols) for _ in truths]
    for o in sel:
        t = o.query.truth[0] if o.query.kind == "single" else "(unknown)"
        mat[truths.index(t)][cols.index(_answer(o))] += 1
    return truths, cols, mat


def _answer(o: Outcome) -> str:
    if o.status == "identified" and o.names:
        return o.names[0]
    if o.status == "inconclusive" and o.nearest:
        return f"{o.nearest}?"
    return o.status


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a clear error when the extra is missing."""
    try:
        import matplotlib
    except ImportError as err:
        raise EdgeError(
            "evaluation plots need matplotlib: pip install 'spectra-edge[report]'"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(path: Path, outcomes: Sequence[Outcome], title: str) -> None:
    """Confusion matrix as a PNG (matplotlib, Agg)."""
    plt = _pyplot()

    rows, cols, mat = confusion(outcomes)
    m = np.array(mat, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(6.0, 0.16 * max(len(rows), len(cols)))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), [c[:18] for c in cols], rotation=90, fontsize=6)
    ax.set_yticks(range(len(rows)), [r[:18] for r in rows], fontsize=6)
    ax.set_xlabel("answer")
    ax.set_ylabel("truth")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(path: Path, curves: dict[str, dict[str, Any]]) -> None:
    """Reliability diagram (confidence vs accuracy), one curve per system."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for name, rel in curves.items():
        b = rel["bins"]
        ax.plot(
            [x["confidence"] for x in b],
            [x["accuracy"] for x in b],
            "o-",
            label=f"{name} (ECE {rel['ece']})",
        )
        for x in b:  # how many answers each point rests on
            ax.annotate(
                str(x["n"]),
                (x["confidence"], x["accuracy"]),
                fontsize=7,
                xytext=(3, -9),
                textcoords="offset points",
            )
    ax.set_xlabel("stated confidence")
    ax.set_ylabel("observed accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """JSON summary, pretty-printed."""
    path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
