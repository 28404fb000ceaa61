"""What an update target is: its kind, version and needs, and how it is packed.

Every target is a tar archive named ``<kind>/<kind>-<version>.tar`` in the repository; the
TUF metadata of each carries ``custom``::

    {"kind": "app" | "library" | "model", "version": "0.2.0", "requires_app": ">=0.1"}

``requires_app`` (data only) is a PEP 440 specifier the running app's version must satisfy.

* **app**: ``wheels/`` holding the app's wheel and the wheels of its dependencies, from which
  the device builds the release's venv offline.
* **library** / **model**: ``library/`` or ``model/`` (the directory as ``models/`` has it) and
  ``selftest/``: reference spectra with ``selftest.json`` naming what each must identify as.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from edge.errors import UpdateError

Kind = Literal["app", "library", "model"]
KINDS: tuple[Kind, ...] = ("app", "library", "model")
DATA_KINDS: tuple[Kind, ...] = ("library", "model")
#: Delegated TUF role that signs each kind.
ROLE_OF_KIND = {"app": "app", "library": "data", "model": "data"}
#: Reference spectra a generated self-test carries.
SELFTEST_SPECTRA = 6

_WHEEL = re.compile(r"^spectra_edge-(?P<version>[^-]+)-.*\.whl$")


@dataclass(frozen=True)
class TargetMeta:
    """The ``custom`` part of a target's TUF metadata."""

    kind: Kind
    version: str
    requires_app: str | None = None

    @classmethod
    def from_custom(cls, name: str, custom: Any) -> TargetMeta:
        """Parse and check a target's ``custom`` (raise ``bad_target``)."""
        if not isinstance(custom, dict) or custom.get("kind") not in KINDS:
            raise UpdateError("bad_target", f"{name}: no valid 'kind' in its metadata")
        meta = cls(custom["kind"], str(custom.get("version", "")), custom.get("requires_app"))
        try:
            Version(meta.version)
            if meta.requires_app is not None:
                SpecifierSet(meta.requires_app)
        except (InvalidVersion, InvalidSpecifier) as err:
            raise UpdateError("bad_target", f"{name}: {err}") from err
        return meta

    def to_custom(self) -> dict[str, Any]:
        """The ``custom`` object of the target's metadata."""
        doc: dict[str, Any] = {"kind": self.kind, "version": self.version}
        if self.requires_app is not None:
            doc["requires_app"] = self.requires_app
        return doc

    @property
    def parsed_version(self) -> Version:
        """The version, comparable."""
        return Version(self.version)

    def target_name(self) -> str:
        """The target's path in the repository."""
        stem = "spectra-edge" if self.kind == "app" else self.kind
        return f"{self.kind}/{stem}-{self.version}.tar"


def wheel_version(wheel: Path) -> str:
    """The version in a ``spectra_edge-<version>-...whl`` file name."""
    m = _WHEEL.match(wheel.name)
    if not m:
        raise UpdateError("bad_target", f"{wheel.name}: not a spectra_edge wheel")
    return m.group("version")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    _add_bytes(tar, name, path.read_bytes())


def pack_app(wheel: Path, out: Path, wheelhouse: Path | None = None) -> TargetMeta:
    """Pack the app *wheel* (and the wheels in *wheelhouse*) into the tar *out*."""
    meta = TargetMeta("app", wheel_version(wheel))
    with tarfile.open(out, "w") as tar:
        _add_file(tar, f"wheels/{wheel.name}", wheel)
        for dep in sorted(wheelhouse.glob("*.whl")) if wheelhouse else []:
            if not dep.name.startswith("spectra_edge-"):
                _add_file(tar, f"wheels/{dep.name}", dep)
    return meta


def data_version(kind: Kind, directory: Path) -> str:
    """The version a library or model directory's manifest declares."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UpdateError("bad_target", f"{directory}: no readable manifest.json") from err
    key = "version" if kind == "library" else "model_version"
    if not manifest.get(key):
        raise UpdateError("bad_target", f"{directory}/manifest.json has no {key!r}")
    return str(manifest[key])


def selftest_from_library(library_dir: Path, count: int = SELFTEST_SPECTRA) -> dict[str, bytes]:
    """Reference spectra (JCAMP-DX) drawn from a library, and the ``selftest.json`` naming them.

    Rows spread evenly over the library; each must identify as its own entry.
    """
    from edge.library import load_library
    from spectra_io import SpectrumRecord
    from spectra_io.jcamp_write import jcamp_text

    lib = load_library(library_dir)
    rows = np.unique(np.linspace(0, len(lib) - 1, min(count, len(lib))).astype(int))
    files: dict[str, bytes] = {}
    cases = []
    for i, row in enumerate(rows):
        name = f"{i:02d}.jdx"
        record = SpectrumRecord(
            np.asarray(lib.grid, dtype=float),
            np.asarray(lib.spectra[row], dtype=float),
            "absorbance",
            title=lib.entries[row].name,
        )
        files[name] = jcamp_text(record).encode("utf-8")
        cases.append({"file": name, "expect": lib.entries[row].name})
    files["selftest.json"] = json.dumps({"spectra": cases}, indent=2).encode("utf-8")
    return files


def pack_data(
    kind: Kind,
    directory: Path,
    out: Path,
    *,
    version: str | None = None,
    requires_app: str | None = None,
    selftest_library: Path | None = None,
) -> TargetMeta:
    """Pack a library or model *directory* and its self-test into the tar *out*.

    The self-test comes from ``directory/selftest/`` when present, else is drawn from
    *selftest_library* (default: the directory itself, for a library).
    """
    if kind not in DATA_KINDS:
        raise UpdateError("bad_target", f"{kind!r} is not a data kind")
    meta = TargetMeta(kind, version or data_version(kind, directory), requires_app)
    TargetMeta.from_custom(str(directory), meta.to_custom())
    own = directory / "selftest"
    if (own / "selftest.json").is_file():
        selftest = {p.name: p.read_bytes() for p in own.iterdir() if p.is_file()}
    else:
        source = selftest_library or (directory if kind == "library" else None)
        if source is None:
            raise UpdateError(
                "bad_target", "a model needs --selftest-library LIB (the library it was trained on)"
            )
        selftest = selftest_from_library(source)
    with tarfile.open(out, "w") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = path.relative_to(directory)
            if rel.parts[0] != "selftest" and not rel.name.startswith("._"):
                _add_file(tar, f"{kind}/{rel.as_posix()}", path)
        for name, data in sorted(selftest.items()):
            _add_bytes(tar, f"selftest/{name}", data)
    return meta
