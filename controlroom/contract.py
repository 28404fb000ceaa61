"""Fast checks of incoming messages against the contract's JSON Schemas.

The schemas are ``edge/publish/schemas/*.json`` (:func:`edge.publish.messages.schema`).
``jsonschema`` interprets them at about 500 us per result on the development VM, a quarter
of the ingest budget; ``fastjsonschema`` compiles them to Python (about 30 us). The schemas
use only keywords that draft 7 and 2020-12 share (a unit test checks that both libraries
agree on valid and broken payloads).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema

from edge.publish import messages


class ContractViolation(ValueError):
    """A payload that does not match its schema; ``where`` is the JSON path."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@cache
def _compiled(kind: str) -> Callable[[Any], Any]:
    validator: Callable[[Any], Any] = fastjsonschema.compile(messages.schema(kind))
    return validator


def check(kind: str, payload: Any) -> None:
    """Raise :class:`ContractViolation` when *payload* does not match *kind*'s schema."""
    try:
        _compiled(kind)(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        path = "/".join(str(p) for p in (err.path or [])[1:]) or "(message)"
        raise ContractViolation(path, err.message) from None
