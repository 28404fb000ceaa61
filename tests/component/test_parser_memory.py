"""Issue 8, finding 4: parser memory is bounded within the size cap.

Each hostile file of ``tests/support/hostile_spectra.py`` (one enormous AFFN line, millions of
short lines, DIF chains, DUP bombs, thousands of blocks and labels, long comments, JSON with
hundreds of thousands of keys, CSV with a million comment lines ...) is read in a fresh process
that reports its peak resident memory. Each must end in a record or a SpectrumFileError, within
a deadline, adding at most 10x the file size (or what the largest legal spectrum costs, for a
tiny file that may legally expand to a million points) and never taking the process above
200 MB. On the reader this replaced, the same files took 15-150x their size.
The figures at the size cap (48 MB) are the benchmark's: ``bench/bench_parsers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_spectra import MAKERS, VALID, make, measure_read

MB = 1024 * 1024
SIZE = 6 * MB
#: What reading the largest legal spectrum (1,000,000 points) may add, whatever the file size.
LARGEST_SPECTRUM = 64 * MB
#: A hang guard, not a speed target (reads take well under a second here).
DEADLINE_S = 120.0
#: A runaway read fails with MemoryError past this instead of taking the machine.
HEADROOM = 1024 * MB

pytestmark = pytest.mark.component

CASES = [name for name in MAKERS if name != "affn_million"]  # the benchmark reads that one


@pytest.mark.parametrize("name", CASES)
def test_hostile_file_is_refused_or_read_within_the_memory_bound(tmp_path: Path, name: str) -> None:
    path = make(name, tmp_path, SIZE)
    size = path.stat().st_size
    m = measure_read(path, timeout=DEADLINE_S, headroom=HEADROOM)
    assert not m.timed_out, f"{name}: no answer within {DEADLINE_S} s"
    expected = ("ok",) if name in VALID else ("ok", "SpectrumFileError")
    assert m.outcome in expected, f"{name}: {m.outcome}: {m.message}"
    bound = max(10 * size, LARGEST_SPECTRUM)
    assert m.peak_bytes <= bound, (
        f"{name}: the read added {m.peak_bytes / MB:.1f} MB for a {size / MB:.1f} MB file "
        f"(bound {bound / MB:.0f} MB)"
    )
    assert m.peak_total_bytes <= 200 * MB, f"{name}: process {m.peak_total_bytes / MB:.0f} MB"
