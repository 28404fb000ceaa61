"""Training: field augmentation and sample generation (numpy), and a tiny real training run
(only where TensorFlow is installed; CI's dev extra does not have it)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.library.format import load_library
from edge.preprocess.chain import DEFAULT_SPEC
from edge.preprocess.grid import STANDARD_GRID
from edge.train import augment
from edge.train.dataset import LibraryView, family_label, make_samples
from edge.train.synthetic import synthetic_library

HAS_TF = importlib.util.find_spec("tensorflow") is not None
W = STANDARD_GRID


def _peak(centre: float, width: float = 8.0) -> np.ndarray:
    return np.exp(-0.5 * ((W - centre) / width) ** 2)


def test_shift_moves_bands_by_the_shift() -> None:
    a = _peak(1602.0)
    out = augment.shift_stretch(W, a, shift=8.0, stretch=0.0)
    assert W[np.argmax(out)] == pytest.approx(1610.0, abs=W[1] - W[0])
    out = augment.shift_stretch(W, a, shift=0.0, stretch=0.01)  # band moves to 1602 * 1.01
    assert W[np.argmax(out)] == pytest.approx(1602 * 1.01, abs=W[1] - W[0])


def test_blur_widens_and_keeps_area() -> None:
    a = _peak(2000.0, 5.0)
    out = augment.blur(a, 3.0)
    assert out.max() < a.max()
    assert out.sum() == pytest.approx(a.sum(), rel=1e-6)
    np.testing.assert_array_equal(augment.blur(a, 0.0), a)


def test_mix_is_linear() -> None:
    a, b = _peak(1002.0), _peak(3002.0)
    m = augment.mix(a, b, 0.25)
    assert m[np.argmax(a)] == pytest.approx(0.75, abs=1e-3)
    assert m[np.argmax(b)] == pytest.approx(0.25, abs=1e-3)


def test_atmosphere_puts_co2_at_2350() -> None:
    rng = np.random.default_rng(3)
    bands = [np.abs(augment.atmosphere(W, rng, 1.0)) for _ in range(20)]
    co2 = (W > 2300) & (W < 2400)
    quiet = (W > 2500) & (W < 2800)
    assert np.mean([b[co2].max() for b in bands]) > 10 * np.mean([b[quiet].max() for b in bands])


def test_baseline_is_smooth_and_bounded() -> None:
    b = augment.baseline(W, np.random.default_rng(0), 0.3)
    assert b.min() >= -1e-12 and b.max() <= 0.6 + 1e-9
    assert np.max(np.abs(np.diff(b, 2))) < 1e-3  # no bands, only curvature


def test_field_perturb_is_deterministic_per_seed_and_changes_the_spectrum() -> None:
    a = _peak(1700.0) + 0.5 * _peak(1200.0)
    spec = augment.AugmentSpec()
    x1 = augment.field_perturb(W, a, np.random.default_rng(7), spec)
    x2 = augment.field_perturb(W, a, np.random.default_rng(7), spec)
    x3 = augment.field_perturb(W, a, np.random.default_rng(8), spec)
    np.testing.assert_array_equal(x1, x2)
    assert not np.allclose(x1, x3)
    assert not np.allclose(x1, a)
    assert np.corrcoef(x1, a)[0, 1] > 0.3  # still recognisably the same spectrum


def test_random_bands_and_analogue_shapes() -> None:
    rng = np.random.default_rng(1)
    r = augment.random_bands(W, rng)
    assert r.shape == W.shape and r.max() == pytest.approx(1.0)
    rel = np.stack([_peak(1500.0), _peak(1510.0)])
    an = augment.analogue(W, rel, rng)
    assert an.shape == W.shape and np.all(np.isfinite(an))


def test_family_label() -> None:
    assert family_label("narcotic", "opioid") == "opioid"
    assert family_label("explosive", "nitramine") == "explosive"
    assert family_label("benign", None) == "benign"


def test_make_samples_targets(tmp_path: Path) -> None:
    synthetic_library(tmp_path / "lib", per_family=2)
    view = LibraryView.from_library(load_library(tmp_path / "lib"))
    s = make_samples(view, DEFAULT_SPEC, np.random.default_rng(0), 3, 4, 5)
    n_sub, n_fam = len(view.names), len(view.family_labels)
    assert len(s.x) == 3 * n_sub + 4 * n_fam + 5
    assert s.x.shape[1] == W.size and s.x.dtype == np.float32
    np.testing.assert_allclose(s.y_substance.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(s.y_family.sum(axis=1), 1.0, rtol=1e-5)
    known = s.kind == "known"
    assert np.all(s.y_substance[known].max(axis=1) == 1.0)
    assert np.all(np.argmax(s.y_substance[known], axis=1) == s.substance[known])
    ana = s.kind == "analogue"
    np.testing.assert_allclose(s.y_substance[ana], 1.0 / n_sub, rtol=1e-6)
    assert np.all(s.y_family[ana].max(axis=1) == 1.0)
    unk = s.kind == "unknown"
    np.testing.assert_allclose(s.y_family[unk], 1.0 / n_fam, rtol=1e-6)
    # Preprocessed like the device: unit vector norm, CO2 region masked to 0.
    np.testing.assert_allclose(np.linalg.norm(s.x, axis=1), 1.0, rtol=1e-4)
    assert np.all(s.x[:, (W > 2290) & (W < 2390)] == 0)


def test_train_without_tensorflow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main, train_cmd

    monkeypatch.setattr(train_cmd.importlib.util, "find_spec", lambda name: None)
    rc = main(["train", "--library", str(tmp_path / "lib"), "-o", str(tmp_path / "m")])
    assert rc == 1
    assert "pip install 'spectra-edge[train]'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(not HAS_TF, reason="TensorFlow (train extra) not installed")
@pytest.mark.timeout(240)
def test_tiny_training_run_exports_a_working_model(tmp_path: Path) -> None:
    from edge.identify.classifier import Classifier
    from edge.identify.manifest import check_against_library, load_manifest
    from edge.preprocess.chain import preprocess_many
    from edge.train.run import TrainSettings, train

    synthetic_library(tmp_path / "lib", per_family=2)
    library = load_library(tmp_path / "lib")
    settings = TrainSettings(
        epochs=8, per_substance=40, analogues_per_family=30, unknowns=60, val_per_substance=6
    )
    manifest = train(library, tmp_path / "model", settings, model_version="test")

    on_disk = load_manifest(tmp_path / "model")
    assert on_disk == manifest
    check_against_library(on_disk, library)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "manifest.json",
        "model_float32.tflite",
        "model_int8.tflite",
    ]
    assert manifest.variants["int8"].size_bytes < manifest.variants["float32"].size_bytes
    assert manifest.default_variant in ("int8", "float32")
    assert manifest.training.seconds > 0
    assert manifest.preprocessing["grid"]["step"] == 4.0

    view = LibraryView.from_library(library)
    x, _ = preprocess_many(view.grid, view.spectra, manifest.preprocessing, valid=view.valid)
    for variant in ("float32", "int8"):
        clf = Classifier.load(tmp_path / "model", variant)  # type: ignore[arg-type]
        sub, _ = clf.predict_batch(x)
        right = np.mean(np.argmax(sub, axis=1) == np.arange(len(view.names)))
        assert right >= 0.8, f"{variant}: {right}"
    doc = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert doc["variants"]["float32"]["val_substance_accuracy"] >= 0.8

    # The CLI with the same settings reproduces the same files, byte for byte (seeded).
    from edge.cli import main

    rc = main(
        [
            "train",
            "--library",
            str(tmp_path / "lib"),
            "-o",
            str(tmp_path / "again"),
            "--epochs=8",
            "--per-substance=40",
            "--analogues-per-family=30",
            "--unknowns=60",
            "--val-per-substance=6",
            "--model-version=test",
        ]
    )
    assert rc == 0
    again = load_manifest(tmp_path / "again")
    for variant in ("float32", "int8"):
        assert again.variants[variant].sha256 == manifest.variants[variant].sha256  # type: ignore[index]


@pytest.mark.skipif(not HAS_TF, reason="TensorFlow (train extra) not installed")
def test_training_rejects_a_one_family_library(tmp_path: Path) -> None:
    from edge.errors import ModelError
    from edge.train.run import TrainSettings, train

    synthetic_library(tmp_path / "lib", per_family=2)
    library = load_library(tmp_path / "lib").subset([0, 1])  # two opioids only
    with pytest.raises(ModelError, match="at least 2 families"):
        train(library, tmp_path / "model", TrainSettings(epochs=1))
    assert not (tmp_path / "model").exists()


def _variant(acc: float, auroc: float, size: int, dtype: str) -> Any:
    from edge.identify.manifest import VariantInfo

    return VariantInfo(
        file=f"model_{dtype}.tflite",
        sha256="0" * 64,
        size_bytes=size,
        input_dtype=dtype,  # type: ignore[arg-type]
        val_substance_accuracy=acc,
        val_family_accuracy=acc,
        val_unknown_auroc=auroc,
    )


@pytest.mark.parametrize(
    ("int8_acc", "int8_auroc", "expected"),
    [
        (0.995, 0.990, "int8"),  # within a point on both
        (0.970, 0.999, "float32"),  # loses top-1
        (0.999, 0.950, "float32"),  # loses known-vs-unknown separation
    ],
)
def test_device_variant_choice(int8_acc: float, int8_auroc: float, expected: str) -> None:
    from edge.train.run import _choose_variant

    chosen, reason = _choose_variant(
        {
            "float32": _variant(0.999, 0.999, 480_000, "float32"),
            "int8": _variant(int8_acc, int8_auroc, 135_000, "int8"),
        }
    )
    assert chosen == expected
    assert f"{int8_acc:.4f}" in reason
