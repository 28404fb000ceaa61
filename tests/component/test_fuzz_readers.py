"""Fuzz test of the spectrum readers: a seeded mutator over valid JCAMP-DX, CSV and JSON files.

Every input must give a valid SpectrumRecord or a SpectrumFileError — no other exception, no
hang (a deadline per input) and no blow-up (Python-level peak allocation per input, numpy
arrays included, measured with tracemalloc). The default run is 800 inputs and takes about
half a minute; ``SPECTRA_EDGE_FUZZ_INPUTS`` and ``SPECTRA_EDGE_FUZZ_SEED`` make it longer
or different.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from paths import TEST_DATA

from spectra_io import SpectrumRecord, csv_text, read_json_records, read_spectrum
from spectra_io.errors import SpectrumFileError

pytestmark = pytest.mark.component

INPUTS = int(os.environ.get("SPECTRA_EDGE_FUZZ_INPUTS", "800"))
SEED = int(os.environ.get("SPECTRA_EDGE_FUZZ_SEED", "8"))
#: Per input: a hang guard (inputs read in milliseconds) and a memory bound.
DEADLINE_S = 10.0
MB = 1024 * 1024
LARGEST_SPECTRUM = 64 * MB  # what the largest legal spectrum may cost, as in test_parser_memory

ALPHABET = b'0123456789+-.,;:% @AaEeJjSsZz?#$=\n\r\t\x0c\x00\xff"[]{}'
HOSTILE_NUMBERS = [
    "1" * 400, "9e999", "-9e999", "1e-400", "NaN", "Infinity", "0", "-0", "999999999",
    "1000000", "1000001", "1e300", "", "--1", "1.2.3", "0x10",
]  # fmt: skip
NUMBER = re.compile(rb"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


class Deadline(Exception):
    """An input took longer than :data:`DEADLINE_S`."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Deadline

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _seeds() -> list[tuple[str, bytes]]:
    """(extension, content) of valid files: the JCAMP-DX test files, generated CSV and JSON."""
    jcamp = TEST_DATA / "jcamp"
    out = [
        (".jdx", p.read_bytes())
        for p in sorted([*jcamp.glob("*.jdx"), *(jcamp / "public").glob("*.jdx")])
        if not p.name.startswith(("bad_", "peak_table"))
    ]
    rng = np.random.default_rng(0)
    x = np.linspace(650.0, 4000.0, 300)
    y = 50 + 40 * np.sin(x / 150) + rng.normal(0, 0.1, x.size)
    rec = SpectrumRecord(x, y, "percent_transmittance", "fuzz", {"cas": "50-36-2"})
    out.append((".csv", csv_text(rec).encode()))
    out.append((".csv", csv_text(rec, metadata=False).replace(",", ";").encode()))
    record = {
        "name": "fuzz",
        "aliases": ["f", "z"],
        "category": "stimulants",
        "spectrum": {"firstX": 650.0, "lastX": 4000.0, "y": [round(v, 3) for v in y]},
    }
    out.append((".json", json.dumps(record).encode()))
    out.append((".json", json.dumps([record, record | {"name": "two"}], indent=1).encode()))
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three random mutations of *data*."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 8))
        i = int(rng.integers(0, max(len(out), 1)))
        if op == 0:  # replace, insert or delete one byte
            c = ALPHABET[int(rng.integers(0, len(ALPHABET)))]
            k = int(rng.integers(0, 3))
            if k == 0 and out:
                out[min(i, len(out) - 1)] = c
            elif k == 1:
                out.insert(i, c)
            elif out:
                del out[min(i, len(out) - 1)]
        elif op == 1:  # repeat one line many times
            lines = bytes(out).split(b"\n")
            j = int(rng.integers(0, len(lines)))
            lines[j:j] = [lines[j]] * int(rng.choice([2, 50, 3000]))
            out = bytearray(b"\n".join(lines))
        elif op == 2:  # drop or swap lines
            lines = bytes(out).split(b"\n")
            j, k = (int(v) for v in rng.integers(0, len(lines), 2))
            if rng.random() < 0.5:
                del lines[j]
            else:
                lines[j], lines[k] = lines[k], lines[j]
            out = bytearray(b"\n".join(lines))
        elif op == 3:  # a number becomes a hostile one
            numbers = list(NUMBER.finditer(out))
            if numbers:
                m = numbers[int(rng.integers(0, len(numbers)))]
                new = HOSTILE_NUMBERS[int(rng.integers(0, len(HOSTILE_NUMBERS)))].encode()
                out[m.start() : m.end()] = new
        elif op == 4:  # a DUP count or a DIF chain
            piece = [b"S99999", b"s9999999", b"S0", b"J" * 5000, b"%" * 300, b"SS"][
                int(rng.integers(0, 6))
            ]
            out[i:i] = piece
        elif op == 5:  # truncate
            del out[i:]
        elif op == 6:  # nest or widen JSON, or open LINK blocks
            piece = [b"[" * 40, b"]" * 40, b'{"k":' * 30, b"##TITLE=x\n" * 10, b"##END=\n"][
                int(rng.integers(0, 5))
            ]
            out[i:i] = piece
        else:  # a very long line
            out[i:i] = b"1 " * int(rng.choice([1000, 30_000]))
    return bytes(out)


