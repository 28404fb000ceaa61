"""JSON documents sealed with the sha256 of their own content (manifests).

A manifest says what the files beside it mean: labels, grid, preprocessing, hashes. A flipped
bit or a hand edit in it would change what every answer means without any file hash noticing,
so the document carries ``manifest_sha256``: the sha256 of its canonical JSON (sorted keys, no
whitespace, UTF-8) without that member. This catches damage and careless edits; deliberate
tampering is kept out by the signed update channel (TUF), not by this seal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SEAL_KEY = "manifest_sha256"


def _digest(doc: dict[str, Any], key: str = SEAL_KEY) -> str:
    body = {k: v for k, v in doc.items() if k != key}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(doc: dict[str, Any], key: str = SEAL_KEY) -> dict[str, Any]:
    """*doc* with member *key* set to the digest of the rest."""
    out = {k: v for k, v in doc.items() if k != key}
    out[key] = _digest(out, key)
    return out


def seal_problem(doc: dict[str, Any], key: str = SEAL_KEY) -> str | None:
    """Why *doc*'s seal does not hold (missing, mismatch), or None when it does."""
    value = doc.get(key)
    if value is None:
        return f"it has no {key} (re-save it with the current tools)"
    if value != _digest(doc, key):
        return f"its {key} does not match its content: it was damaged or edited"
    return None
