"""Subcommands of the service group: run, outbox, export, monitor (see COMMAND_MODULES).

``register`` calls one small helper per command so each part can be added on its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from edge.cli.common import config_from_args


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's subcommands."""
    _register_outbox(sub, common)


# -- outbox status | flush ------------------------------------------------------------------


def _register_outbox(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "outbox",
        parents=[common],
        help="durable outbox of results: status, flush",
        description="Inspect or deliver the durable outbox of results waiting for the broker.",
    )
    osub = p.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    st = osub.add_parser("status", parents=[common], help="what waits in the outbox")
    st.set_defaults(handler=_outbox_status)
    fl = osub.add_parser("flush", parents=[common], help="deliver everything queued (bounded wait)")
    fl.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="longest wait in seconds (default: outbox.flush_timeout_s)",
    )
    fl.set_defaults(handler=_outbox_flush)


def _age(created: float | None) -> str:
    if created is None:
        return "-"
    seconds = max(0.0, time.time() - created)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _outbox_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from edge.publish.delivery import open_outbox

    cfg = config_from_args(args)
    with open_outbox(cfg) as outbox:
        stats = outbox.stats()
    table = Table(title="spectra-edge outbox", show_header=True)
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("file", stats.path)
    table.add_row("waiting", str(stats.waiting))
    table.add_row("alarms waiting", str(stats.alarms_waiting))
    table.add_row("oldest waiting", _age(stats.oldest_created))
    table.add_row("dropped (outbox full)", str(stats.dropped))
    table.add_row("delivered (total)", str(stats.delivered))
    table.add_row("bound", str(stats.max_messages))
    table.add_row("next seq", str(stats.next_seq))
    Console().print(table)
    return 0


def _outbox_flush(args: argparse.Namespace) -> int:
    from edge.publish.delivery import flush_outbox

    cfg = config_from_args(args)
    report = flush_outbox(cfg, args.timeout)
    where = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    if not report.connected:
        print(
            f"outbox flush: broker {where} not reached; {report.stats.waiting} message(s) "
            "stay queued",
            file=sys.stderr,
        )
        return 1
    print(
        f"outbox flush: delivered {report.delivered}, {report.stats.waiting} still waiting",
        file=sys.stderr,
    )
    return 0 if report.stats.waiting == 0 else 1
