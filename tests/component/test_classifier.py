"""The LiteRT classifier on the shipped model: predictions, int8 handling, integrity checks."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from paths import PROJECT

from edge.errors import ModelError
from edge.identify.classifier import Classifier, Prediction, _dequantise, _quantise
from edge.identify.manifest import MANIFEST_NAME
from edge.library.format import load_library
from edge.preprocess.chain import preprocess_many
from edge.train.dataset import LibraryView
from spectra_io.sealed import seal

ROOT = PROJECT
SHIPPED_MODEL = ROOT / "models" / "model"
SHIPPED_LIBRARY = ROOT / "models" / "library"


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, list[str]]:
    """The shipped library's own spectra, preprocessed with the model's spec."""
    clf = Classifier.load(SHIPPED_MODEL, "float32")
    view = LibraryView.from_library(load_library(SHIPPED_LIBRARY))
    x, _ = preprocess_many(view.grid, view.spectra, clf.manifest.preprocessing, valid=view.valid)
    return x, view.names


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_predicts_clean_library_spectra(variant: str, clean: tuple[np.ndarray, list[str]]) -> None:
    x, names = clean
    clf = Classifier.load(SHIPPED_MODEL, variant)  # type: ignore[arg-type]
    assert clf.variant == variant
    right = sum(clf.predict(v).top_substance == n for v, n in zip(x, names, strict=True))
    assert right / len(names) >= 0.95, f"{variant}: {right}/{len(names)}"


def test_family_head_names_the_family_of_clean_spectra(
    clean: tuple[np.ndarray, list[str]],
) -> None:
    x, _ = clean
    clf = Classifier.load(SHIPPED_MODEL, "float32")
    _, fam = clf.predict_batch(x)
    expected = clf.manifest.label_families
    got = [clf.family_labels[i] for i in np.argmax(fam, axis=1)]
    assert np.mean([g == e for g, e in zip(got, expected, strict=True)]) >= 0.95


def test_int8_and_float32_agree(clean: tuple[np.ndarray, list[str]]) -> None:
    x, _ = clean
    f_sub, f_fam = Classifier.load(SHIPPED_MODEL, "float32").predict_batch(x)
    q_sub, q_fam = Classifier.load(SHIPPED_MODEL, "int8").predict_batch(x)
    assert np.mean(np.argmax(f_sub, 1) == np.argmax(q_sub, 1)) >= 0.9
    # Dequantised int8 probabilities are close to the float ones (output step 1/256).
    assert np.median(np.abs(f_sub - q_sub)) < 0.02
    assert np.allclose(q_sub.sum(axis=1), 1.0, atol=0.05)
    assert np.allclose(f_fam.sum(axis=1), 1.0, atol=1e-4)
    assert q_fam.dtype == np.float32


def test_int8_probabilities_are_not_quantised(clean: tuple[np.ndarray, list[str]]) -> None:
    """Softmax runs on the host from dequantised logits: probabilities are not multiples of
    1/256 and confident answers are not flattened to 255/256."""
    x, _ = clean
    clf = Classifier.load(SHIPPED_MODEL, "int8")
    assert clf.manifest.output_kind == "logits"
    sub, _ = clf.predict_batch(x)
    top = sub.max(axis=1)
    # An int8 softmax output tops out at 255/256 in steps of 1/256.
    assert np.median(top) > 255 / 256
    assert np.sum(np.unique(top) > 255 / 256) >= 5


def test_default_variant_is_the_manifest_one() -> None:
    clf = Classifier.load(SHIPPED_MODEL)
    assert clf.variant == clf.manifest.default_variant


def test_batch_equals_single(clean: tuple[np.ndarray, list[str]]) -> None:
    x, _ = clean
    clf = Classifier.load(SHIPPED_MODEL, "int8")
    sub, fam = clf.predict_batch(x[:5])
    for i in range(5):
        p = clf.predict(x[i])
        assert isinstance(p, Prediction)
        np.testing.assert_allclose(p.substance_probs, sub[i], atol=1e-6)
        np.testing.assert_allclose(p.family_probs, fam[i], atol=1e-6)
    empty_sub, empty_fam = clf.predict_batch(np.zeros((0, clf.n_inputs)))
    assert empty_sub.shape == (0, len(clf.labels))
    assert empty_fam.shape == (0, len(clf.family_labels))


def test_prediction_helpers() -> None:
    p = Prediction(
        np.array([0.1, 0.7, 0.2], np.float32),
        np.array([0.9, 0.1], np.float32),
        ("a", "b", "c"),
        ("f1", "f2"),
    )
    assert p.top_substance == "b"
    assert p.top_substance_prob == pytest.approx(0.7)
    assert p.top_family == "f1"
    assert p.top_k(2) == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]


def test_bad_input_rejected() -> None:
    clf = Classifier.load(SHIPPED_MODEL, "float32")
    with pytest.raises(ValueError, match="expected a vector"):
        clf.predict(np.zeros(clf.n_inputs + 1))
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full(clf.n_inputs, np.nan))
    with pytest.raises(ValueError, match="expected shape"):
        clf.predict_batch(np.zeros(clf.n_inputs))


def test_concurrent_predictions_match_sequential(clean: tuple[np.ndarray, list[str]]) -> None:
    x, _ = clean
    clf = Classifier.load(SHIPPED_MODEL, "int8")
    expected = [clf.predict(v).substance_probs for v in x]
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        results[k] = [clf.predict(v).substance_probs for v in x for _ in range(3)][::3]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    for k in range(4):
        for got, exp in zip(results[k], expected, strict=True):
            np.testing.assert_array_equal(got, exp)


def test_quantise_roundtrip() -> None:
    x = np.linspace(-0.5, 0.49, 100).astype(np.float32)
    q = _quantise(x, np.dtype(np.int8), (0.004, 3))
    assert q.dtype == np.int8
    back = _dequantise(q, (0.004, 3))
    assert np.max(np.abs(back - x)) <= 0.002 + 1e-6
    # Values outside the representable range saturate instead of wrapping.
    sat = _quantise(np.array([10.0, -10.0], np.float32), np.dtype(np.int8), (0.004, 3))
    assert sat.tolist() == [127, -128]


# --- integrity: every failure is a ModelError -------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, dst)
    return dst


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_corrupt_tflite_raises(tmp_path: Path, variant: str) -> None:
    d = _copy(tmp_path)
    path = d / f"model_{variant}.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt or altered"):
        Classifier.load(d, variant)  # type: ignore[arg-type]


def test_wrong_sha256_in_manifest_raises(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    doc = json.loads((d / MANIFEST_NAME).read_text())
    doc["variants"]["int8"]["sha256"] = "a" * 64
    (d / MANIFEST_NAME).write_text(json.dumps(seal(doc)))  # as a careful tool would
    with pytest.raises(ModelError, match="sha256"):
        Classifier.load(d, "int8")
    Classifier.load(d, "float32")  # the other variant is unaffected


def test_missing_manifest_raises(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / MANIFEST_NAME).unlink()
    with pytest.raises(ModelError, match="manifest"):
        Classifier.load(d)


def test_missing_model_file_raises(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / "model_int8.tflite").unlink()
    with pytest.raises(ModelError, match="cannot read model file"):
        Classifier.load(d, "int8")


def test_garbage_file_with_matching_hash_fails_in_the_runtime(tmp_path: Path) -> None:
    """A file whose hash matches but that is not a TFLite model still fails cleanly."""
    from edge.identify.classifier import sha256_file

    d = _copy(tmp_path)
    path = d / "model_float32.tflite"
    path.write_bytes(b"not a flatbuffer at all" * 100)
    doc = json.loads((d / MANIFEST_NAME).read_text())
    doc["variants"]["float32"]["sha256"] = sha256_file(path)
    (d / MANIFEST_NAME).write_text(json.dumps(seal(doc)))  # as a careful tool would
    with pytest.raises(ModelError, match="cannot open"):
        Classifier.load(d, "float32")


def test_unknown_variant_raises(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    doc = json.loads((d / MANIFEST_NAME).read_text())
    del doc["variants"]["float32"]
    doc["default_variant"] = "int8"
    (d / MANIFEST_NAME).write_text(json.dumps(seal(doc)))  # as a careful tool would
    with pytest.raises(ModelError, match="no 'float32' variant"):
        Classifier.load(d, "float32")


def test_no_runtime_installed_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModelError, match="no TFLite runtime"):
        Classifier.load(SHIPPED_MODEL)
