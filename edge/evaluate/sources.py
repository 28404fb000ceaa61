"""Leave-one-source-out queries: real cross-source variation, where a library has it.

A library may hold one material measured by several laboratories or instruments (the same
InChIKey or CAS number, else the same name before any parenthesised qualifier, from different
``source`` fields). Each such spectrum is then a real measurement of a library material on
another instrument: queried against the library without it, the right answer is one of the
material's other spectra; queried against the library without the whole material, it is a
real unknown with close relatives. Those queries calibrate the decision on variation between
sources rather than on simulated copies (:func:`edge.evaluate.runner.calibrate_library`).
"""

from __future__ import annotations

import re
from collections import defaultdict

from edge.evaluate.challenge import Query, family_of
from edge.library import Library, LibraryEntry

#: At most this many materials take part (each costs two searches per spectrum).
MAX_MATERIALS = 60


def material_key(entry: LibraryEntry) -> str:
    """What makes two entries the same material: InChIKey, else CAS, else the bare name."""
    inchi = str(entry.extra.get("inchikey") or "").strip()
    if inchi:
        return f"inchikey:{inchi.upper()}"
    if entry.cas:
        return f"cas:{entry.cas.strip()}"
    bare = re.sub(r"\s*[\(\[].*?[\)\]]\s*", " ", entry.name).strip().casefold()
    return f"name:{' '.join(bare.split())}"


def source_key(entry: LibraryEntry) -> str:
    """Which laboratory or instrument an entry came from (its ``source`` without the file)."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", entry.source).strip().casefold()


def material_groups(library: Library) -> list[list[int]]:
    """Rows of each material held from at least two sources (sorted, deterministic)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(library.entries):
        groups[material_key(e)].append(i)
    out = []
    for key in sorted(groups):
        rows = groups[key]
        if len({source_key(library.entries[r]) for r in rows}) >= 2:
            out.append(sorted(rows))
    return out[:MAX_MATERIALS]


def cross_source_queries(library: Library) -> list[tuple[tuple[int, ...], list[Query]]]:
    """``(library rows to search, queries)`` pairs, leave-one-source-out.

    For every spectrum of a multi-source material: a ``single`` query against the library
    without that spectrum (right: the material's other spectra) and an ``unknown`` query
    against the library without the material.
    """
    names = library.names()
    out: list[tuple[tuple[int, ...], list[Query]]] = []
    everything = set(range(len(library)))
    for rows in material_groups(library):
        for r in rows:
            x, y = library.measured(r)
            if x.size < 10:
                continue
            src = source_key(library.entries[r])
            others = [o for o in rows if source_key(library.entries[o]) != src]
            fam = family_of(library, r)
            single = Query(
                x,
                y,
                "single",
                (names[others[0]],),
                (1.0,),
                fam,
                accept=tuple(names[o] for o in others[1:]),
            )
            keep = tuple(sorted(everything - {o for o in rows if o not in others}))
            out.append((keep, [single]))
            unknown = Query(x, y, "unknown", (names[r],), (1.0,), fam)
            out.append((tuple(sorted(everything - set(rows))), [unknown]))
    return out
