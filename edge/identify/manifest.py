"""The classifier's manifest (``manifest.json`` beside the ``.tflite`` files).

The manifest is the contract between the training script and the device: which substance and
family each output index means, the wavenumber grid and preprocessing the input vector must be
built with, the library the model was trained on (content hash), the sha256 of each model file,
training figures, and which variant the device runs by default.

>>> m = load_manifest(Path("models/model"))      # doctest: +SKIP
>>> check_against_library(m, library)            # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ModelError
from edge.preprocess.grid import make_grid
from spectra_io.atomic import atomic_write_text
from spectra_io.sealed import seal, seal_problem

MANIFEST_NAME = "manifest.json"
#: Version of the manifest format; bumped on incompatible change.
FORMAT_VERSION = 1

Variant = Literal["float32", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridSpec(_Strict):
    """The evenly spaced wavenumber grid of the input vector, cm^-1 (increasing)."""

    start: float = Field(description="first wavenumber, cm^-1")
    stop: float = Field(description="last wavenumber, cm^-1 (inclusive)")
    step: float = Field(gt=0, description="spacing, cm^-1")
    n: int = Field(gt=1, description="number of points")

    @model_validator(mode="after")
    def _consistent(self) -> GridSpec:
        expected = round((self.stop - self.start) / self.step) + 1
        if expected != self.n:
            raise ValueError(
                f"grid {self.start}..{self.stop} step {self.step} "
                f"has {expected} points, not {self.n}"
            )
        return self

    def wavenumbers(self) -> npt.NDArray[np.float64]:
        """The grid as an array."""
        return make_grid(self.start, self.stop, self.step)


class LibraryRef(_Strict):
    """The reference library the model was trained on."""

    content_hash: str = Field(description="content hash of the library (its own hash)")
    version: str = Field(description="library version string")
    n_entries: int = Field(ge=1)


class VariantInfo(_Strict):
    """One exported model file."""

    file: str = Field(description="file name inside the model directory")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    input_dtype: Literal["float32", "int8"]
    val_substance_accuracy: float = Field(ge=0, le=1, description="top-1 on the validation set")
    val_family_accuracy: float = Field(ge=0, le=1, description="family top-1 on validation set")
    val_unknown_auroc: float | None = Field(
        None,
        ge=0,
        le=1,
        description="how well the top substance probability ranks validation spectra of "
        "library substances above analogues and unknowns (area under the ROC curve)",
    )
    agreement_with_float32: float | None = Field(
        None, ge=0, le=1, description="share of validation spectra with the same top substance"
    )


class TrainingInfo(_Strict):
    """How the model was trained, for the record."""

    seed: int
    epochs: int
    n_train: int
    n_val: int
    seconds: float = Field(description="wall-clock seconds of the whole training script")
    tensorflow: str
    augmentation: dict[str, Any] = Field(default_factory=dict)
    val_unknown_max_prob_p50: float | None = Field(
        None, description="median top substance probability on held-out-like unknowns"
    )
    val_known_max_prob_p50: float | None = Field(
        None, description="median top substance probability on validation spectra"
    )
    val_analogue_family_accuracy: float | None = Field(
        None, description="family accuracy on leave-substance-out analogues"
    )


class ModelManifest(_Strict):
    """Typed ``manifest.json`` of a classifier model directory."""

    format_version: int = Field(FORMAT_VERSION, description="manifest format version")
    model_version: str
    created: str = Field(description="RFC 3339 UTC time of export")
    labels: list[str] = Field(min_length=2, description="substance per output index")
    family_labels: list[str] = Field(min_length=2, description="family per output index")
    label_families: list[str] = Field(description="family label of each substance label")
    grid: GridSpec
    preprocessing: dict[str, Any] = Field(description="preprocessing spec (edge.preprocess)")
    library: LibraryRef
    outputs: dict[Literal["substance", "family"], str] = Field(
        description="signature output name of each head"
    )
    output_kind: Literal["logits", "probabilities"] = Field(
        "probabilities", description="what the heads output; logits get a softmax on the host"
    )
    signature: str = Field("serving_default", description="TFLite signature key")
    input_name: str = Field(description="signature input name")
    variants: dict[Variant, VariantInfo]
    default_variant: Variant
    default_variant_reason: str
    training: TrainingInfo
    manifest_sha256: str | None = Field(
        None, description="sha256 of this document without this member (spectra_io.sealed)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels are not unique")
        if len(set(self.family_labels)) != len(self.family_labels):
            raise ValueError("family_labels are not unique")
        if len(self.label_families) != len(self.labels):
            raise ValueError("label_families must have one entry per label")
        unknown = set(self.label_families) - set(self.family_labels)
        if unknown:
            raise ValueError(f"label_families not in family_labels: {sorted(unknown)}")
        if self.default_variant not in self.variants:
            raise ValueError(f"default_variant {self.default_variant!r} has no file")
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not {FORMAT_VERSION}")
        return self


def load_manifest(model_dir: Path | str) -> ModelManifest:
    """Read and validate ``model_dir/manifest.json``; :class:`ModelError` when missing or bad."""
    path = Path(model_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ModelError(f"cannot read model manifest {path}: {err}") from err
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        problem = seal_problem(doc)
        if problem is not None:
            raise ModelError(f"model manifest {path}: {problem}")
        return ModelManifest.model_validate(doc)
    except (ValueError, ValidationError) as err:
        if isinstance(err, ModelError):
            raise
        raise ModelError(f"invalid model manifest {path}: {err}") from err


def save_manifest(manifest: ModelManifest, model_dir: Path | str) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename); returns its path."""
    path = Path(model_dir) / MANIFEST_NAME
    doc = seal(manifest.model_dump(mode="json", exclude={"manifest_sha256"}))
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