def _read(path: Path) -> list[SpectrumRecord]:
    if path.suffix == ".json":
        return read_json_records(path)
    return [read_spectrum(path)]


def _check_one(path: Path, outcomes: Counter[str]) -> None:
    size = path.stat().st_size
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    try:
        with deadline(DEADLINE_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = _read(path)
    except SpectrumFileError as err:
        assert err.path == str(path), err
        outcomes["SpectrumFileError"] += 1
    except Deadline:
        pytest.fail(f"no answer within {DEADLINE_S} s for {path.read_bytes()[:300]!r}")
    else:
        outcomes["record"] += 1
        for rec in records:
            assert isinstance(rec, SpectrumRecord) and len(rec) >= 2
            assert np.all(np.isfinite(rec.x)) and np.all(np.isfinite(rec.y))
            assert np.all(np.diff(rec.x) > 0) and rec.x[0] > 0
    peak = tracemalloc.get_traced_memory()[1] - start
    bound = max(10 * size, LARGEST_SPECTRUM)
    assert peak <= bound, f"{peak / MB:.1f} MB for a {size} byte input (bound {bound / MB:.0f})"


@pytest.fixture()
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def test_every_mutated_input_is_a_record_or_a_spectrum_file_error(
    tmp_path: Path, traced: None
) -> None:
    rng = np.random.default_rng(SEED)
    seeds = _seeds()
    outcomes: Counter[str] = Counter()
    for n in range(INPUTS):
        ext, data = seeds[n % len(seeds)]
        path = tmp_path / f"in{n % 7}{ext}"
        path.write_bytes(_mutate(data, rng))
        _check_one(path, outcomes)
    assert sum(outcomes.values()) == INPUTS
    # the mutator must exercise both sides, or it tests nothing
    assert outcomes["record"] > INPUTS // 20 and outcomes["SpectrumFileError"] > INPUTS // 4


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.replace(b"##NPOINTS=12", b"##NPOINTS=1000000"),
        lambda d: d.replace(b"\n4000", b"\n4000 @S000000"),
        lambda d: d.replace(b"##XYDATA", b"##TITLE=x\n" * 5000 + b"##XYDATA"),
        lambda d: d.replace(b"\n4000", b"\n4000 " + b"1 " * 600_000),
    ],
)
def test_single_hostile_edits_of_a_valid_file(
    tmp_path: Path, traced: None, mutation: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "edit.jdx"
    path.write_bytes(mutation((TEST_DATA / "jcamp" / "hand_affn.jdx").read_bytes()))
    outcomes: Counter[str] = Counter()
    _check_one(path, outcomes)
    assert outcomes["SpectrumFileError"] == 1
