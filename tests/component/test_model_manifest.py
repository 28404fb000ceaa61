"""The model manifest: schema validation, loading errors, and the check against a library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from paths import PROJECT

from edge.errors import ModelError
from edge.identify.classifier import sha256_file
from edge.identify.manifest import (
    MANIFEST_NAME,
    ModelManifest,
    check_against_library,
    grid_matches,
    load_manifest,
)
from edge.library.format import load_library
from edge.preprocess.chain import spec_grid, validate_spec
from spectra_io.sealed import seal

ROOT = PROJECT
SHIPPED_MODEL = ROOT / "models" / "model"
SHIPPED_LIBRARY = ROOT / "models" / "library"


def test_shipped_model_matches_shipped_library() -> None:
    manifest = load_manifest(SHIPPED_MODEL)
    library = load_library(SHIPPED_LIBRARY)
    check_against_library(manifest, library)  # raises on mismatch
    assert manifest.library.content_hash == library.content_hash
    assert manifest.labels == [e.name for e in library.entries]
    assert manifest.library.n_entries == len(library)


def test_shipped_model_files_match_manifest_hashes_and_are_small() -> None:
    manifest = load_manifest(SHIPPED_MODEL)
    assert set(manifest.variants) == {"float32", "int8"}
    for info in manifest.variants.values():
        path = SHIPPED_MODEL / info.file
        assert sha256_file(path) == info.sha256
        assert path.stat().st_size == info.size_bytes < 1_000_000


def test_shipped_model_grid_and_spec_are_the_pipeline_ones() -> None:
    manifest = load_manifest(SHIPPED_MODEL)
    spec = validate_spec(manifest.preprocessing)
    assert grid_matches(manifest, spec_grid(spec))
    library = load_library(SHIPPED_LIBRARY)
    assert grid_matches(manifest, library.grid)


def test_shipped_model_families_cover_every_label() -> None:
    manifest = load_manifest(SHIPPED_MODEL)
    library = load_library(SHIPPED_LIBRARY)
    for name, fam in zip(manifest.labels, manifest.label_families, strict=True):
        e = library.entry(name)
        assert fam == (e.family if e.category == "narcotic" else e.category)


def _copy_model(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, dst)
    return dst


def _edit(model_dir: Path, **changes: object) -> None:
    """Change the manifest as a careful tool would: re-sealed, so its validators judge it."""
    path = model_dir / MANIFEST_NAME
    doc = json.loads(path.read_text())
    doc.update(changes)
    _write_sealed(model_dir, doc)


def _write_sealed(model_dir: Path, doc: dict[str, object]) -> None:
    (model_dir / MANIFEST_NAME).write_text(json.dumps(seal(doc)))


def test_library_hash_mismatch_raises(tmp_path: Path) -> None:
    model_dir = _copy_model(tmp_path)
    doc = json.loads((model_dir / MANIFEST_NAME).read_text())
    doc["library"]["content_hash"] = "0" * 64
    _write_sealed(model_dir, doc)
    with pytest.raises(ModelError, match="retrain"):
        check_against_library(load_manifest(model_dir), load_library(SHIPPED_LIBRARY))


def test_label_mismatch_raises_even_with_same_hash(tmp_path: Path) -> None:
    model_dir = _copy_model(tmp_path)
    doc = json.loads((model_dir / MANIFEST_NAME).read_text())
    doc["labels"] = list(reversed(doc["labels"]))
    doc["label_families"] = list(reversed(doc["label_families"]))
    _write_sealed(model_dir, doc)
    with pytest.raises(ModelError, match="labels"):
        check_against_library(load_manifest(model_dir), load_library(SHIPPED_LIBRARY))


def test_missing_manifest_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load_manifest(tmp_path)


def test_malformed_json_raises(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="invalid"):
        load_manifest(tmp_path)


@pytest.mark.parametrize(
    "changes",
    [
        {"unexpected_key": 1},
        {"default_variant": "float16"},
        {"labels": ["a", "a"]},
        {"label_families": ["opioid"]},
        {"format_version": 99},
    ],
)
def test_invalid_manifest_content_raises(tmp_path: Path, changes: dict[str, object]) -> None:
    model_dir = _copy_model(tmp_path)
    _edit(model_dir, **changes)
    with pytest.raises(ModelError, match="invalid model manifest"):
        load_manifest(model_dir)


def test_inconsistent_grid_rejected() -> None:
    doc = json.loads((SHIPPED_MODEL / MANIFEST_NAME).read_text())
    doc["grid"]["n"] += 1
    with pytest.raises(ValueError, match="points"):
        ModelManifest.model_validate(doc)


def test_family_not_in_family_labels_rejected() -> None:
    doc = json.loads((SHIPPED_MODEL / MANIFEST_NAME).read_text())
    doc["label_families"][0] = "no-such-family"
    with pytest.raises(ValueError, match="not in family_labels"):
        ModelManifest.model_validate(doc)


def test_a_tampered_manifest_is_refused_and_a_flip_in_the_library_too(tmp_path: Path) -> None:
    """Finding 7 of issue 8: swapping two family labels in the manifest was accepted."""
    import json
    import shutil

    from edge.errors import LibraryError
    from edge.library import load_library

    model = tmp_path / "model"
    shutil.copytree(ROOT / "models" / "model", model)
    doc = json.loads((model / "manifest.json").read_text())
    doc["family_labels"][0], doc["family_labels"][1] = (
        doc["family_labels"][1],
        doc["family_labels"][0],
    )
    (model / "manifest.json").write_text(json.dumps(doc, indent=2))
    with pytest.raises(ModelError, match="damaged or edited"):
        load_manifest(model)
    del doc["manifest_sha256"]
    (model / "manifest.json").write_text(json.dumps(doc, indent=2))
    with pytest.raises(ModelError, match="no manifest_sha256"):
        load_manifest(model)

    library = tmp_path / "library"
    shutil.copytree(ROOT / "models" / "library", library)
    manifest = library / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"start": 650.0', '"start": 654.0'))  # a shifted grid
    with pytest.raises(LibraryError, match="damaged or edited"):
        load_library(library)
    manifest.write_text(text)
    raw = bytearray((library / "spectra.npy").read_bytes())
    for i in range(128):  # every bit of the .npy header: a clean error or the same data
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[i] ^= 1 << bit
            (library / "spectra.npy").write_bytes(bytes(damaged))
            try:
                lib = load_library(library)
            except LibraryError:
                continue
            assert lib.content_hash == load_library(ROOT / "models" / "library").content_hash
    (library / "spectra.npy").write_bytes(bytes(raw))
    assert load_library(library).name
