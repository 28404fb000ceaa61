"""The one command line of spectra-edge: ``spectra-edge SUBCOMMAND ...``.

Each group of subcommands lives in its own module under :mod:`edge.cli` and exposes
``register(subparsers, common)``; follow a subcommand's name to its module to find the
behaviour behind it. Errors from the one exception tree become a clear message on stderr
and exit status 1; bad usage exits 2 (argparse).

Start-up matters (a technician types these on a Pi): the command modules import only the
standard library at module level, and each handler imports what it needs when it runs, so
``--help`` and ``config validate`` load neither numpy nor scipy nor paho
(``tests/unit/test_cli_imports.py`` checks it; ``bench/bench_startup.py`` measures it).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from spectra_io.errors import SpectraEdgeError

#: Modules that add subcommands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "edge.cli.config_cmd",  # config validate | show
    "edge.cli.instrument_cmd",  # probe, acquire
    "edge.cli.library_cmd",  # library build | info | add | remove | export
    "edge.cli.identify_cmd",  # identify, scan, evaluate
    "edge.cli.train_cmd",  # train
    "edge.cli.service_cmd",  # run, outbox, export, monitor
    "edge.cli.console_cmd",  # console, console-user (needs the console extra)
    "edge.cli.ota_cmd",  # ota repo init | add | sign | rotate | list | serve; ota apply | ...
)


class _VersionAction(argparse.Action):
    """``--version``: reads the installed version only when asked (importlib.metadata)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from edge import __version__

        print(f"spectra-edge {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file (default: $SPECTRA_EDGE_CONFIG, else the shipped default)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    parser = argparse.ArgumentParser(
        prog="spectra-edge",
        description="Chemical identification appliance: instrument, identification, MQTT.",
        parents=[common],
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spectra-edge`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except SpectraEdgeError as err:
        print(f"spectra-edge {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
