"""Subcommands of ``spectra-edge ota``: the publisher's repository and the device's updater.

Publisher (a technician's laptop, the laboratory, release engineering)::

    ota repo init REPO | add REPO FILE_OR_DIR --kind ... | sign REPO | rotate REPO ROLE
    ota repo list REPO | serve REPO [--port 8080]

Device (run as root; the service itself never writes its own code)::

    ota trust ROOT.json | apply SOURCE [--target NAME] | status | rollback | recover
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from edge.cli.common import config_from_args


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``ota`` group."""
    p = sub.add_parser(
        "ota",
        parents=[common],
        help="signed over-the-air updates: publish (repo ...) and install (apply, status, ...)",
        description="Over-the-air updates with The Update Framework (see edge/ota/).",
    )
    osub = p.add_subparsers(dest="ota_command", metavar="ACTION", required=True)
    _register_repo(osub, common)
    t = osub.add_parser("trust", parents=[common], help="install the repository's root metadata")
    t.add_argument("root_json", type=Path, metavar="ROOT.json")
    t.set_defaults(handler=_trust)
    a = osub.add_parser("apply", parents=[common], help="install updates from SOURCE")
    a.add_argument("source", help="repository directory (USB stick) or http(s) URL")
    a.add_argument("--target", action="append", metavar="NAME", help="only this target")
    a.set_defaults(handler=_apply)
    rq = osub.add_parser(
        "run-request",
        parents=[common],
        help="apply the update the service was asked for (cmd/update; run by the path unit)",
    )
    rq.set_defaults(handler=_run_request)
    s = osub.add_parser("status", parents=[common], help="state, versions, floor, expiry")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=_status)
    r = osub.add_parser("rollback", parents=[common], help="go back to the previous release")
    r.add_argument("--data", action="store_true", help="the data release (default: the app)")
    r.set_defaults(handler=_rollback)
    rc = osub.add_parser(
        "recover", parents=[common], help="finish or undo an interrupted update (at boot)"
    )
    rc.set_defaults(handler=_recover)
    pv = osub.add_parser(
        "provision", parents=[common], help="first data release from the shipped library/model"
    )
    pv.set_defaults(handler=_provision)


def _register_repo(osub: Any, common: argparse.ArgumentParser) -> None:
    p = osub.add_parser("repo", parents=[common], help="the publisher's TUF repository")
    rsub = p.add_subparsers(dest="repo_command", metavar="ACTION", required=True)
    i = rsub.add_parser("init", parents=[common], help="create keys and signed metadata")
    i.add_argument("repo", type=Path)
    i.add_argument("--root-keys", type=int, default=3, help="number of root keys (default 3)")
    i.add_argument("--threshold", type=int, default=2, help="root signatures needed (2)")
    i.set_defaults(handler=_repo_init)
    a = rsub.add_parser("add", parents=[common], help="add a wheel or a library/model directory")
    a.add_argument("repo", type=Path)
    a.add_argument("artifact", type=Path, help="spectra_edge-*.whl, or a library/model dir")
    a.add_argument("--kind", choices=["app", "library", "model"], required=True)
    a.add_argument("--version", help="data only; default: the directory's manifest")
    a.add_argument("--wheelhouse", type=Path, help="app: dependency wheels to ship along")
    a.add_argument("--requires-app", metavar="SPEC", help="data: app versions, e.g. '>=0.1'")
    a.add_argument(
        "--selftest-library", type=Path, metavar="LIB", help="draw the self-test from LIB"
    )
    a.set_defaults(handler=_repo_add)
    s = rsub.add_parser("sign", parents=[common], help="re-sign roles (timestamp, snapshot...)")
    s.add_argument("repo", type=Path)
    s.add_argument("--role", action="append", help="also re-sign this role (root, targets...)")
    s.set_defaults(handler=_repo_sign)
    r = rsub.add_parser("rotate", parents=[common], help="replace a role's keys")
    r.add_argument("repo", type=Path)
    r.add_argument("role", choices=["root", "targets", "snapshot", "timestamp", "app", "data"])
    r.set_defaults(handler=_repo_rotate)
    ls = rsub.add_parser("list", parents=[common], help="targets in the repository")
    ls.add_argument("repo", type=Path)
    ls.set_defaults(handler=_repo_list)
    sv = rsub.add_parser("serve", parents=[common], help="serve public/ over HTTP")
    sv.add_argument("repo", type=Path)
    sv.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    sv.add_argument("--port", type=int, default=8080)
    sv.set_defaults(handler=_repo_serve)


