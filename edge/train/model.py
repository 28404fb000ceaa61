"""The 1-D CNN, its training and TFLite export. TensorFlow is imported inside functions only
(it is in the ``train`` extra, never on the device)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.errors import ModelError

#: Names of the two heads; also the TFLite signature output names.
SUBSTANCE = "substance"
FAMILY = "family"
INPUT = "spectrum"

TRAIN_EXTRA_HINT = "pip install 'spectra-edge[train]'"


def import_tf() -> Any:
    """Import TensorFlow (quietly); :class:`ModelError` with the install hint when missing."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ModelError(f"training needs TensorFlow: {TRAIN_EXTRA_HINT}") from err
    return tf


def build_model(n_inputs: int, n_substances: int, n_families: int, input_scale: float) -> Any:
    """A small 1-D CNN with a substance head and a family head (logits each).

    Three conv/pool stages keep band-position information (no global pooling), then one
    shared dense layer; about 10^5 parameters.
    """
    tf = import_tf()
    keras = tf.keras
    layers = keras.layers
    inp = keras.Input(shape=(n_inputs,), name=INPUT)
    x = layers.Rescaling(input_scale)(inp)
    x = layers.Reshape((n_inputs, 1))(x)
    x = layers.Conv1D(16, 9, strides=2, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(32, 7, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(32, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    # Heads output logits: softmax runs on the host in float, so int8 quantisation of the
    # outputs does not flatten probabilities near 1, where the no-match threshold lives.
    sub = layers.Dense(n_substances, name=SUBSTANCE)(x)
    fam = layers.Dense(n_families, name=FAMILY)(x)
    return keras.Model(inp, {SUBSTANCE: sub, FAMILY: fam}, name="spectra_edge_cnn")


def fit(
    model: Any,
    x: npt.NDArray[np.float32],
    y_sub: npt.NDArray[np.float32],
    y_fam: npt.NDArray[np.float32],
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train with Adam and cosine decay; returns the loss per epoch (*on_epoch* is called
    with 1 after each epoch: progress, no effect on the result)."""
    tf = import_tf()
    keras = tf.keras
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss={
            SUBSTANCE: keras.losses.CategoricalCrossentropy(from_logits=True),
            FAMILY: keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={SUBSTANCE: 1.0, FAMILY: 0.5},
    )
    hist = model.fit(
        x,
        {SUBSTANCE: y_sub, FAMILY: y_fam},
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=(
            [keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: on_epoch(1))]
            if on_epoch is not None
            else []
        ),
    )
    return [float(v) for v in hist.history["loss"]]


def predict(model: Any, x: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], ...]:
    """Keras predictions ``(substance, family)`` as probabilities."""
    from scipy.special import softmax

    out = model.predict(x, batch_size=512, verbose=0)
    return softmax(out[SUBSTANCE], axis=1), softmax(out[FAMILY], axis=1)


def export_tflite(
    model: Any,
    n_inputs: int,
    out_dir: Path,
    representative: npt.NDArray[np.float32],
) -> dict[str, Path]:
    """Write ``model_float32.tflite`` and ``model_int8.tflite`` (full-integer quantisation with
    int8 input/outputs, calibrated on *representative*); returns variant -> path."""
    import tempfile

    tf = import_tf()
    saved = Path(tempfile.mkdtemp(prefix="saved-", dir=out_dir)) / "model"
    # Keras 3 -> SavedModel (signature ``serving_default``: input ``spectrum``, outputs named
    # after the heads) -> TFLite; converting the Keras model directly leaves variables behind.
    model.export(str(saved), format="tf_saved_model", verbose=False)
    paths: dict[str, Path] = {}

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    paths["float32"] = out_dir / "model_float32.tflite"
    paths["float32"].write_bytes(conv.convert())

    def rep() -> Any:
        for row in representative:
            yield [row[None, :].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    paths["int8"] = out_dir / "model_int8.tflite"
    paths["int8"].write_bytes(conv.convert())
    shutil.rmtree(saved.parent, ignore_errors=True)
    return paths
