"""What a training run takes: its sizes (:class:`TrainSettings`) and its command-line
arguments. Standard library only, so ``spectra-edge --help`` can list them without loading
numpy or TensorFlow (:mod:`edge.train.run` does the training)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSettings:
    """Sizes of the training run (defaults: the shipped model)."""

    epochs: int = 30
    per_substance: int = 120
    analogues_per_family: int = 400
    unknowns: int = 600
    val_per_substance: int = 25
    seed: int = 1234
    batch_size: int = 64


def build_arg_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of the training script (shared with ``spectra-edge train``)."""
    p = parser or argparse.ArgumentParser(
        prog="train_model.py", description="Train the spectra-edge TFLite classifier."
    )
    d = TrainSettings()
    p.add_argument("--library", required=True, metavar="LIB", help="reference library directory")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="model directory to write")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument(
        "--per-substance",
        type=int,
        default=d.per_substance,
        help=f"augmented spectra per substance (default {d.per_substance})",
    )
    p.add_argument(
        "--analogues-per-family",
        type=int,
        default=d.analogues_per_family,
        help=f"synthetic family analogues per family (default {d.analogues_per_family})",
    )
    p.add_argument(
        "--unknowns",
        type=int,
        default=d.unknowns,
        help=f"random-band unknown spectra (default {d.unknowns})",
    )
    p.add_argument(
        "--val-per-substance",
        type=int,
        default=d.val_per_substance,
        help=f"validation spectra per substance (default {d.val_per_substance})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--model-version", default=None, help="version string (default: date)")
    return p
