"""Detached Ed25519 signatures over canonical JSON payloads.

Canonical form: JSON with sorted keys, no whitespace, UTF-8 (``ensure_ascii=False``), no NaN
or infinity. The signed bytes are the canonical form of the payload *without* its
``signature`` and ``historical`` members: ``historical`` flips to true when the outbox
redelivers a result late, and that must not break the signature.

The device key is generated on first use in ``device.data_dir`` (PKCS#8 PEM under a
``sha256:`` checksum line, mode 0600); its public half is published in the retained ``info``
message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import EdgeError

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
KEY_FILE = "device-key.pem"
#: Members left out of the signed bytes.
UNSIGNED_MEMBERS = frozenset({"signature", "historical"})


#: One encoder for every call (json.dumps with options builds a new one each time).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, finite numbers only."""
    return _CANONICAL.encode(obj).encode("utf-8")


def signed_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical payload minus ``signature``/``historical``."""
    return canonical_json({k: v for k, v in payload.items() if k not in UNSIGNED_MEMBERS})


def public_key_b64(key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key, base64."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """Short stable key identifier: first 16 hex digits of SHA-256 of the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(b64: str) -> Ed25519PublicKey:
    """Public key from its base64 raw form (as published in ``info``)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))
    except ValueError as err:
        raise EdgeError(f"not an Ed25519 public key: {err}") from err


class DeviceKey:
    """The device's signing key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)
        self.public_b64 = public_key_b64(self.public)

    @classmethod
    def generate(cls) -> DeviceKey:
        """A fresh, unsaved key (tests, tools)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DeviceKey:
        """Load ``data_dir/device-key.pem``, creating it (mode 0600, atomically) if missing.

        The file is the PKCS#8 PEM block preceded by a ``sha256:`` line over that block, so a
        damaged file is an error, never a different valid key. A file written before the
        checksum existed is loaded once and rewritten with it.
        """
        path = Path(data_dir) / KEY_FILE
        try:
            if path.exists():
                return cls._load(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            private = Ed25519PrivateKey.generate()
            if not _write_key_file(path, private, replace=False):
                return cls._load(path)  # another process created it meanwhile
            log.info("generated device signing key %s", path)
            return cls(private)
        except OSError as err:
            raise EdgeError(f"device key {path}: {err}") from err

    @classmethod
    def _load(cls, path: Path) -> DeviceKey:
        text = path.read_bytes()
        pem, checksum = _split_key_file(path, text)
        if checksum is not None and hashlib.sha256(pem).hexdigest() != checksum:
            raise EdgeError(
                f"device key {path} is damaged (checksum mismatch); restore it from a backup, "
                "or move it aside to make a new key (the control room must then approve it)"
            )
        try:
            private = serialization.load_pem_private_key(pem, password=None)
        except ValueError as err:
            raise EdgeError(f"device key {path} is unreadable: {err}") from err
        if not isinstance(private, Ed25519PrivateKey):
            raise EdgeError(f"device key {path} is not an Ed25519 key")
        if checksum is None:
            log.warning("device key %s has no checksum; adding one", path)
            _write_key_file(path, private, replace=True)
        return cls(private)

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Return *payload* with a ``signature`` member added (any old one is replaced)."""
        sig = self._private.sign(signed_bytes(payload))
        out = {k: v for k, v in payload.items() if k != "signature"}
        out["signature"] = {
            "alg": ALGORITHM,
            "key_id": self.key_id,
            "value": base64.b64encode(sig).decode("ascii"),
        }
        return out

    def sign_canonical(self, payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """:meth:`sign`, plus the signed payload's canonical JSON, serialising it only once.

        Canonical JSON sorts the keys, so the members fall in three runs around the
        unsigned ones (``historical`` < ``signature``): the signed bytes are the runs joined,
        and the final bytes the same runs with ``historical`` and ``signature`` spliced in.
        """
        runs: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        for k, v in payload.items():
            if k not in UNSIGNED_MEMBERS:
                runs[0 if k < "historical" else 1 if k < "signature" else 2][k] = v
        parts = [canonical_json(run)[1:-1] for run in runs]
        sig = self._private.sign(b"{" + b",".join(p for p in parts if p) + b"}")
        signature = {
            "alg": ALGORITHM,
            "key_id": self.key_id,
            "value": base64.b64encode(sig).decode("ascii"),
        }
        out = {k: v for k, v in payload.items() if k != "signature"}
        out["signature"] = signature
        # key_id is hex and value base64: nothing to escape
        member = (
            f'"signature":{{"alg":"{ALGORITHM}","key_id":"{self.key_id}",'
            f'"value":"{signature["value"]}"}}'
        )
        spliced = [parts[0], b"", parts[1], member.encode("ascii"), parts[2]]
        if "historical" in payload:
            spliced[1] = b'"historical":' + canonical_json(payload["historical"])
        return out, b"{" + b",".join(p for p in spliced if p) + b"}"


def verify(payload: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """True when *payload*'s detached signature is valid for *public*."""
    sig = payload.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != ALGORITHM:
        return False
    try:
        raw = base64.b64decode(str(sig.get("value", "")), validate=True)
        public.verify(raw, signed_bytes(payload))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


_PEM_BEGIN = b"-----BEGIN PRIVATE KEY-----"
_PEM_END = b"-----END PRIVATE KEY-----"
_CHECKSUM_TAG = b"sha256:"


def _split_key_file(path: Path, text: bytes) -> tuple[bytes, str | None]:
    """The PEM block of a key file and the checksum recorded above it (None: no checksum)."""
    begin, end = text.find(_PEM_BEGIN), text.find(_PEM_END)
    if begin < 0 or end < begin or text.count(_PEM_BEGIN) != 1:
        raise EdgeError(f"device key {path} is damaged: no single PEM private key block")
    pem = text[begin : end + len(_PEM_END)] + b"\n"
    header = text[:begin].splitlines()
    sums = [ln[len(_CHECKSUM_TAG) :].strip() for ln in header if ln.startswith(_CHECKSUM_TAG)]
    if not sums:
        if any(ln.strip() for ln in header):  # a header that is not ours: damaged, not legacy
            raise EdgeError(f"device key {path} is damaged: unexpected text before the key")
        return pem, None
    if len(sums) != 1 or len(sums[0]) != 64:
        raise EdgeError(f"device key {path} is damaged: bad checksum line")
    return pem, sums[0].decode("ascii", "replace")


def _write_key_file(path: Path, private: Ed25519PrivateKey, *, replace: bool) -> bool:
    """Write *private* with its checksum line (mode 0600, fsynced). With ``replace=False``
    an existing file is kept and False returned."""
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = _CHECKSUM_TAG + b" " + hashlib.sha256(pem).hexdigest().encode("ascii") + b"\n" + pem
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # never replaces a key another process created meanwhile
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
