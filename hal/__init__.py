"""Hardware abstraction layer of spectra-edge.

``hal`` talks to the spectrometer front end over SPI and to the operator panel over GPIO.
It knows nothing of :mod:`edge`; ``edge`` reaches hardware only through the interfaces here.
"""

from hal.errors import HalError, SpectraEdgeError

__all__ = ["HalError", "SpectraEdgeError"]
