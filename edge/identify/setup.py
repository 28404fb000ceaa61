"""Build an :class:`Identifier` from paths: the shipped library and model by default."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge.errors import ModelError
from edge.identify.identifier import Identifier
from edge.library import default_library_path, load_library

log = logging.getLogger(__name__)

#: Libraries larger than this keep their preprocessed matrix in the disk cache.
DISK_CACHE_MIN_ENTRIES = 1000


def default_model_path() -> Path:
    """The shipped classifier: ``model/`` beside the shipped library."""
    return default_library_path().parent / "model"


def cache_dir() -> Path:
    """Per-user cache of preprocessed libraries (``$XDG_CACHE_HOME/spectra-edge``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spectra-edge"


def build_identifier(
    library: Path | str | None = None,
    model: Path | str | None = None,
    *,
    top_k: int = 5,
    use_model: bool = True,
) -> Identifier:
    """Load the library (None: shipped) and classifier (None: shipped, when present).

    An explicitly named *model* that cannot be loaded is an error; a missing shipped model
    only means identification runs on search + mixture analysis alone (logged).
    """
    lib = load_library(library)
    classifier = None
    if use_model:
        model_dir = Path(model) if model is not None else default_model_path()
        if model is not None or (model_dir / "manifest.json").is_file():
            from edge.identify.classifier import Classifier

            try:
                classifier = Classifier.load(model_dir)
            except ModelError:
                if model is not None:
                    raise
                log.warning("shipped model at %s unusable; identifying without it", model_dir)
        else:
            log.info("no model at %s; identifying with search and mixture analysis only", model_dir)
    cache = cache_dir() if len(lib) >= DISK_CACHE_MIN_ENTRIES else None
    try:
        return Identifier(lib, classifier, top_k=top_k, cache_dir=cache)
    except ModelError as err:
        if model is not None or classifier is None:
            raise
        log.warning("shipped model does not fit the library (%s); identifying without it", err)
        return Identifier(lib, None, top_k=top_k, cache_dir=cache)
