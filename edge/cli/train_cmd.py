"""``spectra-edge train --library LIB -o DIR``: train the TFLite classifier (needs the
``train`` extra; see :mod:`edge.train.run`, which ``scripts/train_model.py`` also runs)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

TRAIN_EXTRA_HINT = "pip install 'spectra-edge[train]'"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``train``."""
    from edge.train.settings import build_arg_parser

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train the classifier from a library (needs TensorFlow)",
        description="Train the 1-D CNN classifier on a reference library and write the model "
        "directory (model_float32.tflite, model_int8.tflite, manifest.json). "
        f"Needs TensorFlow: {TRAIN_EXTRA_HINT}.",
    )
    build_arg_parser(p)
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("tensorflow") is None:
        print(
            f"spectra-edge train: TensorFlow is not installed: {TRAIN_EXTRA_HINT}",
            file=sys.stderr,
        )
        return 1
    from edge.train.run import run_from_args

    return run_from_args(args)
