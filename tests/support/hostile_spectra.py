"""Hostile spectrum files of a chosen size, and a child process that measures reading one.

Each maker writes a file of about ``size`` bytes (under :data:`spectra_io.MAX_FILE_BYTES` when
asked) built to make a naive reader allocate far more than the file: one enormous AFFN line,
millions of short lines, DIF chains, DUP bombs, thousands of blocks or labels, long comments,
deeply nested numbers in JSON, thousands of keys. :func:`measure_read` reads a file in a fresh
Python process and returns its peak resident memory (VmHWM) above the process's own baseline
(imports done, before reading) and the time taken; the benchmark and the tests share it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

_HEAD = (
    "##TITLE=hostile\n##JCAMP-DX=4.24\n##DATA TYPE=INFRARED SPECTRUM\n##XUNITS=1/CM\n"
    "##YUNITS=ABSORBANCE\n##XFACTOR=1\n##YFACTOR=1\n"
)
_MILLION = "##FIRSTX=1\n##LASTX=1000000\n##NPOINTS=1000000\n"
_CHUNK = 1 << 20


def _fill(path: Path, head: str, unit: str, size: int, tail: str = "") -> None:
    """*head*, then *unit* repeated up to about *size* bytes, then *tail*."""
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write(head)
        left = max(0, size - len(head) - len(tail))
        block = unit * max(1, _CHUNK // len(unit))
        while left >= len(block):
            fh.write(block)
            left -= len(block)
        fh.write(unit * (left // len(unit)))
        fh.write(tail)


def affn_one_line(path: Path, size: int) -> None:
    """All ordinates on one XYDATA line (millions of AFFN tokens)."""
    _fill(path, _HEAD + _MILLION + "##XYDATA=(X++(Y..Y))\n1", " 1", size, "\n##END=\n")


def affn_long_lines(path: Path, size: int) -> None:
    """XYDATA lines of 64 KiB each, far more ordinates than NPOINTS."""
    line = "1" + " 1" * 32768 + "\n"
    _fill(path, _HEAD + _MILLION + "##XYDATA=(X++(Y..Y))\n", line, size, "##END=\n")


def short_lines(path: Path, size: int) -> None:
    """Millions of two-byte continuation lines under one label."""
    _fill(path, _HEAD + "##$NOTE=x\n", "a\n", size, "##END=\n")


def blank_lines(path: Path, size: int) -> None:
    """A spectrum followed by millions of empty lines."""
    _fill(path, _HEAD + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(Y..Y))\n1 1 1\n",
          "\n", size, "##END=\n")  # fmt: skip


def comment_lines(path: Path, size: int) -> None:
    """Millions of ``$$`` comment lines."""
    _fill(path, _HEAD, "$$ c\n", size, "##END=\n")


def long_comment(path: Path, size: int) -> None:
    """One ``$$`` comment as long as the file."""
    _fill(path, _HEAD + "$$", "c", size, "\n##END=\n")


def dif_chain(path: Path, size: int) -> None:
    """One XYDATA line holding a DIF chain of millions of differences."""
    _fill(path, _HEAD + _MILLION + "##XYDATA=(X++(Y..Y))\n1 @", "J", size, "\n##END=\n")


def dup_lines(path: Path, size: int) -> None:
    """Every line a DUP count that expands to (almost) the point limit."""
    _fill(path, _HEAD + _MILLION + "##XYDATA=(X++(Y..Y))\n", "1 @S99999\n", size, "##END=\n")


def many_blocks(path: Path, size: int) -> None:
    """Hundreds of thousands of empty blocks (a LINK file gone wild)."""
    _fill(path, "##TITLE=link\n##BLOCKS=1\n", "##TITLE=a\n##END=\n", size, "##END=\n")


def nested_blocks(path: Path, size: int) -> None:
    """Blocks opened and never closed."""
    _fill(path, "", "##TITLE=a\n", size)


def many_labels(path: Path, size: int) -> None:
    """Millions of distinct labels in one block."""
    with open(path, "w", encoding="ascii") as fh:
        fh.write(_HEAD)
        written, i = len(_HEAD), 0
        while written < size - 16:
            line = f"##$L{i}=v\n"
            fh.write(line)
            written += len(line)
            i += 1
        fh.write("##END=\n")


def xypoints_many(path: Path, size: int) -> None:
    """Millions of XYPOINTS pairs."""
    _fill(path, _HEAD + "##XYPOINTS=(XY..XY)\n", "1,1;", size, "\n##END=\n")


def json_many_keys(path: Path, size: int) -> None:
    """One JSON object with millions of keys."""
    with open(path, "w", encoding="ascii") as fh:
        fh.write("{")
        written, i = 1, 0
        while written < size - 16:
            item = f'"k{i}":0,'
            fh.write(item)
            written += len(item)
            i += 1
        fh.write('"k":0}')


def json_long_list(path: Path, size: int) -> None:
    """A record whose ``y`` is millions of numbers long."""
    head = '{"name":"a","spectrum":{"firstX":400,"lastX":4000,"y":[0'
    _fill(path, head, ",0.5", size, "]}}")


def json_deep(path: Path, size: int) -> None:
    """Lists nested as deep as the file allows."""
    depth = size // 2
    _fill(path, "", "[", depth)
    with open(path, "a", encoding="ascii") as fh:
        fh.write("]" * depth)


def csv_many_comments(path: Path, size: int) -> None:
    """Millions of ``# key: value`` metadata lines before the header."""
    with open(path, "w", encoding="ascii") as fh:
        written, i = 0, 0
        while written < size - 40:
            line = f"# k{i}: v\n"
            fh.write(line)
            written += len(line)
            i += 1
        fh.write("wavenumber_cm-1,absorbance\n1,1\n2,1\n")


