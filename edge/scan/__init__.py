"""The scan path: open the instrument, acquire, check quality, identify.

* :mod:`edge.scan.opener` — the instrument the config names, with its sample handler.
* :mod:`edge.scan.acquisition` — dark + background + sample -> absorbance.
* :mod:`edge.scan.pipeline` — :class:`ScanPipeline`: acquisition + quality gates + identification.
* :mod:`edge.scan.data` — :class:`ScanData`, the one record of a scan (to the archive and outbox).
* :mod:`edge.scan.engine` — the seam the service drives (:class:`ScanEngine`).

Nothing here imports the service or MQTT: ``spectra-edge scan`` and the service both use it,
and it imports without paho-mqtt installed (tests/unit/test_scan_imports.py).
"""
