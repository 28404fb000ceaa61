"""The identifier: one object holding the prepared library, the classifier and calibration.

    ident = Identifier(load_library(), classifier=None)
    result = ident.identify(wavenumbers, absorbance)

The search preprocesses with the library manifest's spec, else :data:`DEFAULT_SPEC`; the
classifier, when given, gets its input preprocessed with the spec its manifest names (the one it
was trained on), which may differ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError
from edge.identify.calibration import Calibration, find_calibration
from edge.identify.decision import Decision, decide
from edge.identify.reference import PreparedLibrary
from edge.identify.result import Identification
from edge.library import Library
from edge.preprocess.chain import (
    DEFAULT_SPEC,
    Spec,
    preprocess_with_mask,
    spec_hash,
    validate_spec,
)
from edge.preprocess.quality import QualityReport, check_quality

log = logging.getLogger(__name__)

#: At most this many of a spectrum's ambiguous spikes are tried repaired (one at a time more).
AMBIGUOUS_VARIANTS = 3


class Identifier:
    """Identifies spectra against one library (and optionally a classifier)."""

    def __init__(
        self,
        library: Library,
        classifier: Any | None = None,
        config: Any | None = None,
        *,
        calibration: Calibration | None = None,
        top_k: int | None = None,
        spec: Spec | None = None,
        cache_dir: Path | None = None,
        **index_options: Any,
    ) -> None:
        self.classifier = classifier
        self.top_k = int(top_k if top_k is not None else getattr(config, "top_k", 5))
        if spec is None:
            spec = _spec_from(library)
        self.prepared = PreparedLibrary(library, spec, cache_dir, **index_options)
        self.classifier_spec = _classifier_spec(classifier)
        if classifier is not None:
            _check_classifier(classifier, library)
        model_dir = getattr(classifier, "model_dir", None)
        self.calibration = calibration or find_calibration(library.path, model_dir)
        if calibration is None and not self._calibration_fits():
            source = self.calibration.meta.get("source", "default")
            if source != "default":
                log.warning(
                    "%s was fitted for other library content or preprocessing; run "
                    "'spectra-edge library calibrate %s'",
                    source,
                    library.path,
                )
        self.versions = {"library": library.version, "library_hash": library.content_hash[:16]}
        manifest = getattr(classifier, "manifest", None)
        if manifest is not None:
            self.versions["model"] = str(getattr(manifest, "model_version", "?"))

    def subset(self, rows: Sequence[int], calibration: Calibration | None = None) -> Identifier:
        """This identifier on the library rows *rows* only (no classifier; evaluation)."""
        out = object.__new__(Identifier)
        out.classifier = None
        out.classifier_spec = None
        out.top_k = self.top_k
        out.prepared = self.prepared.subset(rows)
        out.calibration = calibration or self.calibration
        out.versions = dict(self.versions)
        return out

    @property
    def calibration_status(self) -> dict[str, Any]:
        """Where the calibration comes from (``health`` reports it): its file or "default",
        and whether it was fitted for this library's content and search preprocessing."""
        return {
            "source": str(self.calibration.meta.get("source", "given")),
            "matches_library": self._calibration_fits(),
        }

    def _calibration_fits(self) -> bool:
        """The calibration was fitted for this library's content and search spec (a file
        that does not record the spec was fitted under an older search preprocessing)."""
        meta = self.calibration.meta
        return meta.get("library_hash") == self.prepared.library.content_hash and meta.get(
            "spec_hash"
        ) == spec_hash(self.prepared.spec)

    @property
    def library(self) -> Library:
        """The library searched."""
        return self.prepared.library

    def analyse(
        self,
        wavenumbers: npt.ArrayLike,
        absorbance: npt.ArrayLike,
        quality: QualityReport | None = None,
    ) -> Decision:
        """Full decision with evidence; *quality* defaults to the gates files allow."""
        x = np.asarray(wavenumbers, dtype=np.float64)
        y = np.asarray(absorbance, dtype=np.float64)
        grid = self.prepared.grid
        report = (
            quality
            if quality is not None
            else check_quality(x, y, grid_range=(float(grid[0]), float(grid[-1])))
        )
        if not report.ok:
            return Decision(
                Identification(
                    "rejected",
                    None,
                    1.0,
                    reason=report.reason,
                    quality=dict(report.metrics),
                    versions=dict(self.versions),
                )
            )
        decision = self._decide(x, y, report, ambiguous=0)
        # Lone points on a coarse axis: spikes or narrow bands. Let the library decide which
        # reading (none, the most outstanding one, two or three of them repaired) it explains
        # best.
        n_amb = int(report.metrics.get("spikes_ambiguous", 0.0))
        for k in range(1, min(n_amb, AMBIGUOUS_VARIANTS) + 1):
            other = self._decide(x, y, report, ambiguous=k)
            # compared on the final model's fit: a repaired "spike" that was a minor
            # component's band would raise the top hit's own score but lower the fit
            if other.evidence.get("fit", -1.0) > decision.evidence.get("fit", -1.0) + 2e-3:
                decision = other
        return decision

    def _decide(
        self,
        x: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        report: QualityReport,
        *,
        ambiguous: int,
    ) -> Decision:
        vector, keep = preprocess_with_mask(x, y, self.prepared.spec, ambiguous_spikes=ambiguous)
        predict = None
        if self.classifier is not None:
            classifier = self.classifier

            def predict() -> Any:
                """The classifier's prediction (made only when decide() asks for it)."""
                cvec = vector
                if self.classifier_spec is not None and self.classifier_spec != self.prepared.spec:
                    cvec = preprocess_with_mask(x, y, self.classifier_spec)[0]
                return classifier.predict(cvec.astype(np.float32))

        return decide(
            self.prepared,
            vector,
            keep,
            self.calibration,
            prediction=predict,
            top_k=self.top_k,
            quality=dict(report.metrics),
            versions=self.versions,
        )

    def identify(
        self,
        wavenumbers: npt.ArrayLike,
        absorbance: npt.ArrayLike,
        quality: QualityReport | None = None,
    ) -> Identification:
        """Identify one absorbance spectrum (any grid) -> :class:`Identification`."""
        return self.analyse(wavenumbers, absorbance, quality).identification


def library_spec_hash(library: Library) -> str:
    """:func:`spec_hash` of the spec *library* is searched with."""
    return spec_hash(_spec_from(library))


def _spec_from(library: Library) -> Spec:
    lib_spec = library.manifest.get("preprocessing") if library.manifest else None
    return dict(lib_spec) if lib_spec else dict(DEFAULT_SPEC)


def _classifier_spec(classifier: Any | None) -> Spec | None:
    """The completed spec the classifier was trained with (None: no classifier)."""
    if classifier is None:
        return None
    spec = getattr(getattr(classifier, "manifest", None), "preprocessing", None)
    return validate_spec(dict(spec) if spec else {})


def _check_classifier(classifier: Any, library: Library) -> None:
    """The classifier must have been trained on this library (same content hash)."""
    manifest = getattr(classifier, "manifest", None)
    ref = getattr(manifest, "library", None)
    claimed = getattr(ref, "content_hash", None)
    if claimed is not None and claimed != library.content_hash:
        raise ModelError(
            f"model was trained on library {str(claimed)[:12]}..., "
            f"not on {library.name!r} ({library.content_hash[:12]}...)"
        )