def csv_many_rows(path: Path, size: int) -> None:
    """Far more rows than the point limit."""
    _fill(path, "wavenumber_cm-1,absorbance\n", "1,1\n", size)


def affn_million(path: Path, size: int) -> None:
    """A valid spectrum of the most points allowed (AFFN, ten per line), padded with comment
    lines to about *size*: the largest thing a reader must return."""
    n = 1_000_000
    with open(path, "w", encoding="ascii") as fh:
        fh.write(_HEAD.replace("YFACTOR=1", "YFACTOR=0.0001") + _MILLION)
        fh.write("##XYDATA=(X++(Y..Y))\n")
        for i in range(0, n, 10):
            ys = " ".join(str(1000 + (j * 7919) % 5000) for j in range(i, i + 10))
            fh.write(f"{i + 1} {ys}\n")
        fh.write("##END=\n")
        pad = size - fh.tell()
        line = "$$" + "p" * 65534 + "\n"
        while pad >= len(line):
            fh.write(line)
            pad -= len(line)


def dup_million(path: Path, size: int) -> None:
    """A valid spectrum of the most points allowed in a few bytes (one DUP count): the
    largest expansion a tiny file may ask for (*size* is ignored)."""
    del size
    path.write_text(_HEAD + _MILLION + "##XYDATA=(X++(Y..Y))\n1 @S000000\n##END=\n")


#: Name -> (maker, file extension).
MAKERS: dict[str, tuple[Callable[[Path, int], None], str]] = {
    "affn_one_line": (affn_one_line, ".jdx"),
    "affn_long_lines": (affn_long_lines, ".jdx"),
    "short_lines": (short_lines, ".jdx"),
    "blank_lines": (blank_lines, ".jdx"),
    "comment_lines": (comment_lines, ".jdx"),
    "long_comment": (long_comment, ".jdx"),
    "dif_chain": (dif_chain, ".jdx"),
    "dup_lines": (dup_lines, ".jdx"),
    "many_blocks": (many_blocks, ".jdx"),
    "nested_blocks": (nested_blocks, ".jdx"),
    "many_labels": (many_labels, ".jdx"),
    "xypoints_many": (xypoints_many, ".jdx"),
    "json_many_keys": (json_many_keys, ".json"),
    "json_long_list": (json_long_list, ".json"),
    "json_deep": (json_deep, ".json"),
    "csv_many_comments": (csv_many_comments, ".csv"),
    "csv_many_rows": (csv_many_rows, ".csv"),
    "affn_million": (affn_million, ".jdx"),
    "dup_million": (dup_million, ".jdx"),
}
#: The ones that are valid spectra (read, not refused).
VALID = ("affn_million", "dup_million")
JCAMP_MAKERS = [name for name, (_, ext) in MAKERS.items() if ext == ".jdx"]


