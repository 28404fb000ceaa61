"""The device's updater: ``spectra-edge ota apply SOURCE | status | rollback | recover``.

One transaction per group of targets (the app; or the library and/or model):

1. free space is checked first;
2. TUF refreshes the metadata from SOURCE (directory or http(s) URL) and downloads each
   target through :class:`~edge.ota.fetcher.ResumableFetcher` (bounded, resumable);
3. verified: TUF checks signatures, expiry, versions, length and hashes; we check the
   target's kind, that it is not below the version floor and, for data, the app it needs;
4. unpacked into ``<release>.partial`` (:mod:`edge.ota.safe_tar`), an app's venv built
   offline from its wheels; fsynced, then renamed;
5. self-tested: the reference spectra shipped with the target identify as it says;
6. switched with one ``os.replace`` of ``current`` (deferred while a scan runs or an alarm
   is active: the service holds ``<data_dir>/switch.lock`` then);
7. the service is restarted (app) or reloads its identifier (data);
8. trial: healthy = the service is ready on the new release, the self-test passes and the
   outbox is writable, within ``ota.trial_timeout_s`` (never the broker);
9. committed (the floor rises, older releases are purged: current + previous are kept) or
   rolled back, with the reason in ``ota/state.json``.

Each step is recorded in ``ota/txn.json`` first, so :meth:`Updater.recover` (run at boot and
before every apply) finishes or undoes a transaction a power cut interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater as TufUpdater
from tuf.ngclient import UpdaterConfig

from edge import __version__
from edge.config.schema import Config
from edge.errors import UpdateError
from edge.ota import safe_tar, trial
from edge.ota.control import NoService, ServiceControl, SignalControl, SystemdControl
from edge.ota.fetcher import ResumableFetcher, source_urls
from edge.ota.layout import PARTIAL, Layout, data_release_id
from edge.ota.targets import DATA_KINDS, KINDS, TargetMeta

log = logging.getLogger(__name__)

#: Fault injection for the power-cut tests: SIGKILL the updater itself at this step.
KILL_AT_ENV = "SPECTRA_EDGE_OTA_KILL_AT"
#: Longest a venv build or a self-test may take, s.
SUBPROCESS_TIMEOUT_S = 600.0
#: How often the trial looks at the service, s.
TRIAL_POLL_S = 1.0
#: How many times the unpacked size of an archive a release may take on disk (a venv).
APP_UNPACK_FACTOR = 4
#: Name of the lock the service holds while scanning or while an alarm is active.
SWITCH_LOCK = "switch.lock"


@dataclass(frozen=True)
class Chosen:
    """A target picked for installation."""

    info: TargetFile
    meta: TargetMeta


@dataclass
class Outcome:
    """What an apply did: ``committed``, ``up_to_date`` (per group), the versions in use."""

    done: list[str]
    installed: dict[str, str | None]


def _kill_point(step: str) -> None:
    if os.environ.get(KILL_AT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _tuf_reason(err: Exception, fetcher: ResumableFetcher) -> tuple[str, str]:
    if isinstance(err, tuf_errors.ExpiredMetadataError):
        return "expired", str(err)
    if isinstance(err, tuf_errors.BadVersionNumberError):
        return "metadata_rollback", str(err)
    if isinstance(err, tuf_errors.UnsignedMetadataError):
        return "bad_signature", str(err)
    if isinstance(err, tuf_errors.LengthOrHashMismatchError):
        if fetcher.last_short is not None:
            got, want = fetcher.last_short
            return "truncated", f"download ended after {got} of {want} bytes"
        return "hash_mismatch", str(err)
    if isinstance(err, tuf_errors.DownloadLengthMismatchError):
        return "too_large", str(err)
    if isinstance(err, tuf_errors.RepositoryError):
        return "bad_signature", f"{type(err).__name__}: {err}"
    return "download_failed", f"{type(err).__name__}: {err}"


class Updater:
    """Applies, checks and undoes updates on one device (see the module doc)."""

    def __init__(
        self,
        cfg: Config,
        control: ServiceControl | None = None,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.layout = Layout(cfg.ota.root)
        self.service_data_dir = cfg.device.data_dir.expanduser()
        if control is None:
            if cfg.ota.service == "none":
                control = NoService()
            elif cfg.ota.service == "signal":
                control = SignalControl(self.service_data_dir)
            else:
                control = SystemdControl(cfg.ota.unit, self.service_data_dir)
        self.control = control
        self.progress = progress or (lambda _msg: None)

    # -- state ----------------------------------------------------------------------------
    def _state(self, state: str, **fields: Any) -> None:
        doc = trial.write_state(self.layout.root, state, **fields)
        self.progress(f"{state}: {doc.get('reason') or doc.get('version') or ''}".rstrip(": "))

    def _txn(self, **doc: Any) -> None:
        trial.write_json(self.layout.ota / "txn.json", doc)

    def status(self) -> dict[str, Any]:
        """Everything a technician asks first: state, versions, floor, trial, trust expiry."""
        expiry = {}
        for role in ("root", "timestamp", "snapshot", "targets", "app", "data"):
            doc = trial.read_json(self.layout.tuf_dir / f"{role}.json")
            if isinstance(doc, dict):
                expiry[role] = doc.get("signed", {}).get("expires")
        return {
            "state": trial.read_json(self.layout.ota / "state.json") or {"state": "idle"},
            "installed": self.layout.installed(),
            "floor": self.layout.floor(),
            "trial": trial.read_trial(self.layout.root),
            "metadata_expires": expiry,
            "history": self.layout.history(),
        }

    # -- trust ----------------------------------------------------------------------------
    def trust(self, root_json: Path) -> None:
        """Install the repository's root metadata as this device's root of trust."""
        from tuf.api.metadata import Metadata, Root

        md = Metadata[Root].from_bytes(root_json.read_bytes())
        if md.signed.type != "root":
            raise UpdateError("bad_signature", f"{root_json} is not root metadata")
        md.verify_delegate("root", md)  # self-signed by a threshold of its own keys
        self.layout.tuf_dir.mkdir(parents=True, exist_ok=True)
        trial.write_json(self.layout.tuf_dir / "root.json", json.loads(root_json.read_bytes()))

    def _tuf(self, source: str, fetcher: ResumableFetcher) -> TufUpdater:
        if not (self.layout.tuf_dir / "root.json").is_file():
            raise UpdateError(
                "bad_signature", f"no trusted root in {self.layout.tuf_dir} (run ota trust)"
            )
        metadata_url, targets_url = source_urls(source)
        return TufUpdater(
            str(self.layout.tuf_dir),
            metadata_url,
            str(self.layout.downloads),
            targets_url,
            fetcher=fetcher,
            config=UpdaterConfig(prefix_targets_with_hash=True),
            bootstrap=None,
        )

    # -- apply ----------------------------------------------------------------------------
    def apply(self, source: str, names: list[str] | None = None) -> Outcome:
        """Install what SOURCE offers beyond what runs (or exactly *names*); see module doc.

        Raises :class:`UpdateError` with the reason of a refusal, a failed self-test or a
        rollback; ``ota/state.json`` holds the same.
        """
        self.recover()
        self.layout.downloads.mkdir(parents=True, exist_ok=True)
        fetcher = ResumableFetcher(self.layout.downloads)
        done: list[str] = []
        try:
            self._state("downloading", source=source, reason=None)
            tuf = self._tuf(source, fetcher)
            try:
                tuf.refresh()
            except Exception as err:
                raise UpdateError(*_tuf_reason(err, fetcher)) from err
            _kill_point("refreshed")
            for group in self._choose(tuf, names):
                self._install_group(tuf, fetcher, group)
                done.append(", ".join(c.meta.target_name() for c in group))
        except UpdateError as err:
            if err.reason != "unhealthy":  # a rollback has already recorded its own state
                self._state("failed", reason=str(err), code=err.reason)
            raise
        if not done:
            self._state("idle", reason="up to date", installed=self.layout.installed())
        return Outcome(done, self.layout.installed())

    def _choose(self, tuf: TufUpdater, names: list[str] | None) -> list[list[Chosen]]:
        """Groups to install, app first: ``[[app]]``, ``[[library, model]]``, or both."""
        installed = self.layout.installed()
        floor = self.layout.floor()
        wanted: dict[str, Chosen] = {}
        if names:
            for name in names:
                info = self._targetinfo(tuf, name)
                meta = TargetMeta.from_custom(name, info.custom)
                wanted[meta.kind] = Chosen(info, meta)
        else:
            for kind in KINDS:
                for name in self._offered(tuf, kind):
                    info = self._targetinfo(tuf, name)
                    meta = TargetMeta.from_custom(name, info.custom)
                    if meta.kind != kind:
                        continue
                    best = wanted.get(kind)
                    if best is None or meta.parsed_version > best.meta.parsed_version:
                        wanted[kind] = Chosen(info, meta)
        for wanted_kind, chosen in list(wanted.items()):
            low = floor.get(wanted_kind)
            if low is not None and chosen.meta.parsed_version < Version(low):
                raise UpdateError(
                    "downgrade",
                    f"{chosen.meta.target_name()} is below the version floor {wanted_kind} {low}",
                )
            now = installed.get(wanted_kind)
            if (now is not None and Version(now) >= chosen.meta.parsed_version and not names) or (
                now is not None and Version(now) == chosen.meta.parsed_version
            ):
                del wanted[wanted_kind]
        groups = []
        if "app" in wanted:
            groups.append([wanted["app"]])
        data = [wanted[k] for k in DATA_KINDS if k in wanted]
        if data:
            groups.append(data)
        return groups

    @staticmethod
    def _offered(tuf: TufUpdater, kind: str) -> list[str]:
        role = "app" if kind == "app" else "data"
        trusted = tuf._trusted_set  # the ngclient keeps verified delegated metadata here
        if role not in trusted:
            try:
                tuf.get_targetinfo(f"{kind}/")  # loads and verifies the delegated role
            except tuf_errors.ExpiredMetadataError as err:
                raise UpdateError("expired", f"{role}: {err}") from err
            except tuf_errors.RepositoryError as err:
                raise UpdateError("bad_signature", f"{role}: {err}") from err
            except tuf_errors.DownloadError as err:
                raise UpdateError("download_failed", f"{role}: {err}") from err
        if role not in trusted:
            return []
        targets: Any = trusted[role]
        return [n for n in targets.targets if n.startswith(f"{kind}/")]

    @staticmethod
    def _targetinfo(tuf: TufUpdater, name: str) -> TargetFile:
        try:
            info = tuf.get_targetinfo(name)
        except tuf_errors.ExpiredMetadataError as err:
            raise UpdateError("expired", f"{name}: {err}") from err
        except tuf_errors.RepositoryError as err:
            raise UpdateError("bad_signature", f"{name}: {err}") from err
        except tuf_errors.DownloadError as err:
            raise UpdateError("download_failed", f"{name}: {err}") from err
        if info is None:
            raise UpdateError("unknown_target", f"{name} is not signed in the repository")
        return info

    # -- one transaction ------------------------------------------------------------------
    def _install_group(
        self, tuf: TufUpdater, fetcher: ResumableFetcher, group: list[Chosen]
    ) -> None:
        kinds = [c.meta.kind for c in group]
        is_app = kinds == ["app"]
        label = ", ".join(f"{c.meta.kind} {c.meta.version}" for c in group)
        version = group[0].meta.version if is_app else label
        self._check_space(group, is_app)
        self._check_compatible(group)
        archives = []
        for chosen in group:
            self._state(
                "downloading",
                kind=chosen.meta.kind,
                version=chosen.meta.version,
                target=chosen.meta.target_name(),
            )
            dest = self.layout.downloads / chosen.meta.target_name().replace("/", "_")
            try:
                tuf.download_target(chosen.info, str(dest))
            except Exception as err:
                raise UpdateError(*_tuf_reason(err, fetcher)) from err
            archives.append((chosen, dest))
        _kill_point("downloaded")
        self._state("verifying", kind="+".join(kinds), version=version)
        _kill_point("verified")
        installed = self.layout.installed()
        if is_app:
            final = self.layout.releases / group[0].meta.version
        else:
            new = {c.meta.kind: c.meta.version for c in group}
            final = self.layout.data / data_release_id(
                new.get("library", installed["library"]), new.get("model", installed["model"])
            )
        if final.exists() and final.resolve() == (self.layout.current_dir(kinds[0]) or Path()):
            raise UpdateError("downgrade", f"{final.name} is already in use")
        partial = final.with_name(final.name + PARTIAL)
        link = self.layout.link_of(kinds[0])
        previous_dir = self.layout.current_dir(kinds[0])
        self._txn(
            phase="installing",
            group="app" if is_app else "data",
            final=str(final),
            partial=str(partial),
        )
        self._state("installing", kind="+".join(kinds), version=version)
        try:
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if is_app:
                self._unpack_app(archives[0][1], partial)
            else:
                self._unpack_data(archives, partial, previous_dir)
            _kill_point("unpacked")
            _fsync_tree(partial)
            os.rename(partial, final)
            trial.fsync_dir(final.parent)
            _kill_point("renamed")
            problem = self._selftest(final if is_app else None, None if is_app else final)
            if problem:
                raise UpdateError("selftest_failed", problem)
            _kill_point("selftested")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            if final.resolve() != (previous_dir or Path()):
                shutil.rmtree(final, ignore_errors=True)
            trial.remove_durably(self.layout.ota / "txn.json")
            raise
        for _, archive in archives:
            archive.unlink(missing_ok=True)
        with self._switch_gate(kinds, version):
            rel = os.path.relpath(final, link.parent)
            prev_rel = os.path.relpath(previous_dir, link.parent) if previous_dir else rel
            self._txn(phase="trial", group="app" if is_app else "data", final=str(final))
            trial.write_json(
                self.layout.ota / "trial.json",
                {
                    "link": str(link.relative_to(self.layout.root)),
                    "previous": prev_rel,
                    "previous_version": _version_of(previous_dir),
                    "new": rel,
                    "kind": "+".join(kinds),
                    "version": version,
                    "target": [c.meta.target_name() for c in group],
                    "starts": 0,
                    "started": trial.now_rfc3339(),
                },
            )
            _kill_point("trial-recorded")
            trial.switch_link(link, rel)
            _kill_point("switched")
            self._state("trial", kind="+".join(kinds), version=version)
            since = self.control.restart(data_only=not is_app)
        _kill_point("restarted")
        self._trial(final, is_app, since, kinds, version)
        self._commit(group, final, previous_dir, is_app)

    def _check_space(self, group: list[Chosen], is_app: bool) -> None:
        total = sum(c.info.length for c in group)
        limit = self.cfg.ota.max_target_mb * 1024 * 1024
        if total > limit:
            raise UpdateError("too_large", f"targets total {total} bytes, over {limit}")
        factor = 2 + (APP_UNPACK_FACTOR if is_app else 1)
        need = total * factor + self.cfg.ota.min_free_mb * 1024 * 1024
        self.layout.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.layout.root).free
        if free < need:
            raise UpdateError(
                "no_space",
                f"{free // 2**20} MiB free in {self.layout.root}, {need // 2**20} MiB needed",
            )

    def _check_compatible(self, group: list[Chosen]) -> None:
        app = self.layout.installed()["app"] or __version__
        for c in group:
            if c.meta.requires_app and Version(app) not in SpecifierSet(c.meta.requires_app):
                raise UpdateError(
                    "incompatible",
                    f"{c.meta.target_name()} needs app {c.meta.requires_app}, this runs {app}",
                )

    # -- unpacking ------------------------------------------------------------------------
    def _max_bytes(self) -> int:
        return self.cfg.ota.max_target_mb * 1024 * 1024 * APP_UNPACK_FACTOR

    def _unpack_app(self, archive: Path, partial: Path) -> None:
        safe_tar.extract(archive, partial, self._max_bytes())
        wheels = partial / "wheels"
        apps = sorted(wheels.glob("spectra_edge-*.whl"))
        if len(apps) != 1:
            raise UpdateError(
                "bad_target", "an app target must hold exactly one spectra_edge wheel"
            )
        python = str(self.cfg.ota.python or _base_python())
        self._run([python, "-m", "venv", "--system-site-packages", str(partial / "venv")])
        links = ["--find-links", str(wheels)]
        current = self.layout.current_dir("app")
        if current is not None and (current / "wheels").is_dir():
            links += ["--find-links", str(current / "wheels")]
        self._run(
            [
                str(partial / "venv" / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--ignore-installed",
                "--no-compile",
                *links,
                str(apps[0]),
            ]
        )
        version = apps[0].name.split("-")[1]
        doc = {
            "kind": "app",
            "version": version,
            "wheel": apps[0].name,
            "installed": trial.now_rfc3339(),
        }
        (partial / "release.json").write_text(json.dumps(doc, indent=2) + "\n")

    def _unpack_data(
        self, archives: list[tuple[Chosen, Path]], partial: Path, previous: Path | None
    ) -> None:
        partial.mkdir(parents=True)
        versions = dict(self.layout.installed())
        for chosen, archive in archives:
            staging = partial.with_name(partial.name + "-" + chosen.meta.kind)
            shutil.rmtree(staging, ignore_errors=True)
            safe_tar.extract(archive, staging, self._max_bytes())
            try:
                part = staging / chosen.meta.kind
                if not (part / "manifest.json").is_file():
                    raise UpdateError(
                        "bad_target", f"{chosen.meta.target_name()} holds no {chosen.meta.kind}/"
                    )
                os.rename(part, partial / chosen.meta.kind)
                if (staging / "selftest").is_dir():
                    shutil.rmtree(partial / "selftest", ignore_errors=True)
                    os.rename(staging / "selftest", partial / "selftest")
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            versions[chosen.meta.kind] = chosen.meta.version
        for kind in DATA_KINDS:  # what this update does not replace comes from the release in use
            if (
                not (partial / kind).exists()
                and previous is not None
                and (previous / kind).is_dir()
            ):
                shutil.copytree(previous / kind, partial / kind)
        if not (partial / "selftest").exists() and previous is not None:
            shutil.copytree(previous / "selftest", partial / "selftest")
        doc = {
            "library": versions["library"],
            "model": versions["model"],
            "installed": trial.now_rfc3339(),
        }
        (partial / "data.json").write_text(json.dumps(doc, indent=2) + "\n")

    def _run(self, argv: list[str]) -> None:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise UpdateError("bad_target", f"{argv[0]}: {err}") from err
        if done.returncode != 0:
            raise UpdateError("bad_target", f"{' '.join(argv[:4])}...: {done.stderr[-800:]}")

    # -- checks ---------------------------------------------------------------------------
    def _selftest(
        self, app_dir: Path | None, data_dir: Path | None, outbox: bool = False
    ) -> str | None:
        """None when the reference spectra identify as they should, else the failures."""
        app_dir = app_dir or self.layout.current_dir("app")
        data_dir = data_dir or self.layout.current_dir("library")
        if data_dir is None:
            return "no data release to self-test against"
        python = app_dir / "venv" / "bin" / "python" if app_dir else Path(sys.executable)
        if not python.exists():
            python = Path(sys.executable)
        argv = [str(python), "-m", "edge.ota.selftest", "--models", str(data_dir)]
        if outbox:
            argv += ["--outbox", str(self.service_data_dir)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if python == Path(sys.executable):
            env = dict(os.environ)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S, cwd="/"
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"self-test did not run: {err}"
        if done.returncode == 0:
            return None
        try:
            failures = json.loads(done.stdout.strip().splitlines()[-1])["failures"]
            return "; ".join(failures)
        except (ValueError, KeyError, IndexError):
            return f"self-test failed: {done.stderr.strip()[-500:]}"

    @contextlib.contextmanager
    def _switch_gate(self, kinds: Sequence[str], version: str) -> Iterator[None]:
        """Hold the switch lock: wait (bounded) while the service scans or an alarm is on."""
        self.service_data_dir.mkdir(parents=True, exist_ok=True)
        path = self.service_data_dir / SWITCH_LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
        try:
            deadline = time.monotonic() + self.cfg.ota.switch_wait_s
            deferred = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise UpdateError(
                            "busy", "a scan or an active alarm kept the switch deferred too long"
                        ) from None
                    if not deferred:
                        deferred = True
                        self._state(
                            "installing",
                            kind="+".join(kinds),
                            version=version,
                            deferred=True,
                            reason="switch deferred: scan in progress or alarm active",
                        )
                    time.sleep(0.5)
            yield
        finally:
            os.close(fd)

    def _trial(
        self, final: Path, is_app: bool, since: float, kinds: Sequence[str], version: str
    ) -> None:
        deadline = time.monotonic() + self.cfg.ota.trial_timeout_s
        problem: str | None = "not checked yet"
        selftest_done = False
        while time.monotonic() < deadline:
            if trial.read_trial(self.layout.root) is None:  # the boot counter rolled it back
                state = trial.read_json(self.layout.ota / "state.json") or {}
                trial.remove_durably(self.layout.ota / "txn.json")
                raise UpdateError("unhealthy", str(state.get("reason") or "rolled back"))
            problem = self.control.ready_problem(
                since, final if is_app else None, None if is_app else final
            )
            if problem is None and not selftest_done:
                problem = self._selftest(None, None, outbox=True)
                selftest_done = problem is None
            if problem is None:
                _kill_point("healthy")
                return
            time.sleep(TRIAL_POLL_S)
        reason = f"not healthy within {self.cfg.ota.trial_timeout_s:g} s: {problem}"
        trial.rollback(self.layout.root, reason)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.control.restart(data_only=not is_app)
        shutil.rmtree(final, ignore_errors=True)
        trial.remove_durably(self.layout.ota / "txn.json")
        raise UpdateError("unhealthy", reason)

    def _commit(
        self, group: list[Chosen], final: Path, previous: Path | None, is_app: bool
    ) -> None:
        self._txn(
            phase="committing",
            group="app" if is_app else "data",
            final=str(final),
            previous=str(previous) if previous else None,
            floor={c.meta.kind: c.meta.version for c in group},
        )
        trial.remove_durably(self.layout.ota / "trial.json")  # the commit point
        _kill_point("committing")
        self._finish_commit()

    def _finish_commit(self) -> None:
        txn = trial.read_json(self.layout.ota / "txn.json") or {}
        for kind, version in (txn.get("floor") or {}).items():
            self.layout.raise_floor(kind, version)
        group = txn["group"]
        final, previous = Path(txn["final"]), txn.get("previous")
        link = self.layout.app_link if group == "app" else self.layout.data_link
        self.layout.record_history(
            group,
            os.path.relpath(final, link.parent),
            os.path.relpath(previous, link.parent) if previous else None,
        )
        keep = {final, *([Path(previous)] if previous else [])}
        self.layout.purge(group, keep)
        installed = self.layout.installed()
        version = (
            installed["app"]
            if group == "app"
            else (f"library {installed['library']}, model {installed['model']}")
        )
        self._state("committed", kind=group, version=version, installed=installed)
        trial.remove_durably(self.layout.ota / "txn.json")
        _kill_point("committed")

    # -- recovery and manual rollback ------------------------------------------------------
    def recover(self) -> str | None:
        """Finish or undo a transaction a power cut or a kill interrupted; what was done."""
        txn = trial.read_json(self.layout.ota / "txn.json")
        outcome = None
        if isinstance(txn, dict):
            phase = txn.get("phase")
            if phase == "committing":
                self._finish_commit()
                outcome = "finished an interrupted commit"
            elif phase == "trial" and trial.read_trial(self.layout.root) is not None:
                reason = "the updater stopped during the trial (power cut?); rolled back"
                trial.rollback(self.layout.root, reason)
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    self.control.restart(data_only=txn.get("group") != "app")
                outcome = reason
            elif phase == "installing":
                self._state(
                    "failed",
                    reason="the updater stopped while installing; undone",
                    code="interrupted",
                )
                outcome = "undid an interrupted installation"
            final = Path(txn.get("final", ""))
            if phase in ("installing", "trial") and txn.get("final"):
                in_use = {self.layout.current_dir("app"), self.layout.current_dir("library")}
                if final.resolve() not in in_use:
                    shutil.rmtree(final, ignore_errors=True)
                shutil.rmtree(Path(str(final) + PARTIAL), ignore_errors=True)
            trial.remove_durably(self.layout.ota / "txn.json")
        elif trial.read_trial(self.layout.root) is not None:
            # a trial with no transaction: the updater died between recording and the txn
            trial.rollback(self.layout.root, "trial without an updater; rolled back")
            outcome = "rolled back an orphaned trial"
        for parent in (self.layout.releases, self.layout.data):
            for leftover in parent.glob(f"*{PARTIAL}*") if parent.is_dir() else []:
                shutil.rmtree(leftover, ignore_errors=True)
        return outcome

    def rollback(self, group: str = "app") -> dict[str, Any]:
        """Switch *group* back to the release it ran before (a technician's decision)."""
        self.recover()
        hist = self.layout.history().get(group) or {}
        link = self.layout.app_link if group == "app" else self.layout.data_link
        previous = hist.get("previous")
        if not previous or not (link.parent / previous).is_dir():
            raise UpdateError("no_release", f"no previous {group} release to roll back to")
        trial.switch_link(link, previous)
        self.layout.record_history(group, previous, hist.get("current"))
        self.control.restart(data_only=group != "app")
        return trial.write_state(
            self.layout.root,
            "rolled_back",
            kind=group,
            version=_version_of(link.resolve()),
            reason="rolled back by a technician (ota rollback)",
        )


def _version_of(release: Path | None) -> str | None:
    if release is None:
        return None
    doc = trial.read_json(release / "release.json") or trial.read_json(release / "data.json")
    if not isinstance(doc, dict):
        return None
    if "version" in doc:
        return str(doc["version"])
    return f"library {doc.get('library')}, model {doc.get('model')}"


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _fsync_tree(path: Path) -> None:
    """fsync every file and directory under *path* (the venv pip wrote, the data unpacked)."""
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            with contextlib.suppress(OSError):
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        trial.fsync_dir(Path(dirpath))


__all__ = ["Outcome", "Updater"]
