#!/usr/bin/env python3
"""TFLite inference time of the shipped classifier, float32 vs int8, through LiteRT.

Per-spectrum latency (p50/p99 of single ``Classifier.predict`` calls, quantisation included)
and batched throughput, with two baselines measured in the same run: the float32 variant
(ratios int8/float32) and a numpy float32 matrix-vector product with as many weights as the
float32 model (a dense-compute reference). Writes ``bench/results/bench_tflite.json``.

    .venv/bin/python bench/bench_tflite.py [--model DIR] [--n 3000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.identify.classifier import Classifier
from edge.library.format import load_library
from edge.preprocess.chain import preprocess_many
from edge.train.augment import AugmentSpec, field_perturb
from edge.train.dataset import LibraryView

ROOT = Path(__file__).resolve().parents[1]


def _percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e6  # microseconds
    return {
        "p50_us": round(float(np.percentile(a, 50)), 2),
        "p99_us": round(float(np.percentile(a, 99)), 2),
        "mean_us": round(float(a.mean()), 2),
    }


def _time_interleaved(fns: dict[str, Any], inputs: np.ndarray, n: int) -> dict[str, list[float]]:
    """Time each of *fns* on the same inputs, alternating call by call, so that load from
    other processes hits every variant alike."""
    for fn in fns.values():  # warm-up
        for v in inputs[:50]:
            fn(v)
    out: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(n):
        v = inputs[i % len(inputs)]
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(v)
            out[name].append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "model")
    ap.add_argument("--library", type=Path, default=ROOT / "models" / "library")
    ap.add_argument("--n", type=int, default=3000, help="timed single predictions per variant")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_tflite.json")
    args = ap.parse_args()

    clfs = {v: Classifier.load(args.model, v) for v in ("float32", "int8")}  # type: ignore[arg-type]
    spec = clfs["float32"].manifest.preprocessing
    view = LibraryView.from_library(load_library(args.library))
    rng = np.random.default_rng(0)
    rows = [
        field_perturb(view.grid, view.spectra[i % len(view.names)], rng, AugmentSpec())
        for i in range(200)
    ]
    valid = np.array([view.valid[i % len(view.names)] for i in range(200)])
    x, _ = preprocess_many(view.grid, np.array(rows), spec, valid=valid)

    n_weights = clfs["float32"].manifest.variants["float32"].size_bytes // 4
    mat = rng.standard_normal((max(n_weights // x.shape[1], 1), x.shape[1])).astype(np.float32)
    fns: dict[str, Any] = {name: clf.predict for name, clf in clfs.items()}
    # Dense reference: one float32 mat-vec with as many weights as the float32 file holds.
    fns["numpy_matvec_same_weights"] = lambda v: mat @ v
    timings = _time_interleaved(fns, x.astype(np.float32), args.n)

    results: dict[str, Any] = {name: _percentiles(t) for name, t in timings.items()}
    results["numpy_matvec_same_weights"]["weights"] = int(mat.size)
    for name, clf in clfs.items():
        batch = np.tile(x, (5, 1))[:1000]
        clf.predict_batch(batch)  # warm-up at this batch size (tensor resize)
        t = time.perf_counter()
        for _ in range(5):
            clf.predict_batch(batch)
        per_spec = (time.perf_counter() - t) / (5 * len(batch))
        results[name]["batch1000_per_spectrum_us"] = round(per_spec * 1e6, 2)
        results[name]["size_bytes"] = clf.manifest.variants[name].size_bytes  # type: ignore[index]

    f, q = results["float32"], results["int8"]
    summary = {
        "benchmark": "tflite_inference",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "model_version": clfs["float32"].manifest.model_version,
        "n_single_calls": args.n,
        "timing": "single calls interleaved float32/int8/numpy; wall clock (perf_counter)",
        "threads": 1,
        "results": results,
        "ratios": {
            "int8_over_float32_p50": round(q["p50_us"] / f["p50_us"], 3),
            "int8_over_float32_p99": round(q["p99_us"] / f["p99_us"], 3),
            "float32_over_numpy_matvec_p50": round(
                f["p50_us"] / results["numpy_matvec_same_weights"]["p50_us"], 3
            ),
            "int8_size_over_float32": round(q["size_bytes"] / f["size_bytes"], 3),
        },
        "device_variant": clfs["float32"].manifest.default_variant,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
