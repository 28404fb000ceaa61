"""Training data for the classifier from any reference library (numpy only, no TensorFlow).

Four kinds of sample, all preprocessed with the one pipeline (:mod:`edge.preprocess.chain`):

``known``
    a library entry perturbed as a field measurement would be (and, sometimes, cut with a
    cutting agent as the minor component); targets: its substance and its family.
``analogue``
    a synthetic relative of a family (warped blend of two members, some bands changed): the
    substance target is uniform (it is not in the library) and the family target is the family.
    This is the leave-substance-out idea in one model: the family head learns what a family's
    spectra share rather than memorising members, and the substance head learns to spread its
    probability on what it has not seen, so its top probability can drive the no-match decision.
``unknown``
    random band spectra: uniform substance and uniform family targets.

Targets are probability vectors (soft labels), trained with categorical cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.preprocess.chain import Spec, preprocess_many
from edge.train.augment import AugmentSpec, analogue, field_perturb, random_bands

FloatArray = npt.NDArray[np.float64]

#: Category whose entries are mixed into known samples as the minor component.
CUTTING_CATEGORIES = ("cutting_agent",)


def family_label(category: str, family: str | None) -> str:
    """The classifier's family label: the family of a narcotic, else the category."""
    return family if category == "narcotic" and family else category


@dataclass(frozen=True)
class LibraryView:
    """What training needs from a library: grid, absorbance rows and labels."""

    grid: FloatArray
    spectra: FloatArray  # (n, grid) absorbance
    valid: npt.NDArray[np.bool_]  # (n, grid) points that carry data
    names: list[str]
    families: list[str]  # family label per entry
    categories: list[str]
    content_hash: str
    version: str

    @classmethod
    def from_library(cls, library: Any) -> LibraryView:
        """View of an :class:`edge.library.format.Library`."""
        grid = np.asarray(library.grid, dtype=np.float64)
        spectra = np.asarray(library.spectra, dtype=np.float64)
        valid = np.ones(spectra.shape, dtype=bool)
        for i, e in enumerate(library.entries):
            if e.valid_range:
                valid[i] = (grid >= e.valid_range[0]) & (grid <= e.valid_range[1])
        return cls(
            grid=grid,
            spectra=spectra,
            valid=valid,
            names=[e.name for e in library.entries],
            families=[family_label(e.category, e.family) for e in library.entries],
            categories=[e.category for e in library.entries],
            content_hash=str(library.content_hash),
            version=str(library.version),
        )

    @property
    def family_labels(self) -> list[str]:
        """Sorted distinct family labels."""
        return sorted(set(self.families))


@dataclass(frozen=True)
class Samples:
    """A preprocessed sample set with soft targets."""

    x: npt.NDArray[np.float32]  # (m, spec grid)
    y_substance: npt.NDArray[np.float32]  # (m, n labels)
    y_family: npt.NDArray[np.float32]  # (m, n families)
    kind: npt.NDArray[np.str_]  # 'known' | 'analogue' | 'unknown'
    substance: npt.NDArray[np.int64]  # true label index, -1 when not in the library
    family: npt.NDArray[np.int64]  # true family index, -1 for unknowns


def make_samples(
    view: LibraryView,
    spec: Spec,
    rng: np.random.Generator,
    per_substance: int,
    analogues_per_family: int,
    n_unknown: int,
    augment: AugmentSpec | None = None,
) -> Samples:
    """Generate and preprocess a sample set (see module docstring for the kinds)."""
    aug = augment or AugmentSpec()
    w = view.grid
    fam_labels = view.family_labels
    fam_index = np.array([fam_labels.index(f) for f in view.families])
    n_sub, n_fam = len(view.names), len(fam_labels)
    cut_rows = [i for i, c in enumerate(view.categories) if c in CUTTING_CATEGORIES]
    peaks = np.maximum(np.max(np.abs(view.spectra), axis=1), 1e-9)

    rows: list[FloatArray] = []
    valids: list[npt.NDArray[np.bool_]] = []
    sub_idx: list[int] = []
    fam_idx: list[int] = []
    kinds: list[str] = []
    for i in range(n_sub):
        others = np.array([view.spectra[j] for j in cut_rows if j != i])
        for _ in range(per_substance):
            rows.append(
                field_perturb(w, view.spectra[i], rng, aug, others if len(others) else None)
            )
            valids.append(view.valid[i])
            sub_idx.append(i)
            fam_idx.append(int(fam_index[i]))
            kinds.append("known")
    for f in range(n_fam):
        members = np.flatnonzero(fam_index == f)
        relatives = view.spectra[members] / peaks[members, None]
        common = np.logical_and.reduce(view.valid[members], axis=0)
        for _ in range(analogues_per_family):
            base = analogue(w, relatives, rng)
            rows.append(field_perturb(w, base, rng, aug, None))
            valids.append(common)
            sub_idx.append(-1)
            fam_idx.append(f)
            kinds.append("analogue")
    full = np.ones(w.size, dtype=bool)
    for _ in range(n_unknown):
        rows.append(field_perturb(w, random_bands(w, rng), rng, aug, None))
        valids.append(full)
        sub_idx.append(-1)
        fam_idx.append(-1)
        kinds.append("unknown")

    x, _ = preprocess_many(w, np.array(rows), spec, valid=np.array(valids))
    s = np.array(sub_idx, dtype=np.int64)
    f_arr = np.array(fam_idx, dtype=np.int64)
    y_sub = np.full((len(s), n_sub), 1.0 / n_sub, dtype=np.float32)
    y_sub[s >= 0] = 0.0
    y_sub[np.flatnonzero(s >= 0), s[s >= 0]] = 1.0
    y_fam = np.full((len(s), n_fam), 1.0 / n_fam, dtype=np.float32)
    y_fam[f_arr >= 0] = 0.0
    y_fam[np.flatnonzero(f_arr >= 0), f_arr[f_arr >= 0]] = 1.0
    return Samples(x, y_sub, y_fam, np.array(kinds), s, f_arr)
