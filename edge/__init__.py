"""spectra-edge application layer: preprocess, identify, publish, serve.

``edge`` talks to hardware only through :mod:`hal`'s interfaces.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spectra-edge")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
