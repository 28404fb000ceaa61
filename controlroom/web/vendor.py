"""Vendored front-end files with pinned SHA-256 (no node build step to run the console).

Pages load them with Subresource Integrity (``integrity="sha256-..."``), so a changed file is
refused by the browser; a unit test checks the files against these pins as well.
Sources: the ``htmx.org`` and ``htmx-ext-sse`` packages on npm (``dist/*.min.js``; htmx is
0BSD-licensed).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Final

STATIC = Path(__file__).with_name("static")

#: file name -> (package@version, sha256 hex)
VENDORED: Final = {
    "htmx-2.0.11.min.js": (
        "htmx.org@2.0.11",
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    ),
    "htmx-ext-sse-2.2.4.min.js": (
        "htmx-ext-sse@2.2.4",
        "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136",
    ),
}


def sri(name: str) -> str:
    """The Subresource Integrity value of vendored file *name*, from its pinned hash."""
    return "sha256-" + base64.b64encode(bytes.fromhex(VENDORED[name][1])).decode("ascii")


def mismatches() -> list[str]:
    """Vendored files whose content does not match the pin (empty when all is well)."""
    bad = []
    for name, (_src, digest) in VENDORED.items():
        path = STATIC / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad
