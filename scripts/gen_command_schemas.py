"""Write the request schemas of the remote commands from their pydantic models.

The models in ``edge/service/commands/contract.py`` are the source of the command contract;
``edge/publish/schemas/cmd-<name>-request.json`` are generated from them, one per command of
the registry. Run after changing a model; ``--check`` only reports files that differ (exit
1), which is what the test suite does too.

    .venv/bin/python scripts/gen_command_schemas.py [--check]
"""

from __future__ import annotations

import argparse
import sys

from edge.service.commands.contract import (
    COMMANDS,
    request_schema_path,
    request_schema_text,
)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) every command's request schema; exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = ap.parse_args(argv)
    stale = []
    for name in COMMANDS:
        path = request_schema_path(name)
        text = request_schema_text(name)
        current = path.read_text("utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, "utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        for path in stale:
            print(f"out of date: {path} (run scripts/gen_command_schemas.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
