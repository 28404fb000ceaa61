#!/usr/bin/env python3
"""Train the spectra-edge classifier from a library; writes .tflite files and manifest.json.

    python scripts/train_model.py --library models/library -o models/model

reproduces the shipped model (deterministic seed). Needs the ``train`` extra (TensorFlow).
"""

from __future__ import annotations

import sys

from edge.train.run import main

if __name__ == "__main__":
    sys.exit(main())
