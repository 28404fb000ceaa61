"""Files of the public JCAMP-DX test sets that ship in the ``jcamp`` package's source
distribution, read straight from the tarball.

``make test`` downloads that sdist into the virtualenv (``<venv>/sdist/``; never committed,
see tests/data/jcamp/public/PROVENANCE.md); ``SPECTRA_EDGE_JCAMP_SDIST`` may name another copy.
Every test here skips when it is absent.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import warnings
from pathlib import Path

import jcamp
import numpy as np
import pytest
from paths import TEST_DATA

from spectra_io import read_jcamp
from spectra_io.errors import SpectrumFileWarning

SDIST_NAME = "jcamp-1.3.2.tar.gz"
SDIST = Path(os.environ.get("SPECTRA_EDGE_JCAMP_SDIST", Path(sys.prefix) / "sdist" / SDIST_NAME))
ROOT = "jcamp-1.3.2/data/"

pytestmark = pytest.mark.skipif(
    not SDIST.is_file(), reason=f"{SDIST} absent (make test downloads it)"
)


def _extract(member: str, directory: Path) -> Path:
    with tarfile.open(SDIST) as tar:
        handle = tar.extractfile(ROOT + member)
        assert handle is not None
        data = handle.read()
    path = directory / Path(member).name
    path.write_bytes(data)
    return path


def test_official_specfile_is_read_like_the_jcamp_package_reads_it(tmp_path: Path) -> None:
    path = _extract("jcamp-dx.org_official_test_data/SPECFILE.DX", tmp_path)
    with pytest.warns(SpectrumFileWarning, match="closing Y-check line holds 0") as caught:
        rec = read_jcamp(path)
    assert caught[0].message.line == 107  # type: ignore[union-attr]
    assert len(rec) == 1801 and rec.y_units == "percent_transmittance"
    np.testing.assert_allclose(rec.x, np.arange(400.0, 4000.1, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = jcamp.readfile(str(path))  # prints its own X- and Y-check complaints
    np.testing.assert_allclose(rec.y, np.asarray(other["y"], float), rtol=1e-12)


@pytest.mark.parametrize("name", ["jtpolysd.jdx", "jtpolys.jdx"])
def test_committed_mcdonald_files_are_the_sdist_files(tmp_path: Path, name: str) -> None:
    path = _extract(f"Robert_J_Lancashire_test_data/{name}", tmp_path)
    committed = TEST_DATA / "jcamp" / "public" / name
    assert (
        hashlib.sha256(path.read_bytes()).digest()
        == hashlib.sha256(committed.read_bytes()).digest()
    )
