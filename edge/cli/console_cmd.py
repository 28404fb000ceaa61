"""Subcommands of the control room: ``console`` (web console + ingester), ``console-user``.

The control room needs the ``console`` extra (``pip install 'spectra-edge[console]'``); it
is imported only when one of these commands runs, so the device install stays lean.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from edge.cli.common import config_from_args
from edge.errors import EdgeError

EXTRA_HINT = "the control room needs the console extra: pip install 'spectra-edge[console]'"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's subcommands."""
    p = sub.add_parser(
        "console",
        parents=[common],
        help="the control room: web console and ingester of every device's results",
        description="Archive every result from every device under --filter into a database "
        "(SQLite in the data directory by default, or PostgreSQL through --db), and serve the "
        "web console (devices, live results, alarms, search, reports). Create the first user "
        "with `spectra-edge console-user`.",
    )
    p.add_argument("--db", metavar="URL", help="database URL (default: SQLite in data_dir)")
    p.add_argument("--mqtt-host", metavar="H", help="broker host (default: mqtt.host)")
    p.add_argument("--mqtt-port", metavar="P", type=int, help="broker port (default: mqtt.port)")
    p.add_argument("--port", metavar="HTTP_PORT", type=int, default=8080, help="web port (8080)")
    p.add_argument("--bind", metavar="ADDR", default="127.0.0.1", help="web address (127.0.0.1)")
    p.add_argument("--filter", default="customs/+/+", help="device prefixes to watch (customs/+/+)")
    p.add_argument("--share-group", default="spectra-console", help="MQTT share group name")
    p.add_argument("--client-id", help="MQTT client id of the ingester (keep it across restarts)")
    p.add_argument("--no-ingest", action="store_true", help="serve the web console only")
    p.add_argument("--no-web", action="store_true", help="run the ingester only")
    p.add_argument("--library", metavar="DIR", help="reference library for the scan plots")
    p.add_argument(
        "--secure-cookies", action="store_true", help="mark the session cookie Secure (TLS)"
    )
    p.set_defaults(handler=_console)

    u = sub.add_parser(
        "console-user",
        parents=[common],
        help="add a user to the control-room console",
        description="Add a console user. The password is read from the terminal, or from "
        "standard input with --password-stdin.",
    )
    u.add_argument("username")
    u.add_argument("--role", required=True, choices=("viewer", "operator", "supervisor", "admin"))
    u.add_argument("--db", metavar="URL", help="database URL (default: SQLite in data_dir)")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    u.set_defaults(handler=_console_user)


def _import_controlroom() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401

        import controlroom.service  # noqa: F401
    except ImportError as err:
        raise EdgeError(f"{EXTRA_HINT} ({err})") from err


def _db_url(args: argparse.Namespace) -> str:
    from controlroom.service import default_db_url

    if args.db:
        return str(args.db)
    cfg = config_from_args(args)
    return default_db_url(Path(cfg.device.data_dir))


def _console(args: argparse.Namespace) -> int:
    _import_controlroom()
    from controlroom.service import ConsoleSettings, run_console

    cfg = config_from_args(args)
    if args.no_ingest and args.no_web:
        print("console: --no-ingest and --no-web leave nothing to run", file=sys.stderr)
        return 2
    password = None
    if cfg.mqtt.username and cfg.mqtt.password_file:
        pw_path = Path(cfg.mqtt.password_file)
        if not pw_path.is_absolute():
            pw_path = Path(os.environ.get("CREDENTIALS_DIRECTORY", ".")) / pw_path
        password = pw_path.read_text().strip()
    settings = ConsoleSettings(
        db_url=_db_url(args),
        mqtt_host=args.mqtt_host or cfg.mqtt.host,
        mqtt_port=args.mqtt_port or cfg.mqtt.port,
        http_host=args.bind,
        http_port=args.port,
        filter=args.filter,
        share_group=args.share_group,
        client_id=args.client_id,
        ingest=not args.no_ingest,
        web=not args.no_web,
        library=Path(args.library) if args.library else cfg.identify.library,
        secure_cookies=args.secure_cookies,
        mqtt_username=cfg.mqtt.username,
        mqtt_password=password,
    )
    return run_console(settings)


def _console_user(args: argparse.Namespace) -> int:
    _import_controlroom()
    from controlroom.users_cli import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("console-user: the passwords differ", file=sys.stderr)
            return 1
    add_user(_db_url(args), args.username, password, args.role)
    print(f"console-user: {args.username} ({args.role}) added", file=sys.stderr)
    return 0
