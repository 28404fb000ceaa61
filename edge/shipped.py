"""Where the shipped reference library and classifier are.

In order: ``$SPECTRA_EDGE_MODELS`` (a directory holding ``library/`` and ``model/``; a device's
updater points it at the data release in use), else the copy an installed wheel carries
(``edge/_shipped/``), else ``models/`` of the source tree. The config keys
``identify.library`` and ``identify.model`` override all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the models directory (holding ``library/`` and ``model/``).
MODELS_ENV = "SPECTRA_EDGE_MODELS"

_PACKAGED = Path(__file__).resolve().parent / "_shipped"
_SOURCE_TREE = Path(__file__).resolve().parents[1] / "models"


def packaged_models_dir() -> Path:
    """The models this app release carries (the wheel's copy, else the source tree's)."""
    if (_PACKAGED / "library" / "manifest.json").is_file():
        return _PACKAGED
    return _SOURCE_TREE


def shipped_models_dir() -> Path:
    """The directory holding the default ``library/`` and ``model/`` (see module doc)."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env)
    return packaged_models_dir()
