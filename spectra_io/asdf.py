"""Decoding one JCAMP-DX data line: AFFN, PAC and the compressed ASDF forms (SQZ, DIF, DUP).

JCAMP-DX 4.24 / 5.01 ("ASCII squeezed difference form"), per character::

    AFFN/PAC  1234 -56 +7.5E+01   digits, '.', sign as separator, exponent 'E' + sign + digits
    SQZ       @ A-I  a-i          absolute value whose first digit (0, 1..9, -1..-9) is a letter
    DIF       % J-R  j-r          difference to the previous value, first digit as a letter
    DUP       S-Z s               repeat count (1..9 first digit) of the previous token
                                  (a repeated DIF repeats the difference)

'E' or 'e' counts as an exponent only right after an AFFN number and when followed by a sign
and a digit; otherwise it is the SQZ digit +5 / -5. ``?`` (missing value) is refused.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

_SQZ = {"@": 0, **{c: i + 1 for i, c in enumerate("ABCDEFGHI")}}
_SQZ.update({c: -(i + 1) for i, c in enumerate("abcdefghi")})
_DIF = {"%": 0, **{c: i + 1 for i, c in enumerate("JKLMNOPQR")}}
_DIF.update({c: -(i + 1) for i, c in enumerate("jklmnopqr")})
_DUP = {**{c: i + 1 for i, c in enumerate("STUVWXYZ")}, "s": 9}
_SEPARATORS = " \t,;"

Kind = Literal["abs", "dif", "dup"]


class Token(NamedTuple):
    """One value of a data line: an absolute value, a difference or a repeat count."""

    kind: Kind
    value: float


def _digits(line: str, i: int) -> int:
    """Index just past the run of digits and '.' starting at ``i``."""
    n = len(line)
    while i < n and (line[i].isdigit() or line[i] == "."):
        i += 1
    return i


def tokenize(line: str) -> list[Token]:
    """Split a data line into tokens; raises ``ValueError`` naming the bad character."""
    out: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in _SEPARATORS:
            i += 1
        elif c.isdigit() or c in "+-.":
            start = i
            i = _digits(line, i + 1 if c in "+-" else i)
            if i + 2 < n and line[i] in "Ee" and line[i + 1] in "+-" and line[i + 2].isdigit():
                i = _digits(line, i + 2)
            text = line[start:i]
            try:
                out.append(Token("abs", float(text)))
            except ValueError:
                raise ValueError(f"bad number {text!r} at column {start + 1}") from None
        elif c in _SQZ or c in _DIF:
            start = i
            i = _digits(line, i + 1)
            d = _SQZ[c] if c in _SQZ else _DIF[c]
            text = ("-" if d < 0 else "") + str(abs(d)) + line[start + 1 : i]
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"bad number {line[start:i]!r} at column {start + 1}") from None
            out.append(Token("abs" if c in _SQZ else "dif", value))
        elif c in _DUP:
            start = i
            i = _digits(line, i + 1)
            text = str(_DUP[c]) + line[start + 1 : i]
            if not text.isdigit():
                raise ValueError(f"bad repeat count {line[start:i]!r} at column {start + 1}")
            out.append(Token("dup", float(int(text))))
        elif c == "?":
            raise ValueError(f"missing value '?' at column {i + 1}")
        else:
            raise ValueError(f"unexpected character {c!r} at column {i + 1}")
    return out


def expand(tokens: list[Token], limit: int) -> tuple[list[float], bool]:
    """Ordinates of ``tokens`` (no abscissa), and whether the last one was in DIF form.

    ``limit`` caps how many values one line may expand to (a hostile DUP count).
    """
    values: list[float] = []
    last: Kind | None = None
    last_dif = 0.0
    for tok in tokens:
        if tok.kind == "abs":
            values.append(tok.value)
            last = "abs"
        elif tok.kind == "dif":
            if not values:
                raise ValueError("DIF value with no ordinate before it on the line")
            last_dif = tok.value
            values.append(values[-1] + last_dif)
            last = "dif"
        else:
            if last is None:
                raise ValueError("DUP count with no value before it")
            repeat = int(tok.value) - 1
            if repeat < 0:
                raise ValueError("DUP count of 0")
            if len(values) + repeat > limit:
                raise ValueError(f"repeat count {int(tok.value)} exceeds the point limit")
            for _ in range(repeat):
                values.append(values[-1] + last_dif if last == "dif" else values[-1])
    return values, last == "dif"
