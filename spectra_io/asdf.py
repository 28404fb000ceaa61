"""Decoding one JCAMP-DX data line: AFFN, PAC and the compressed ASDF forms (SQZ, DIF, DUP).

JCAMP-DX 4.24 / 5.01 ("ASCII squeezed difference form"), per character::

    AFFN/PAC  1234 -56 +7.5E+01   digits, '.', sign as separator, exponent 'E' + sign + digits
    SQZ       @ A-I  a-i          absolute value whose first digit (0, 1..9, -1..-9) is a letter
    DIF       % J-R  j-r          difference to the previous value, first digit as a letter
    DUP       S-Z s               repeat count (1..9 first digit) of the previous token
                                  (a repeated DIF repeats the difference)

'E' or 'e' counts as an exponent only right after an AFFN number and when followed by a sign
and a digit; otherwise it is the SQZ digit +5 / -5. ``?`` (missing value) is refused.

Bounded: tokens are produced one at a time (:func:`iter_tokens`) and :func:`expand` stops as
soon as a line would hold more values than its caller allows, before allocating them; a DUP
count must follow a value (not another count) and is checked against that limit before it is
expanded, so the work per line is proportional to the values it yields.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

_SQZ = {"@": 0, **{c: i + 1 for i, c in enumerate("ABCDEFGHI")}}
_SQZ.update({c: -(i + 1) for i, c in enumerate("abcdefghi")})
_DIF = {"%": 0, **{c: i + 1 for i, c in enumerate("JKLMNOPQR")}}
_DIF.update({c: -(i + 1) for i, c in enumerate("jklmnopqr")})
_DUP = {**{c: i + 1 for i, c in enumerate("STUVWXYZ")}, "s": 9}
#: A repeat count with more digits than this exceeds any point limit.
_MAX_DUP_DIGITS = 9

_EXP = r"(?:[Ee][+-][0-9][0-9.]*)?"
_TOKEN = re.compile(
    r"[ \t,;]*(?:"
    rf"(?P<affn>[+-][0-9.]*{_EXP}|[0-9.]+{_EXP})"
    r"|(?P<sqz>[@A-Ia-i][0-9.]*)"
    r"|(?P<dif>[%J-Rj-r][0-9.]*)"
    r"|(?P<dup>[S-Zs][0-9.]*)"
    r"|(?P<bad>[^ \t,;]))",
    re.DOTALL,
)

Kind = Literal["abs", "dif", "dup"]


class Token(NamedTuple):
    """One value of a data line: an absolute value, a difference or a repeat count."""

    kind: Kind
    value: float


class TooManyValues(ValueError):
    """A line expands to more values than the caller allows (``dup``: by a repeat count)."""

    def __init__(self, message: str, dup: bool = False) -> None:
        super().__init__(message)
        self.dup = dup


def iter_tokens(line: str) -> Iterator[Token]:
    """The tokens of a data line, one at a time; ``ValueError`` names a bad character."""
    for m in _TOKEN.finditer(line):
        group = m.lastgroup
        text = m.group(group) if group else ""
        column = m.start(group) + 1 if group else 0
        if group == "affn":
            try:
                yield Token("abs", float(text))
            except ValueError:
                raise ValueError(f"bad number {text[:40]!r} at column {column}") from None
        elif group == "sqz" or group == "dif":
            d = _SQZ[text[0]] if group == "sqz" else _DIF[text[0]]
            try:
                value = float(("-" if d < 0 else "") + str(abs(d)) + text[1:])
            except ValueError:
                raise ValueError(f"bad number {text[:40]!r} at column {column}") from None
            yield Token("abs" if group == "sqz" else "dif", value)
        elif group == "dup":
            digits = str(_DUP[text[0]]) + text[1:]
            if not digits.isdigit():
                raise ValueError(f"bad repeat count {text[:40]!r} at column {column}")
            if len(digits) > _MAX_DUP_DIGITS:
                digits = "9" * (_MAX_DUP_DIGITS + 1)  # beyond any limit; int() stays cheap
            yield Token("dup", float(int(digits)))
        elif text == "?":
            raise ValueError(f"missing value '?' at column {column}")
        else:
            raise ValueError(f"unexpected character {text!r} at column {column}")


_PLAIN = re.compile(r"[0-9. \t]*")
#: Lines longer than this always take the token path (its memory does not grow with the line).
_PLAIN_MAX_CHARS = 4096


def plain_affn(line: str, limit: int) -> tuple[float, array[float], bool] | None:
    """Fast path for the commonest line, unsigned AFFN numbers separated by blanks:
    (abscissa, ordinates, False); None when the line is anything else (or long)."""
    if len(line) > _PLAIN_MAX_CHARS or not _PLAIN.fullmatch(line):
        return None
    fields = line.split()
    if len(fields) - 1 > limit:
        raise TooManyValues(f"the line holds more than {limit} ordinates")
    try:
        numbers = array("d", map(float, fields))
    except ValueError:
        return None  # '1.2.3' and the like: let the token path name the bad number
    if not numbers:
        return None
    return numbers[0], numbers[1:], False


def tokenize(line: str) -> list[Token]:
    """All tokens of a (short) data line; raises ``ValueError`` naming the bad character."""
    return list(iter_tokens(line))


def expand(tokens: Iterable[Token], limit: int) -> tuple[array[float], bool]:
    """Ordinates of ``tokens`` (no abscissa), and whether the last one was in DIF form.

    ``limit`` caps how many values the line may expand to: :class:`TooManyValues` is raised
    before going past it (a hostile DUP count or an endless line); a DUP count with no value
    before it, or right after another DUP count, is a ``ValueError``.
    """
    values: array[float] = array("d")
    last: Kind | None = None
    previous: Kind | None = None
    last_dif = 0.0
    for tok in tokens:
        if tok.kind == "dup":
            if last is None:
                raise ValueError("DUP count with no value before it")
            if previous == "dup":
                raise ValueError("DUP count right after another DUP count")
            repeat = int(tok.value) - 1
            if repeat < 0:
                raise ValueError("DUP count of 0")
            if len(values) + repeat > limit:
                raise TooManyValues(
                    f"repeat count {int(tok.value)} exceeds the point limit", dup=True
                )
            if last == "dif":
                current = values[-1]
                for _ in range(repeat):
                    current += last_dif
                    values.append(current)
            else:
                values.extend(array("d", [values[-1]]) * repeat)
        else:
            if len(values) >= limit:
                raise TooManyValues(f"the line holds more than {limit} ordinates")
            if tok.kind == "abs":
                values.append(tok.value)
            else:
                if not values:
                    raise ValueError("DIF value with no ordinate before it on the line")
                last_dif = tok.value
                values.append(values[-1] + last_dif)
            last = tok.kind
        previous = tok.kind
    return values, last == "dif"