def _repo_init(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository

    repo = Repository(args.repo)
    repo.init(args.root_keys, args.threshold)
    print(
        f"repository in {args.repo}: keys in keys/ (move the root keys offline), "
        f"metadata in public/metadata/; give devices {repo.metadata_dir / '1.root.json'}"
    )
    return 0


def _repo_add(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository
    from edge.ota.targets import pack_app, pack_data

    repo = Repository(args.repo)
    with tempfile.TemporaryDirectory(prefix="ota-pack-") as tmp:
        out = Path(tmp) / "target.tar"
        if args.kind == "app":
            meta = pack_app(args.artifact, out, args.wheelhouse)
        else:
            meta = pack_data(
                args.kind,
                args.artifact,
                out,
                version=args.version,
                requires_app=args.requires_app,
                selftest_library=args.selftest_library,
            )
        name = repo.add(out, meta)
    print(
        f"added {name} ({meta.kind} {meta.version}); signed {meta.kind} role, snapshot, timestamp"
    )
    return 0


def _repo_sign(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository

    Repository(args.repo).sign(args.role)
    print(f"re-signed {', '.join([*(args.role or []), 'snapshot', 'timestamp'])}")
    return 0


def _repo_rotate(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository

    keyids = Repository(args.repo).rotate(args.role)
    print(f"{args.role}: new key(s) {', '.join(k[:16] for k in keyids)}; old ones in keys/retired/")
    return 0


def _repo_list(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository

    for name, doc in sorted(Repository(args.repo).list_targets().items()):
        print(f"{name}  {json.dumps(doc, sort_keys=True)}")
    return 0


def _repo_serve(args: argparse.Namespace) -> int:
    from edge.ota.repo import Repository, serve

    server = serve(Repository(args.repo), args.host, args.port)
    host, port = server.server_address[:2]
    where = f"http://{host!s}:{port}/"
    print(f"serving {args.repo / 'public'} on {where} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _updater(args: argparse.Namespace) -> Any:
    from edge.ota.updater import Updater

    return Updater(config_from_args(args), progress=lambda m: print(f"ota: {m}", flush=True))


def _trust(args: argparse.Namespace) -> int:
    _updater(args).trust(args.root_json)
    print(f"trusted root metadata installed from {args.root_json}")
    return 0


def _apply(args: argparse.Namespace) -> int:
    outcome = _updater(args).apply(args.source, args.target)
    if outcome.done:
        print(f"committed: {'; '.join(outcome.done)}")
    else:
        print("up to date: nothing newer in the repository")
    print(f"installed: {json.dumps(outcome.installed, sort_keys=True)}")
    return 0


def _run_request(args: argparse.Namespace) -> int:
    from edge.errors import UpdateError
    from edge.ota import trial
    from edge.ota.request import take_request

    cfg = config_from_args(args)
    try:
        request = take_request(cfg.device.data_dir.expanduser())
    except UpdateError as err:  # refused before anything was fetched: say so in ota/state
        trial.write_state(cfg.ota.root, "failed", reason=str(err), code=err.reason)
        raise
    if request is None:
        print("no update request waiting")
        return 0
    print(f"update request {request.id} from {request.repository} ({request.target or 'newest'})")
    outcome = _updater(args).apply(request.repository, [request.target] if request.target else None)
    print(f"{'committed: ' + '; '.join(outcome.done) if outcome.done else 'up to date'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _updater(args).status()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    state = status["state"]
    print(
        f"state:     {state.get('state')}  {state.get('version') or ''}  "
        f"{state.get('reason') or ''}  ({state.get('time', '-')})"
    )
    print(f"installed: {json.dumps(status['installed'], sort_keys=True)}")
    print(f"floor:     {json.dumps(status['floor'], sort_keys=True)}")
    print(f"trial:     {json.dumps(status['trial'])}")
    for role, expires in sorted(status["metadata_expires"].items()):
        print(f"expires:   {role:<10} {expires}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    state = _updater(args).rollback("data" if args.data else "app")
    print(f"rolled back: now {state.get('version')}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    outcome = _updater(args).recover()
    print(outcome or "nothing to recover")
    return 0


def _provision(args: argparse.Namespace) -> int:
    from edge.ota.layout import Layout
    from edge.ota.provision import provision_data
    from edge.shipped import packaged_models_dir

    cfg = config_from_args(args)
    final = provision_data(Layout(cfg.ota.root), packaged_models_dir())
    print(f"data release in use: {final}")
    return 0
