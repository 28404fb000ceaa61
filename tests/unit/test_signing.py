"""Ed25519 signatures over canonical JSON; the device key file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from edge.errors import EdgeError
from edge.publish.signing import (
    DeviceKey,
    canonical_json,
    load_public_key,
    signed_bytes,
    verify,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, 2], "é": "ü"}) == '{"a":[1,2],"b":1,"é":"ü"}'.encode()
    # independent of insertion order
    assert canonical_json({"x": 1, "y": {"q": 2, "p": 3}}) == canonical_json(
        {"y": {"p": 3, "q": 2}, "x": 1}
    )


def test_signed_bytes_leave_out_signature_and_historical() -> None:
    p = {"a": 1, "historical": True, "signature": {"value": "x"}}
    assert signed_bytes(p) == b'{"a":1}'


def test_key_created_once_with_mode_0600(tmp_path: Path) -> None:
    k1 = DeviceKey.load_or_create(tmp_path / "d")
    path = tmp_path / "d" / "device-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    k2 = DeviceKey.load_or_create(tmp_path / "d")
    assert k1.public_b64 == k2.public_b64 and k1.key_id == k2.key_id
    assert len(k1.key_id) == 16


def test_sign_verify_and_tamper(tmp_path: Path) -> None:
    key = DeviceKey.load_or_create(tmp_path)
    payload = {"scan_id": "s-1", "confidence": 0.9, "historical": False, "name": "ñ"}
    signed = key.sign(payload)
    public = load_public_key(key.public_b64)
    assert verify(signed, public)
    # survives a JSON round trip through the wire
    assert verify(json.loads(canonical_json(signed)), public)
    assert verify(dict(signed, historical=True), public)
    assert not verify(dict(signed, confidence=0.91), public)
    assert not verify(dict(signed, extra=1), public)
    assert not verify({k: v for k, v in signed.items() if k != "name"}, public)
    bad_sig = dict(signed, signature=dict(signed["signature"], value="AAAA"))
    assert not verify(bad_sig, public)
    assert not verify({k: v for k, v in signed.items() if k != "signature"}, public)
    assert not verify(signed, DeviceKey.generate().public)


def test_sign_canonical_equals_sign_then_canonical_json() -> None:
    key = DeviceKey.generate()
    payloads = [
        {},
        {"a": 1},
        {"historical": False},
        {"historical": True, "signature": {"value": "old"}},
        # keys on both sides of, and next to, the unsigned members; nested look-alikes
        {
            "A": None,
            "h": "ü",
            "historicalx": 2,
            "sign": 3,
            "signaturez": [4],
            "zz": {"historical": False, "signature": 1},
            "historical": False,
        },
    ]
    for p in payloads:
        signed, data = key.sign_canonical(p)
        assert data == canonical_json(signed)
        assert signed == key.sign(p)  # Ed25519 signatures are deterministic
        assert verify(json.loads(data), key.public)


def test_every_single_bit_flip_of_the_key_file_is_an_error_or_the_same_key(
    tmp_path: Path,
) -> None:
    """Finding 7 of issue 8: 73 of 234 flips once loaded as a *different* valid key."""
    good = DeviceKey.load_or_create(tmp_path / "d")
    path = tmp_path / "d" / "device-key.pem"
    original = path.read_bytes()
    errors = same = 0
    for i in range(len(original)):
        for bit in (0, 3, 6):
            damaged = bytearray(original)
            damaged[i] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            try:
                key = DeviceKey.load_or_create(tmp_path / "d")
            except EdgeError:
                errors += 1
            else:
                assert key.public_b64 == good.public_b64, f"byte {i} bit {bit}: another key"
                same += 1
    assert errors > 0.9 * (errors + same)  # nearly every flip hits the checksum or the key


def test_a_key_file_without_checksum_is_loaded_and_upgraded(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    legacy = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "device-key.pem").write_bytes(legacy)
    key = DeviceKey.load_or_create(tmp_path)
    assert key.public_b64 == DeviceKey(private).public_b64
    text = (tmp_path / "device-key.pem").read_bytes()
    assert text.startswith(b"sha256: ") and legacy in text
    assert DeviceKey.load_or_create(tmp_path).public_b64 == key.public_b64
