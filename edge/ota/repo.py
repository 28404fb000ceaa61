"""The publisher's TUF repository: ``spectra-edge ota repo init | add | sign | rotate | serve``.

Layout of a repository directory ``REPO``::

    keys/            private keys, one PEM file per key (``root-1.pem`` ...). Never served.
                     Keep the root keys offline (USB key in a safe) and bring them only to
                     sign a new root.
    public/          what devices read, over HTTP (``serve``) or copied to a USB stick:
      metadata/      N.root.json, N.targets.json, N.app.json, N.data.json,
                     N.snapshot.json, timestamp.json (consistent snapshots)
      targets/       <kind>/<sha256>.<kind>-<version>.tar

Roles (TUF): ``root`` (threshold of offline keys, rotatable), ``targets`` delegating
``app/*`` to ``app`` (release engineers sign code) and ``library/*``, ``model/*`` to ``data``
(the laboratory signs libraries and models), ``snapshot`` and ``timestamp`` (online keys,
re-signed by ``sign`` before they expire).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edge.errors import UpdateError
from edge.ota.targets import ROLE_OF_KIND, TargetMeta

TOP_ROLES = ("root", "targets", "snapshot", "timestamp")
DELEGATED = {"app": ["app/*"], "data": ["library/*", "model/*"]}
#: Default lifetimes of each role's metadata, days. Timestamp and snapshot are re-signed with
#: ``sign``; a post offline longer than the timestamp's lifetime needs a freshly signed stick.
EXPIRY_DAYS = {
    "root": 365,
    "targets": 180,
    "app": 180,
    "data": 180,
    "snapshot": 30,
    "timestamp": 14,
}


def _expiry(role: str, days: dict[str, int] | None = None) -> datetime:
    lifetime = (days or {}).get(role, EXPIRY_DAYS[role])
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=lifetime)


def _new_key(path: Path) -> CryptoSigner:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return CryptoSigner(key)


def _load_key(path: Path) -> CryptoSigner:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return CryptoSigner(key)


@dataclass
class Repository:
    """A publisher's repository directory (see the module doc)."""

    path: Path

    @property
    def keys_dir(self) -> Path:
        """Private keys."""
        return self.path / "keys"

    @property
    def metadata_dir(self) -> Path:
        """Served metadata."""
        return self.path / "public" / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Served target files."""
        return self.path / "public" / "targets"

    # -- keys ------------------------------------------------------------------------------
    def signers(self, role: str) -> list[Signer]:
        """Every private key of *role* present in ``keys/``."""
        return [_load_key(p) for p in sorted(self.keys_dir.glob(f"{role}-*.pem"))]

    def _signers_for(self, role: str, keyids: list[str]) -> list[Signer]:
        return [s for s in self.signers(role) if s.public_key.keyid in keyids]

    # -- metadata --------------------------------------------------------------------------
    def _latest(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        files = list(self.metadata_dir.glob(f"*.{role}.json"))
        if not files:
            raise UpdateError("no_release", f"{self.path}: no {role} metadata (run init)")
        newest = max(files, key=lambda p: int(p.name.split(".", 1)[0]))
        return Metadata.from_file(str(newest))

    def root(self) -> Metadata[Root]:
        """The newest root metadata."""
        return self._latest("root")

    def _write(self, role: str, md: Metadata[Any]) -> None:
        name = "timestamp.json" if role == "timestamp" else f"{md.signed.version}.{role}.json"
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.metadata_dir / f".{name}.tmp"
        md.to_file(str(tmp), JSONSerializer(compact=False))
        tmp.replace(self.metadata_dir / name)

    def _sign(self, md: Metadata[Any], signers: list[Signer]) -> None:
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)

    def _role_keyids(self, role: str) -> tuple[list[str], int]:
        if role in TOP_ROLES:
            r = self.root().signed.roles[role]
            return list(r.keyids), r.threshold
        targets = self._latest("targets").signed
        assert targets.delegations is not None and targets.delegations.roles is not None
        d = targets.delegations.roles[role]
        return list(d.keyids), d.threshold

    def _resign(self, role: str, md: Metadata[Any], days: dict[str, int] | None) -> None:
        md.signed.version += 1
        md.signed.expires = _expiry(role, days)
        keyids, threshold = self._role_keyids(role)
        signers = self._signers_for(role, keyids)
        if len(signers) < threshold:
            raise UpdateError(
                "bad_signature",
                f"{role}: {len(signers)} of the {threshold} keys needed are in {self.keys_dir}",
            )
        self._sign(md, signers)
        self._write(role, md)

    def _snapshot_and_timestamp(self, days: dict[str, int] | None = None) -> None:
        snapshot = self._latest("snapshot")
        for role in ("targets", *DELEGATED):
            snapshot.signed.meta[f"{role}.json"] = MetaFile(self._latest(role).signed.version)
        self._resign("snapshot", snapshot, days)
        timestamp = self._latest("timestamp")
        timestamp.signed.snapshot_meta = MetaFile(snapshot.signed.version)
        self._resign("timestamp", timestamp, days)

    # -- commands --------------------------------------------------------------------------
    def init(self, root_keys: int = 3, root_threshold: int = 2) -> None:
        """Create keys and the first signed metadata of every role."""
        if self.metadata_dir.exists() and any(self.metadata_dir.iterdir()):
            raise UpdateError("bad_target", f"{self.path} already holds a repository")
        if not 1 <= root_threshold <= root_keys:
            raise UpdateError("bad_target", "need 1 <= root threshold <= root keys")
        signers: dict[str, list[CryptoSigner]] = {
            "root": [_new_key(self.keys_dir / f"root-{i + 1}.pem") for i in range(root_keys)]
        }
        for role in ("targets", "snapshot", "timestamp", *DELEGATED):
            signers[role] = [_new_key(self.keys_dir / f"{role}-1.pem")]
        root = Root(expires=_expiry("root"), consistent_snapshot=True)
        for role in TOP_ROLES:
            for s in signers[role]:
                root.add_key(s.public_key, role)
        root.roles["root"].threshold = root_threshold
        roles = {
            name: DelegatedRole(name, [s.public_key.keyid for s in signers[name]], 1, True, paths)
            for name, paths in DELEGATED.items()
        }
        targets = Targets(expires=_expiry("targets"))
        targets.delegations = Delegations(
            {s.public_key.keyid: s.public_key for n in DELEGATED for s in signers[n]}, roles
        )
        docs: dict[str, Any] = {"root": root, "targets": targets}
        for name in DELEGATED:
            docs[name] = Targets(expires=_expiry(name))
        snapshot = Snapshot(expires=_expiry("snapshot"))
        for name in ("targets", *DELEGATED):
            snapshot.meta[f"{name}.json"] = MetaFile(1)
        docs["snapshot"] = snapshot
        docs["timestamp"] = Timestamp(expires=_expiry("timestamp"), snapshot_meta=MetaFile(1))
        for name, signed in docs.items():
            md = Metadata(signed)
            self._sign(md, list(signers[name]))
            self._write(name, md)
        self.targets_dir.mkdir(parents=True, exist_ok=True)

    def add(self, artifact: Path, meta: TargetMeta, days: dict[str, int] | None = None) -> str:
        """Add the packed *artifact* as target *meta*; sign its role, snapshot and timestamp."""
        name = meta.target_name()
        info = TargetFile.from_file(name, str(artifact), ["sha256"])
        info.unrecognized_fields["custom"] = meta.to_custom()
        role = ROLE_OF_KIND[meta.kind]
        md = self._latest(role)
        md.signed.targets[name] = info
        stored = self.targets_dir / meta.kind / f"{info.hashes['sha256']}.{name.split('/')[1]}"
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact, stored)
        self._resign(role, md, days)
        self._snapshot_and_timestamp(days)
        return name

    def sign(self, roles: list[str] | None = None, days: dict[str, int] | None = None) -> None:
        """Re-sign *roles* (new version, new expiry), then snapshot and timestamp."""
        for role in roles or []:
            if role in ("snapshot", "timestamp"):
                continue
            if role == "root":
                self._resign_root(self.root(), self.signers("root"), days)
            else:
                self._resign(role, self._latest(role), days)
        self._snapshot_and_timestamp(days)

    def _resign_root(
        self, md: Metadata[Root], signers: list[Signer], days: dict[str, int] | None
    ) -> None:
        md.signed.version += 1
        md.signed.expires = _expiry("root", days)
        self._sign(md, signers)
        self._write("root", md)

    def rotate(self, role: str, days: dict[str, int] | None = None) -> list[str]:
        """Replace every key of *role* by as many new ones (same threshold); new keyids.

        The new root is signed by the old root keys (so devices holding the old root trust
        it) and, when root itself rotates, by the new root keys too. Old private keys move
        to ``keys/retired/``.
        """
        if role not in (*TOP_ROLES, *DELEGATED):
            raise UpdateError("bad_target", f"no role {role!r}")
        old_root_signers = self.signers("root")
        old_paths = sorted(self.keys_dir.glob(f"{role}-*.pem"))
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        retired = self.keys_dir / "retired"
        retired.mkdir(exist_ok=True, mode=0o700)
        for p in old_paths:
            p.replace(retired / f"{p.stem}-{stamp}.pem")
        new = [_new_key(self.keys_dir / f"{role}-{i + 1}.pem") for i in range(len(old_paths) or 1)]
        if role in TOP_ROLES:
            root = self.root()
            for keyid in list(root.signed.roles[role].keyids):
                root.signed.revoke_key(keyid, role)
            for signer in new:
                root.signed.add_key(signer.public_key, role)
            extra = new if role == "root" else []
            self._resign_root(root, [*old_root_signers, *extra], days)
        else:
            targets = self._latest("targets")
            delegations = targets.signed.delegations
            assert delegations is not None and delegations.roles is not None
            delegated = delegations.roles[role]
            for keyid in delegated.keyids:
                delegations.keys.pop(keyid, None)
            delegated.keyids = [s.public_key.keyid for s in new]
            for signer in new:
                delegations.keys[signer.public_key.keyid] = signer.public_key
            self._resign("targets", targets, days)
        if role in (*DELEGATED, "targets"):
            self._resign(role, self._latest(role), days)
        self._snapshot_and_timestamp(days)
        return [str(s.public_key.keyid) for s in new]

    def list_targets(self) -> dict[str, dict[str, Any]]:
        """Every target with its length and custom metadata."""
        out: dict[str, dict[str, Any]] = {}
        for role in DELEGATED:
            for name, info in self._latest(role).signed.targets.items():
                out[name] = {"role": role, "length": info.length, **(info.custom or {})}
        return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(repo: Repository, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server of ``public/`` (never ``keys/``); call ``serve_forever`` or use a thread.

    Byte ranges are not supported by the standard library's handler; the device then
    downloads the whole file again, which it notices and handles.
    """
    handler = functools.partial(_QuietHandler, directory=str(repo.path / "public"))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(repo: Repository, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start :func:`serve` on a daemon thread; returns the server (``server_address``)."""
    server = serve(repo, host, port)
    threading.Thread(target=server.serve_forever, name="ota-repo-http", daemon=True).start()
    return server
