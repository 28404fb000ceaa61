"""Bounded reading of a text spectrum file: checked before parsing, then streamed line by line.

:class:`TextFile` checks the whole file at C speed before any parser allocates: a regular
file, at most :data:`MAX_FILE_BYTES`, not empty, no NUL byte, at most :data:`MAX_LINES` lines,
and UTF-8 (else read as Latin-1, which decodes anything). :meth:`TextFile.lines` then yields
one line at a time, each at most :data:`MAX_LINE_CHARS` long, so a reader's memory is bounded
by what it keeps, never by the file's shape. Line breaks and numbering are those of
:meth:`str.splitlines` (``\\n``, ``\\r\\n``, ``\\r``, form feed ...).
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from spectra_io.errors import SpectrumFileError

#: Files larger than this are refused before reading (bytes).
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Spectra with more points than this are refused (an ATR spectrum has a few thousand).
MAX_POINTS = 1_000_000
#: More lines than this and a file is refused before parsing (one point per line and a
#: header; counted at C speed, it bounds the time of every line-based reader).
MAX_LINES = MAX_POINTS + 10_000
#: A longer line is refused (JCAMP-DX asks for 80 characters; CSV rows are short).
MAX_LINE_CHARS = 1 << 20

_CHUNK = 1 << 20
_NOT_BLANK = re.compile(rb"\S")
#: Line boundaries :meth:`str.splitlines` knows beyond the ones universal newlines handle.
_RARE_BREAKS = re.compile("(?<=[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])")
#: Bytes that may encode one of them (UTF-8 or Latin-1); a hit only means "split carefully".
_RARE_BREAK_BYTES = re.compile(b"[\x0b\x0c\x1c\x1d\x1e\x85]|\xe2\x80[\xa8\xa9]")


class TextFile:
    """A spectrum text file that passed the checks; iterate :meth:`lines` (more than once)."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = str(path)
        self.size, self.line_count, self.encoding, self.rare_breaks = _check(Path(path), max_bytes)

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(line number, text)`` for each line; the text may end with ``"\\n"``."""
        try:
            with open(self.path, encoding=self.encoding, newline=None) as fh:
                if self.rare_breaks:
                    yield from self._split_lines(fh)
                    return
                readline, limit, no = fh.readline, MAX_LINE_CHARS + 1, 0
                while raw := readline(limit):
                    no += 1
                    if raw[-1] != "\n" and len(raw) > MAX_LINE_CHARS:
                        raise SpectrumFileError(
                            self.path, f"line longer than {MAX_LINE_CHARS} characters", no
                        )
                    yield no, raw
        except OSError as err:
            raise SpectrumFileError(self.path, f"cannot read: {err.strerror or err}") from err

    def _split_lines(self, fh: TextIO) -> Iterator[tuple[int, str]]:
        """:meth:`lines` for a file holding form feeds and other rare line breaks."""
        no = 0
        while raw := fh.readline(MAX_LINE_CHARS + 1):
            if raw[-1] != "\n" and len(raw) > MAX_LINE_CHARS:
                raise SpectrumFileError(
                    self.path, f"line longer than {MAX_LINE_CHARS} characters", no + 1
                )
            for part in _RARE_BREAKS.split(raw):
                if not part:
                    continue
                no += 1
                if no > MAX_LINES:
                    raise SpectrumFileError(self.path, f"more than {MAX_LINES} lines", no)
                yield no, part

    def text(self) -> str:
        """The whole text (for formats that are not line-based, such as JSON)."""
        try:
            with open(self.path, encoding=self.encoding, newline="") as fh:
                return fh.read()
        except OSError as err:
            raise SpectrumFileError(self.path, f"cannot read: {err.strerror or err}") from err


def _check(path: Path, max_bytes: int) -> tuple[int, int, str, bool]:
    """(size, line count, encoding, rare line breaks?) of *path*, or :class:`SpectrumFileError`."""
    p = str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SpectrumFileError(p, "not a regular file")
        if size > max_bytes:
            raise SpectrumFileError(p, f"file is {size} bytes, more than the limit of {max_bytes}")
        utf8 = codecs.getincrementaldecoder("utf-8")()
        is_utf8, blank, lf, cr, first, rare = True, True, 0, 0, True, False
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                if b"\x00" in chunk:
                    raise SpectrumFileError(
                        p, "binary file (contains NUL bytes), not a text spectrum"
                    )
                if first and chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8) :]
                first = False
                blank = blank and _NOT_BLANK.search(chunk) is None
                rare = rare or _RARE_BREAK_BYTES.search(chunk) is not None
                lf += chunk.count(b"\n")
                cr += chunk.count(b"\r")
                if max(lf, cr) > MAX_LINES:
                    raise SpectrumFileError(p, f"more than {MAX_LINES} lines")
                if is_utf8:
                    try:
                        utf8.decode(chunk)
                    except UnicodeDecodeError:
                        is_utf8 = False
            if is_utf8:
                try:
                    utf8.decode(b"", final=True)
                except UnicodeDecodeError:
                    is_utf8 = False
    except FileNotFoundError as err:
        raise SpectrumFileError(p, "no such file") from err
    except OSError as err:
        raise SpectrumFileError(p, f"cannot read: {err.strerror or err}") from err
    if blank:
        raise SpectrumFileError(p, "file is empty")
    return size, max(lf, cr), "utf-8-sig" if is_utf8 else "latin-1", rare