class LibraryLike(Protocol):
    """What :func:`check_against_library` needs from a reference library."""

    content_hash: str
    entries: Sequence[Any]


def family_label(category: str, family: str | None) -> str:
    """The classifier's family label of a substance: the family of a narcotic, else its
    category (the rule training and this check share)."""
    return family if category == "narcotic" and family else category


def library_labels(library: Any) -> list[str]:
    """Substance names of *library* in library order."""
    return [str(e.name) for e in library.entries]


def check_against_library(manifest: ModelManifest, library: LibraryLike) -> None:
    """Raise :class:`ModelError` unless *manifest* was trained on exactly *library*.

    Compares the library content hash, the substance labels (same names, same order) and
    each label's family.
    """
    lib_hash = str(library.content_hash)
    if manifest.library.content_hash != lib_hash:
        raise ModelError(
            f"model was trained on library {manifest.library.content_hash[:16]}..., "
            f"but the library in use is {lib_hash[:16]}...; retrain the model "
            "(spectra-edge train --library LIB -o DIR)"
        )
    labels = library_labels(library)
    if labels != list(manifest.labels):
        missing = sorted(set(manifest.labels) - set(labels))
        extra = sorted(set(labels) - set(manifest.labels))
        raise ModelError(
            "model labels do not match the library "
            f"(in model only: {missing[:5]}, in library only: {extra[:5]}); retrain the model"
        )
    families = [family_label(str(e.category), e.family) for e in library.entries]
    if families != list(manifest.label_families):
        wrong = [
            n for n, a, b in zip(labels, families, manifest.label_families, strict=True) if a != b
        ]
        raise ModelError(
            f"model label families do not match the library ({wrong[:5]}); retrain the model"
        )


def grid_matches(manifest: ModelManifest, wavenumbers: Sequence[float] | npt.ArrayLike) -> bool:
    """True when *wavenumbers* equal the manifest grid (to 1e-6 cm^-1)."""
    w = np.asarray(wavenumbers, dtype=np.float64)
    g = manifest.grid.wavenumbers()
    return bool(w.shape == g.shape and np.allclose(w, g, rtol=0, atol=1e-6))
