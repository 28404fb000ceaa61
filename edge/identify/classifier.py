"""The TFLite substance/family classifier, run through LiteRT.

:meth:`Classifier.load` reads a model directory (``manifest.json`` + ``.tflite`` files), checks
each file's sha256 against the manifest, and opens it with LiteRT (``ai_edge_litert``), or
``tflite_runtime`` where LiteRT is not installed. :meth:`Classifier.predict` takes one vector
already preprocessed onto the manifest grid with the manifest's preprocessing spec and returns
substance and family probabilities; :meth:`Classifier.predict_batch` does many at once.

int8 models take int8 input and give int8 outputs: the vector is quantised with the input
tensor's scale and zero point and the outputs are dequantised, so callers only see float
probabilities whichever variant runs. The heads output logits (``output_kind``) and the softmax
runs here in float32: a quantised softmax has a step of 1/256, which would flatten every
confident answer to 0.996 and blur the no-match threshold.

Thread safety: one TFLite interpreter must not run in two threads at once, so every call is
serialised by a lock held for the duration of the invoke. For parallel inference, load one
:class:`Classifier` per thread.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError
from edge.identify.manifest import ModelManifest, Variant, load_manifest

FloatArray = npt.NDArray[np.float32]


def _interpreter_class() -> Any:
    """The LiteRT ``Interpreter`` class, else tflite_runtime's; ModelError when neither."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as err:
        raise ModelError(
            "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)"
        ) from err


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Prediction:
    """Classifier output for one spectrum (probabilities sum to ~1 per head)."""

    substance_probs: FloatArray
    family_probs: FloatArray
    labels: tuple[str, ...]
    family_labels: tuple[str, ...]

    @property
    def top_substance(self) -> str:
        """Most probable substance label."""
        return self.labels[int(np.argmax(self.substance_probs))]

    @property
    def top_substance_prob(self) -> float:
        """Probability of :attr:`top_substance`."""
        return float(np.max(self.substance_probs))

    @property
    def top_family(self) -> str:
        """Most probable family label."""
        return self.family_labels[int(np.argmax(self.family_probs))]

    def top_k(self, k: int = 3) -> list[tuple[str, float]]:
        """The *k* most probable substances with their probabilities, best first."""
        idx = np.argsort(self.substance_probs)[::-1][:k]
        return [(self.labels[i], float(self.substance_probs[i])) for i in idx]


class Classifier:
    """A loaded TFLite classifier; build with :meth:`load`."""

    def __init__(
        self,
        manifest: ModelManifest,
        variant: Variant,
        interpreter: Any,
        model_dir: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.model_dir = model_dir
        self.variant: Variant = variant
        self._interp = interpreter
        self._lock = threading.Lock()
        runner = interpreter.get_signature_runner(manifest.signature)
        self._runner = runner
        in_details = runner.get_input_details()[manifest.input_name]
        self._in_dtype = np.dtype(in_details["dtype"])
        self._in_quant = _quant(in_details)
        out_details = runner.get_output_details()
        self._out_quant = {
            head: _quant(out_details[name]) for head, name in manifest.outputs.items()
        }
        self.labels = tuple(manifest.labels)
        self.family_labels = tuple(manifest.family_labels)
        self.n_inputs = manifest.grid.n

    @classmethod
    def load(cls, model_dir: Path | str, variant: Variant | None = None) -> Classifier:
        """Open *model_dir* with *variant* (default: the manifest's ``default_variant``).

        Raises :class:`ModelError` when the manifest or file is missing, the file's sha256
        differs from the manifest, or the runtime cannot open it.
        """
        model_dir = Path(model_dir)
        manifest = load_manifest(model_dir)
        variant = variant or manifest.default_variant
        info = manifest.variants.get(variant)
        if info is None:
            raise ModelError(
                f"model {model_dir} has no {variant!r} variant (has: {sorted(manifest.variants)})"
            )
        path = model_dir / info.file
        try:
            digest = sha256_file(path)
        except OSError as err:
            raise ModelError(f"cannot read model file {path}: {err}") from err
        if digest != info.sha256:
            raise ModelError(
                f"model file {path} is corrupt or altered: sha256 {digest[:16]}... "
                f"!= manifest {info.sha256[:16]}..."
            )
        interpreter_cls = _interpreter_class()
        try:
            interp = interpreter_cls(model_path=str(path), num_threads=1)
            interp.allocate_tensors()
            return cls(manifest, variant, interp, model_dir)
        except (ValueError, RuntimeError, KeyError) as err:
            raise ModelError(f"cannot open model file {path}: {err}") from err

    def predict(self, vector: npt.ArrayLike) -> Prediction:
        """Classify one preprocessed spectrum (length ``manifest.grid.n``)."""
        x = np.asarray(vector, dtype=np.float32)
        if x.shape != (self.n_inputs,):
            raise ValueError(f"expected a vector of {self.n_inputs} values, got shape {x.shape}")
        sub, fam = self._run(x[None, :])
        return Prediction(sub[0], fam[0], self.labels, self.family_labels)

    def predict_batch(self, vectors: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Classify many spectra (shape ``(n, grid.n)``); returns (substance, family) probs."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"expected shape (n, {self.n_inputs}), got {x.shape}")
        if x.shape[0] == 0:
            return (
                np.zeros((0, len(self.labels)), np.float32),
                np.zeros((0, len(self.family_labels)), np.float32),
            )
        return self._run(x)

    def _run(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        if not np.all(np.isfinite(x)):
            raise ValueError("input vector contains NaN or infinite values")
        feed = _quantise(x, self._in_dtype, self._in_quant)
        with self._lock:
            out = self._runner(**{self.manifest.input_name: feed})
        sub = _dequantise(out[self.manifest.outputs["substance"]], self._out_quant["substance"])
        fam = _dequantise(out[self.manifest.outputs["family"]], self._out_quant["family"])
        if self.manifest.output_kind == "logits":
            sub, fam = _softmax(sub), _softmax(fam)
        return sub, fam


def _softmax(z: FloatArray) -> FloatArray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _quant(details: dict[str, Any]) -> tuple[float, int] | None:
    """(scale, zero_point) of a quantised tensor, None for a float tensor."""
    q = details.get("quantization_parameters") or {}
    scales = q.get("scales")
    if scales is None or len(scales) == 0:
        scale, zero = details.get("quantization", (0.0, 0))
        return (float(scale), int(zero)) if scale else None
    return float(scales[0]), int(q["zero_points"][0])


def _quantise(x: FloatArray, dtype: np.dtype[Any], quant: tuple[float, int] | None) -> Any:
    if quant is None or dtype == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = quant
    info = np.iinfo(dtype)
    q = np.rint(x / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantise(y: Any, quant: tuple[float, int] | None) -> FloatArray:
    arr = np.asarray(y)
    if quant is None or arr.dtype == np.float32:
        return arr.astype(np.float32, copy=True)
    scale, zero = quant
    return ((arr.astype(np.float32) - zero) * scale).astype(np.float32)
