"""spectra-edge application layer: preprocess, identify, publish, serve.

``edge`` talks to hardware only through :mod:`hal`'s interfaces.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]

__version__: str  # for type checkers; the value comes from __getattr__ below


def __getattr__(name: str) -> Any:
    """``__version__`` is read from the installed metadata on first use (``importlib.metadata``
    costs tens of milliseconds, which every command line call would pay otherwise)."""
    if name != "__version__":
        raise AttributeError(f"module 'edge' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("spectra-edge")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0+src"
    globals()["__version__"] = value
    return value
