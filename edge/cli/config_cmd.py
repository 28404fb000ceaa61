"""``spectra-edge config validate FILE`` and ``spectra-edge config show``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge.cli.common import config_from_args
from edge.errors import ConfigError


def _validate(args: argparse.Namespace) -> int:
    from edge.config import load_config

    try:
        load_config(args.file)
    except ConfigError as err:
        if err.problems:
            print(f"{args.file}: invalid configuration", file=sys.stderr)
            for key, msg in err.problems:
                print(f"  {key}: {msg}", file=sys.stderr)
        else:
            print(str(err), file=sys.stderr)
        return 1
    print(f"{args.file}: OK")
    return 0


def _show(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    print(cfg.model_dump_json(indent=2))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``config`` command group."""
    p = sub.add_parser("config", parents=[common], help="validate or show configuration")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    v = cs.add_parser("validate", parents=[common], help="check a config file; exit 1 if bad")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(handler=_validate)
    s = cs.add_parser("show", parents=[common], help="print the effective configuration")
    s.set_defaults(handler=_show)
