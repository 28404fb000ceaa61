"""Train the classifier from a library and export the model directory (manifest + .tflite).

``python scripts/train_model.py --library models/library -o models/model`` (or
``spectra-edge train ...``) runs :func:`main`; :func:`train` is the function behind it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError, SpectraEdgeError
from edge.identify.manifest import (
    GridSpec,
    LibraryRef,
    ModelManifest,
    TrainingInfo,
    VariantInfo,
    save_manifest,
)
from edge.preprocess.chain import DEFAULT_SPEC, Spec, spec_grid, validate_spec
from edge.train.augment import AugmentSpec
from edge.train.dataset import LibraryView, Samples, make_samples
from edge.train.settings import TrainSettings, build_arg_parser
from spectra_io.atomic import replace_dir

log = logging.getLogger(__name__)

#: int8 is the device default when it loses at most this much validation top-1 vs float32.
INT8_MAX_ACCURACY_LOSS = 0.01


def train(
    library: Any,
    out_dir: Path | str,
    settings: TrainSettings | None = None,
    spec: Spec | None = None,
    model_version: str | None = None,
) -> ModelManifest:
    """Train on *library* (an :class:`edge.library.format.Library`) and write *out_dir*.

    Writes into a temporary sibling directory and renames it into place, so *out_dir* is
    never half-written. Returns the manifest written.
    """
    from edge.identify.classifier import Classifier, sha256_file
    from edge.train.model import (
        FAMILY,
        INPUT,
        SUBSTANCE,
        build_model,
        export_tflite,
        fit,
        import_tf,
    )
    from edge.train.model import predict as keras_predict

    t0 = time.monotonic()
    st = settings or TrainSettings()
    tf = import_tf()
    spec = validate_spec(spec if spec is not None else DEFAULT_SPEC)
    view = LibraryView.from_library(library)
    if len(view.names) < 2:
        raise ModelError("training needs a library of at least 2 substances")
    fam_labels = view.family_labels
    if len(fam_labels) < 2:
        raise ModelError("training needs substances of at least 2 families/categories")
    grid = spec_grid(spec)
    aug = AugmentSpec()

    rng = np.random.default_rng(st.seed)
    tr = make_samples(view, spec, rng, st.per_substance, st.analogues_per_family, st.unknowns, aug)
    val = make_samples(
        view,
        spec,
        np.random.default_rng(st.seed + 1),
        st.val_per_substance,
        max(st.analogues_per_family // 5, 5),
        max(st.unknowns // 5, 5),
        aug,
    )
    log.info(
        "samples: %d train, %d validation (%.1f s)", len(tr.x), len(val.x), time.monotonic() - t0
    )

    tf.keras.backend.clear_session()  # fresh layer names: same seed, same bytes
    tf.keras.utils.set_random_seed(st.seed)
    scale = 1.0 / max(float(np.std(tr.x)), 1e-9)
    model = build_model(grid.size, len(view.names), len(fam_labels), scale)
    losses = fit(model, tr.x, tr.y_substance, tr.y_family, st.epochs, st.batch_size)
    log.info(
        "trained %d epochs, final loss %.4f (%.1f s)", st.epochs, losses[-1], time.monotonic() - t0
    )
    k_sub, k_fam = keras_predict(model, val.x)
    log.info("keras validation top-1 %.4f", _accuracy(val, k_sub, k_fam)[0])

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        rep_idx = np.random.default_rng(st.seed + 2).permutation(len(tr.x))[:500]
        paths = export_tflite(model, grid.size, tmp, tr.x[rep_idx])
        variants: dict[str, VariantInfo] = {}
        for name, path in paths.items():
            variants[name] = VariantInfo(
                file=path.name,
                sha256=sha256_file(path),
                size_bytes=path.stat().st_size,
                input_dtype="int8" if name == "int8" else "float32",
                val_substance_accuracy=0.0,
                val_family_accuracy=0.0,
            )
        manifest = ModelManifest(
            model_version=model_version or datetime.now(UTC).strftime("%Y%m%d"),
            created=datetime.now(UTC).replace(microsecond=0).isoformat(),
            labels=view.names,
            family_labels=fam_labels,
            label_families=view.families,
            grid=GridSpec(
                start=float(grid[0]),
                stop=float(grid[-1]),
                step=float(grid[1] - grid[0]),
                n=grid.size,
            ),
            preprocessing=spec,
            library=LibraryRef(
                content_hash=view.content_hash, version=view.version, n_entries=len(view.names)
            ),
            outputs={"substance": SUBSTANCE, "family": FAMILY},
            output_kind="logits",
            input_name=INPUT,
            variants=variants,
            default_variant="float32",
            default_variant_reason="provisional",
            training=TrainingInfo(
                seed=st.seed,
                epochs=st.epochs,
                n_train=len(tr.x),
                n_val=len(val.x),
                seconds=0.0,
                tensorflow=str(tf.__version__),
            ),
        )
        save_manifest(manifest, tmp)

        # Evaluate the exported files through the device runtime (LiteRT), not Keras.
        results = {}
        for name in variants:
            clf = Classifier.load(tmp, name)  # type: ignore[arg-type]
            results[name] = clf.predict_batch(val.x)
        f_top = np.argmax(results["float32"][0], axis=1)
        final: dict[str, VariantInfo] = {}
        for name, info in variants.items():
            sub_p, fam_p = results[name]
            acc, fam_acc, _ = _accuracy(val, sub_p, fam_p)
            known = val.substance >= 0
            agree = float(np.mean(np.argmax(sub_p, axis=1)[known] == f_top[known]))
            final[name] = info.model_copy(
                update={
                    "val_substance_accuracy": round(acc, 4),
                    "val_family_accuracy": round(fam_acc, 4),
                    "agreement_with_float32": None if name == "float32" else round(agree, 4),
                    "val_unknown_auroc": round(_unknown_auroc(val, sub_p), 4),
                }
            )
        default, reason = _choose_variant(final)
        f_sub, f_fam = results[default]
        _, _, analogue_fam = _accuracy(val, f_sub, f_fam)
        top = np.max(f_sub, axis=1)
        manifest = manifest.model_copy(
            update={
                "variants": final,
                "default_variant": default,
                "default_variant_reason": reason,
                "training": manifest.training.model_copy(
                    update={
                        "seconds": round(time.monotonic() - t0, 1),
                        "augmentation": aug.to_dict(),
                        "val_known_max_prob_p50": _median(top[val.kind == "known"]),
                        "val_unknown_max_prob_p50": _median(top[val.kind == "unknown"]),
                        "val_analogue_family_accuracy": round(analogue_fam, 4),
                    }
                ),
            }
        )
        ModelManifest.model_validate(json.loads(manifest.model_dump_json()))  # re-check
        save_manifest(manifest, tmp)
        os.chmod(tmp, 0o755)
        replace_dir(tmp, out_dir)  # fsync, swap, rollback on failure
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _accuracy(val: Samples, sub_p: np.ndarray, fam_p: np.ndarray) -> tuple[float, float, float]:
    """(substance top-1 on known, family top-1 on known, family top-1 on analogues)."""
    known = val.substance >= 0
    acc = float(np.mean(np.argmax(sub_p[known], axis=1) == val.substance[known]))
    fam_acc = float(np.mean(np.argmax(fam_p[known], axis=1) == val.family[known]))
    ana = val.kind == "analogue"
    ana_acc = float(np.mean(np.argmax(fam_p[ana], axis=1) == val.family[ana])) if ana.any() else 0.0
    return acc, fam_acc, ana_acc


def _unknown_auroc(val: Samples, sub_p: np.ndarray) -> float:
    """P(top probability of a known spectrum > that of an analogue/unknown); ties count half."""
    top = np.max(sub_p, axis=1)
    pos, neg = top[val.substance >= 0], top[val.substance < 0]
    if not pos.size or not neg.size:
        return 0.0
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def _median(v: np.ndarray) -> float | None:
    return round(float(np.median(v)), 4) if v.size else None


def _choose_variant(variants: dict[str, VariantInfo]) -> tuple[str, str]:
    """int8 unless it loses more than INT8_MAX_ACCURACY_LOSS of validation top-1 or of the
    known-vs-unknown AUROC against float32 (no-match decisions rest on that separation)."""
    f, q = variants["float32"], variants["int8"]
    loss = f.val_substance_accuracy - q.val_substance_accuracy
    auroc_loss = (f.val_unknown_auroc or 0.0) - (q.val_unknown_auroc or 0.0)
    sizes = f"{q.size_bytes / 1024:.0f} KiB vs {f.size_bytes / 1024:.0f} KiB"
    figures = (
        f"validation top-1 {q.val_substance_accuracy:.4f} vs {f.val_substance_accuracy:.4f}, "
        f"known-vs-unknown AUROC {q.val_unknown_auroc} vs {f.val_unknown_auroc}, "
        f"top-1 agreement {q.agreement_with_float32}"
    )
    if loss <= INT8_MAX_ACCURACY_LOSS and auroc_loss <= INT8_MAX_ACCURACY_LOSS:
        return "int8", (
            f"int8 stays within {INT8_MAX_ACCURACY_LOSS:.0%} of float32 ({figures}) at about a "
            f"quarter of the size ({sizes}); full-integer kernels are the fast path on the "
            "Pi's ARM cores"
        )
    return "float32", (
        f"int8 loses more than {INT8_MAX_ACCURACY_LOSS:.0%} against float32 ({figures}); "
        "the classifier costs well under a millisecond either way, so accuracy wins"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Train as the parsed arguments say; prints a summary; returns the exit status."""
    from edge.library.format import load_library

    library = load_library(args.library)
    settings = TrainSettings(
        epochs=args.epochs,
        per_substance=args.per_substance,
        analogues_per_family=args.analogues_per_family,
        unknowns=args.unknowns,
        val_per_substance=args.val_per_substance,
        seed=args.seed,
    )
    m = train(library, args.output, settings, model_version=args.model_version)
    print(f"wrote {args.output}: {len(m.labels)} substances, {len(m.family_labels)} families")
    for name, v in m.variants.items():
        print(
            f"  {name:8s} {v.file} {v.size_bytes} bytes  val top-1 {v.val_substance_accuracy:.4f}"
            f"  family {v.val_family_accuracy:.4f}"
        )
    print(f"  device variant: {m.default_variant} ({m.default_variant_reason})")
    print(f"  training took {m.training.seconds:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/train_model.py``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args = build_arg_parser().parse_args(argv)
    try:
        return run_from_args(args)
    except SpectraEdgeError as err:
        print(f"train_model: error: {err}", file=sys.stderr)
        return 1