def make(name: str, directory: Path, size: int) -> Path:
    """Write the hostile file *name* of about *size* bytes in *directory*; its path."""
    maker, ext = MAKERS[name]
    path = directory / f"{name}{ext}"
    maker(path, size)
    return path


def normal_jcamp(path: Path, points: int = 3600) -> None:
    """A plain, valid AFFN JCAMP-DX file of *points* ordinates (the baseline of a ratio)."""
    lines = [
        "##TITLE=normal", "##JCAMP-DX=4.24", "##DATA TYPE=INFRARED SPECTRUM",
        "##XUNITS=1/CM", "##YUNITS=ABSORBANCE", "##XFACTOR=1", "##YFACTOR=0.0001",
        "##FIRSTX=400", f"##LASTX={400 + points - 1}", f"##NPOINTS={points}",
        "##XYDATA=(X++(Y..Y))",
    ]  # fmt: skip
    for i in range(0, points, 10):
        ys = " ".join(str(1000 + (j * 37) % 900) for j in range(i, min(i + 10, points)))
        lines.append(f"{400 + i} {ys}")
    lines.append("##END=")
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Measurement:
    """One read in a fresh process: outcome and its cost."""

    outcome: str  # "ok", "SpectrumFileError" or another exception's class name
    message: str
    seconds: float
    peak_bytes: int  # VmHWM after the read minus VmHWM before it
    baseline_bytes: int  # VmHWM of the process before the read (interpreter, numpy, spectra_io)
    timed_out: bool = False

    @property
    def peak_total_bytes(self) -> int:
        return self.baseline_bytes + self.peak_bytes


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0
    import numpy, spectra_io
    from spectra_io import read_spectrum, read_json_records
    if len(sys.argv) > 2:  # an address-space cap protects the machine from a runaway read
        size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status")
                    if l.startswith("VmSize:"))
        limit = size + int(sys.argv[2])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    path = sys.argv[1]
    base = hwm()
    t0 = time.perf_counter()
    try:
        if path.endswith(".json"):
            read_json_records(path)
        else:
            read_spectrum(path)
        outcome, message = "ok", ""
    except BaseException as err:
        outcome, message = type(err).__name__, str(err)[:300]
    seconds = time.perf_counter() - t0
    print(json.dumps({"outcome": outcome, "message": message, "seconds": seconds,
                      "peak": hwm() - base, "base": base}))
    """
)


def measure_read(path: Path, timeout: float = 600.0, headroom: int | None = None) -> Measurement:
    """Read *path* with :mod:`spectra_io` in a fresh process; its outcome, time and peak memory.

    *headroom* (bytes) caps the address space the read may add (a runaway read then fails
    with MemoryError instead of taking the machine); *timeout* is the deadline of the read.
    """
    env = dict(os.environ, PYTHONPATH=str(PROJECT), OPENBLAS_NUM_THREADS="1")
    args = [sys.executable, "-c", _CHILD, str(path)]
    if headroom is not None:
        args.append(str(headroom))
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Measurement("timeout", f"no answer within {timeout:g} s", timeout, 0, 0, True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return Measurement("crash", proc.stderr.strip()[-300:], 0.0, 0, 0)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measurement(got["outcome"], got["message"], got["seconds"], got["peak"], got["base"])
