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
    _register_run(sub, common)
    _register_outbox(sub, common)
    _register_export(sub, common)
    _register_monitor(sub, common)
    _register_demo(sub, common)


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


# -- run | export | monitor | demo (edge.service, edge.store.archive, controlroom.monitor) --


def _register_run(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the appliance service (what systemd starts)",
        description="Instrument + panel -> identification -> archive -> outbox -> MQTT, with "
        "remote commands and periodic health. Logs to stdout; SIGTERM stops it cleanly.",
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from edge.service.run import run_service, setup_logging

    cfg = config_from_args(args)
    setup_logging(cfg)
    if getattr(args, "verbose", False):
        import logging

        logging.getLogger().setLevel(logging.DEBUG)
    return run_service(cfg)


def _register_export(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="write an archived scan's spectrum to JCAMP-DX or CSV",
        description="Export one scan from the local archive (by scan id) for a chemist.",
    )
    p.add_argument("scan_id", metavar="SCAN_ID", nargs="?", help="scan to export")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="output file, .jdx or .csv (default SCAN_ID.jdx)"
    )
    p.add_argument(
        "--what",
        choices=("spectrum", "sample", "background", "dark"),
        default="spectrum",
        help="processed absorbance (default) or one of the raw single beams",
    )
    p.add_argument("--list", action="store_true", help="list archived scans instead")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.store.archive import Archive

    cfg = config_from_args(args)
    with Archive.from_config(cfg) as archive:
        if args.list or not args.scan_id:
            if not args.list:
                print("export: give a SCAN_ID (or --list)", file=sys.stderr)
                return 2
            for s in archive.list(limit=50):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.created))
                print(f"{s.scan_id}  {when}Z  {s.status or '-':<10} {s.reference or ''}")
            return 0
        out = Path(args.output or f"{args.scan_id}.jdx")
        archive.export(args.scan_id, out, what=args.what)
    print(f"export: scan {args.scan_id} ({args.what}) written to {out}", file=sys.stderr)
    return 0


def _register_monitor(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "monitor",
        parents=[common],
        help="control-room view of every device under a prefix",
        description="Live terminal view of all devices under a topic prefix: status, last "
        "result, alarms, health. Signatures are checked against each device's pinned key "
        "(trust on first use, kept in --keys); a changed key is shown and never trusted.",
    )
    p.add_argument(
        "--keys",
        metavar="FILE",
        help="pinned device keys (default: $XDG_DATA_HOME/spectra-edge/monitor-keys.json)",
    )
    p.add_argument(
        "--repin",
        metavar="PREFIX",
        action="append",
        default=[],
        help="forget PREFIX's pinned key first, so its next info is pinned (a device that "
        "really got a new key); repeatable",
    )
    p.add_argument("--host", help="broker host (default: mqtt.host)")
    p.add_argument("--port", type=int, help="broker port (default: mqtt.port)")
    p.add_argument(
        "--prefix",
        help="device prefix with wildcards (default: mqtt.prefix with + for post and device)",
    )
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (with --once: collect S)"
    )
    p.set_defaults(handler=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from controlroom.monitor import run_monitor
    from controlroom.pins import KeyPins, default_pins_path

    cfg = config_from_args(args)
    prefix = args.prefix or cfg.mqtt.prefix.replace("{post}", "+").replace("{device}", "+")
    pins = KeyPins(Path(args.keys) if args.keys else default_pins_path())
    for device in args.repin:
        found = pins.forget(device)
        print(
            f"monitor: {'forgot the pinned key of' if found else 'no key was pinned for'} "
            f"{device}; its next info is pinned ({pins.path})",
            file=sys.stderr,
        )
    run_monitor(
        args.host or cfg.mqtt.host,
        args.port or cfg.mqtt.port,
        prefix,
        duration_s=args.duration,
        once=args.once,
        pins=pins,
    )
    return 0


def _register_demo(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="run the service with a simulated officer and show results from the broker",
        description="What `make demo` runs: the service on the configuration (default: the "
        "embedded one), a scripted officer pressing the mock scan button, and a control-room "
        "subscriber printing each result as it arrives. Exit 0 only if all arrived.",
    )
    p.add_argument("--host", help="broker host (default: mqtt.host)")
    p.add_argument("--port", type=int, help="broker port (default: mqtt.port)")
    p.add_argument("--count", type=int, metavar="N", help="scan only the first N samples")
    p.add_argument(
        "--timeout", type=float, default=180.0, metavar="S", help="give up after S seconds"
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="keep the demo's data here (default: a temp dir)"
    )
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.service.demo import run_demo

    cfg = config_from_args(args)
    mqtt = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if mqtt:
        cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update=mqtt)})
    return run_demo(
        cfg,
        count=args.count,
        timeout_s=args.timeout,
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
