"""Training of the TFLite classifier (``spectra-edge train``, ``scripts/train_model.py``).

Only :mod:`edge.train.model` and :func:`edge.train.run.train` need TensorFlow (the ``train``
extra), and they import it inside functions: :mod:`edge.train.augment` and
:mod:`edge.train.dataset` are numpy only and importable on the device.
"""
