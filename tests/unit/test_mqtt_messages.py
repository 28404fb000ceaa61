"""The scan/result payload carries Identification.to_dict() exactly (plain JSON types)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone

from edge.identify.result import Hit, Identification, MixtureComponent, Substance
from edge.publish.messages import result_payload, rfc3339, validate
from edge.publish.signing import DeviceKey


def _ident() -> Identification:
    sub = Substance("cocaine hydrochloride", "narcotic", "tropane", "alarm", "53-21-4")
    return Identification(
        status="mixture",
        substance=sub,
        confidence=0.8,
        hits=(Hit("a", 0.9), Hit("b", 0.5)),
        mixture=(MixtureComponent("a", 0.7, "narcotic", "alarm"), MixtureComponent("b", 0.3)),
        family="tropane",
        reason=None,
        severity="alarm",
        quality={"snr": 100.0},
        versions={"model": "m1", "library": "l1"},
    )


def test_to_dict_matches_dataclass_fields_as_plain_json() -> None:
    ident = _ident()
    d = ident.to_dict()
    expected = asdict(ident)
    expected["hits"] = [asdict(h) for h in ident.hits]
    expected["mixture"] = [asdict(m) for m in ident.mixture]
    assert d == expected
    assert isinstance(d["hits"], list) and isinstance(d["mixture"], list)
    # copies, not the frozen result's own dicts
    d["quality"]["snr"] = 0.0
    assert ident.quality["snr"] == 100.0
    assert Identification("no_match", None, 0.0).to_dict()["substance"] is None


def test_result_payload_validates_and_round_trips() -> None:
    p = result_payload(_ident(), device="d1", post="p1", seq=7)
    validate("scan-result", DeviceKey.generate().sign(p))
    assert json.loads(json.dumps(p)) == p
    assert p["hits"] == [{"name": "a", "score": 0.9}, {"name": "b", "score": 0.5}]


def test_rfc3339_utc_milliseconds_truncated() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert rfc3339(when) == "2026-01-02T03:04:05.678Z"
    assert rfc3339(when.replace(microsecond=0)) == "2026-01-02T03:04:05.000Z"
    ist = timezone(timedelta(hours=5, minutes=30))
    assert rfc3339(datetime(2026, 1, 2, 8, 34, 5, 999999, tzinfo=ist)) == "2026-01-02T03:04:05.999Z"


def test_new_verdict_fields_validate_and_read_as_spectral_shares() -> None:
    from edge.identify.result import Nearest, SuspectedFamily, mixture_text
    from edge.publish.messages import is_alarm

    key = DeviceKey.generate()
    inconclusive = Identification(
        status="inconclusive",
        substance=None,
        confidence=0.74,
        severity="warn",
        family="cathinone",
        nearest=Nearest("mephedrone", "narcotic", "cathinone", 0.91),
        suspected_family=SuspectedFamily("cathinone", 0.66),
    )
    p = result_payload(inconclusive, device="d1", post="p1", seq=8)
    validate("scan-result", key.sign(p))
    assert p["nearest"]["name"] == "mephedrone" and p["suspected_family"]["probability"] == 0.66
    assert not is_alarm(inconclusive)  # warn: look closer, no alarm
    mix = Identification(
        status="mixture",
        substance=Substance("lactose", "cutting_agent", None, "info"),
        confidence=0.95,
        mixture=(
            MixtureComponent("lactose", 0.63, "cutting_agent", "info", 0.99),
            MixtureComponent("heroin", 0.37, "narcotic", "alarm", 0.95),
        ),
        severity="alarm",
    )
    p = result_payload(mix, device="d1", post="p1", seq=9)
    validate("scan-result", key.sign(p))
    text = mixture_text(p["mixture"])
    assert text == ("lactose (spectral share 0.63, p 0.99) + heroin (spectral share 0.37, p 0.95)")
    assert "%" not in text and is_alarm(mix)
    # an unconfirmed threat component listed in a warn result is no alarm
    assert not is_alarm(
        Identification("mixture", mix.substance, 0.95, mixture=mix.mixture, severity="warn")
    )
