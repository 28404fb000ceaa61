"""Identification: library search, mixtures, the classifier and one calibrated decision.

Most callers need only :class:`~edge.identify.identifier.Identifier`::

    from edge.identify.identifier import Identifier
    result = Identifier(load_library()).identify(wavenumbers, absorbance)

Submodules are imported on demand (the classifier pulls in LiteRT).
"""
