"""Remote command dispatch without a broker: parsing, hostile input, rate limit, worker."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from edge.publish import messages
from edge.service.commands import (
    MAX_CORRELATION_BYTES,
    MAX_PAYLOAD_BYTES,
    AckArgs,
    CommandRejected,
    Dispatcher,
    GetSpectrumArgs,
    PingArgs,
    ScanArgs,
    TokenBucket,
)
from edge.service.commands.contract import json_depth
from hal.clock import FakeClock

PREFIX = "customs/altynkol/altynkol-01"


class Sent:
    """Collects responses (topic, body, correlation data); checks each against its schema."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any], bytes | None]] = []
        self.cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes, corr: bytes | None) -> None:
        body = json.loads(payload)
        messages.validate(messages.response_kind(body["command"]), body)
        with self.cond:
            self.items.append((topic, body, corr))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.items)} of {n} responses"
                self.cond.wait(left)


def make(handlers: dict[str, Any] | None = None, **kw: Any) -> tuple[Dispatcher, Sent]:
    sent = Sent()
    calls: dict[str, Any] = {
        "ping": lambda a: (
            {"uptime_s": 1.0, "version": "t"} | ({"nonce": a.nonce} if a.nonce else {})
        ),
        "scan": lambda a: {"scan_id": "s1", "status": "identified", "consignment": a.consignment},
        "ack": lambda a: {"cleared": True, "scan_id": a.scan_id},
        "background": lambda a: {"time": "2026-01-01T00:00:00.000Z"},
        "get_spectrum": lambda a: {
            "scan_id": a.scan_id,
            "kind": a.kind,
            "x_unit": "1/CM",
            "y_unit": "A",
            "x": [],
            "y": [],
        },
    }
    if handlers:
        calls.update(handlers)
    return Dispatcher(PREFIX, calls, sent, device="altynkol-01", post="altynkol", **kw), sent


def test_ping_round_trip_echoes_correlation_and_nonce() -> None:
    d, sent = make()
    assert d.submit(f"{PREFIX}/cmd/ping", b'{"nonce": "r1"}', None, b"\x01corr") == "queued"
    assert sent.items == []  # nothing runs on the submitting (network) thread
    assert d.run_pending() == 1
    topic, body, corr = sent.items[0]
    assert topic == f"{PREFIX}/cmd/ping/response"
    assert corr == b"\x01corr"
    assert body["ok"] is True
    assert body["result"] == {"uptime_s": 1.0, "version": "t", "nonce": "r1"}
    assert body["command"] == "ping" and body["post"] == "altynkol"
    assert body["device"] == "altynkol-01" and body["time"].endswith("Z")


@pytest.mark.parametrize(
    "asked",
    [
        "control/room/replies/42",
        f"{PREFIX}/status",
        f"{PREFIX}/alarm",
        "customs/altynkol/altynkol-02/alarm",  # another device's alarm
        "customs/altynkol/altynkol-02/scan/result",
        "control/#",
        f"{PREFIX}/cmd/+",
        "a/b\x00c",
        f"{PREFIX}/cmd/background",  # our own command topic: a loop
        "customs/altynkol/altynkol-02/cmd/scan",  # another device's command topic
    ],
)
def test_any_other_response_topic_is_answered_on_ours_and_counted(asked: str) -> None:
    d, sent = make()
    assert d.submit(f"{PREFIX}/cmd/ping", b"{}", asked, b"c") == "queued"
    assert d.run_pending() == 1
    assert [t for t, _, _ in sent.items] == [f"{PREFIX}/cmd/ping/response"]
    assert sent.items[0][1]["ok"] is True and sent.items[0][2] == b"c"
    assert d.snapshot()["response_topic_redirected"] == 1


def test_errors_also_go_to_our_response_topic_only() -> None:
    d, sent = make()
    assert d.submit(f"{PREFIX}/cmd/ping", b"{oops", "customs/altynkol/x/alarm", b"c") == "bad_json"
    assert [t for t, _, _ in sent.items] == [f"{PREFIX}/cmd/ping/response"]


def test_our_own_response_topic_is_not_counted_as_redirected() -> None:
    d, _ = make()
    d.submit(f"{PREFIX}/cmd/ping", b"{}", f"{PREFIX}/cmd/ping/response", b"c")
    assert "response_topic_redirected" not in d.snapshot()


@pytest.mark.parametrize("depth", [17, 100, 2000, 100_000])
def test_deeply_nested_json_is_bad_json(depth: int) -> None:
    d, sent = make(max_payload=1_000_000)
    body = b'{"nonce": ' + b"[" * depth + b"]" * depth + b"}"
    assert d.submit(f"{PREFIX}/cmd/ping", body, None, b"deep") == "bad_json"
    (_, answer, corr) = sent.items[0]
    assert answer["error"]["code"] == "bad_json" and corr == b"deep"
    assert "nested" in answer["error"]["message"]


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth(rb'{"a": "[[[[{{{{\\"}') == 1  # an escaped backslash ends before the quote
    assert json_depth(rb'{"a": "\"[[[["}') == 1  # an escaped quote stays in the string
    assert json_depth(b'[{"a": [1, {"b": []}]}]') == 5
    assert json_depth(b"") == 0


def test_one_flooding_requester_does_not_starve_another() -> None:
    clock = FakeClock()
    d, _sent = make(rate=5.0, burst=10, global_rate=20.0, global_burst=40, clock=clock)
    legit = 0
    for _second in range(10):  # a flooder at 50 msg/s for 10 s; a legitimate requester at 1/s
        for _ in range(50):
            d.submit(f"{PREFIX}/cmd/ping", b"{}", "flood/replies", None)
            clock.advance(0.02)
        legit += d.submit(f"{PREFIX}/cmd/ping", b"{}", "control/replies/1", b"L") == "queued"
        d.run_pending()
    assert legit == 10  # every legitimate request went through
    assert d.snapshot()["rate_limited"] >= 10 * 50 - 10 - 10 * 5 - 5


def test_many_requesters_together_are_capped_by_the_global_bucket() -> None:
    clock = FakeClock()
    d, _ = make(rate=5.0, burst=10, global_rate=20.0, global_burst=40, queue_size=1000, clock=clock)
    outcomes = [d.submit(f"{PREFIX}/cmd/ping", b"{}", f"r/{i}", None) for i in range(500)]
    assert outcomes.count("queued") == 40  # the global burst, whatever the keys


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (f"{PREFIX}/cmd/ping", b"{not json", "bad_json"),
        (f"{PREFIX}/cmd/ping", b"\xff\xfe\x00", "bad_json"),
        (f"{PREFIX}/cmd/ping", b"[1, 2, 3]", "bad_json"),
        (f"{PREFIX}/cmd/ping", b'"just a string"', "bad_json"),
        (f"{PREFIX}/cmd/ack", b'{"scan_id": 42}', "bad_request"),  # wrong type
        (f"{PREFIX}/cmd/get_spectrum", b"{}", "bad_request"),  # missing field
        (f"{PREFIX}/cmd/ack", b'{"scan_id": "a/../b"}', "bad_request"),  # pattern
        (f"{PREFIX}/cmd/get_spectrum", b'{"scan_id": "x", "kind": "all"}', "bad_request"),
        (f"{PREFIX}/cmd/ping", b'{"extra": 1}', "bad_request"),  # unknown key
        (f"{PREFIX}/cmd/ping", b'{"nonce": null}', "bad_request"),
        (f"{PREFIX}/cmd/scan", b"{}", "bad_request"),  # consignment is required
        (f"{PREFIX}/cmd/scan", b'{"consignment": "' + b"A" * 100 + b'"}', "bad_request"),
        (f"{PREFIX}/cmd/reboot", b"{}", "unknown_command"),
        (f"{PREFIX}/cmd/__class__", b"{}", "unknown_command"),
        (f"{PREFIX}/cmd/ping", b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "too_large"),
    ],
)
def test_hostile_requests_get_an_error_response_and_a_counter(
    topic: str, payload: bytes, code: str
) -> None:
    called: list[Any] = []
    d, sent = make({"ping": called.append, "ack": called.append, "scan": called.append})
    assert d.submit(topic, payload, None, b"k") == code
    assert d.run_pending() == 0
    assert called == []
    (resp_topic, body, corr) = sent.items[0]
    assert resp_topic == topic + "/response"
    assert corr == b"k"
    assert body["ok"] is False and body["error"]["code"] == code
    assert d.snapshot()[code] == 1


@pytest.mark.parametrize(
    "topic",
    [
        "customs/altynkol/altynkol-02/cmd/ping",  # another device
        "customs/altynkol/altynkol-01x/cmd/ping",  # prefix as a string prefix only
        "customs/altynkol/altynkol-01/cmd/ping/response",
        "customs/altynkol/altynkol-01/cmd/",
        "customs/altynkol/altynkol-01/cmdping",
        "customs/altynkol/altynkol-01/cmd/+",
        "customs/altynkol/altynkol-01/cmd/#",
    ],
)
def test_command_on_another_topic_is_never_acted_on(topic: str) -> None:
    called: list[Any] = []
    d, sent = make({"ping": called.append})
    assert d.submit(topic, b"{}", None, None) == "foreign_topic"
    assert d.run_pending() == 0
    assert called == [] and sent.items == []
    assert d.snapshot() == {"foreign_topic": 1}


def test_flood_is_rate_limited_and_dropped_with_a_counter() -> None:
    clock = FakeClock()
    d, sent = make(rate=5.0, burst=10, queue_size=1000, clock=clock)
    outcomes = [d.submit(f"{PREFIX}/cmd/ping", b"{}", None, None) for _ in range(1000)]
    assert outcomes.count("queued") == 10
    assert outcomes.count("rate_limited") == 990
    assert d.snapshot()["rate_limited"] == 990
    clock.advance(1.0)  # one second refills five tokens
    outcomes = [d.submit(f"{PREFIX}/cmd/ping", b"{}", None, None) for _ in range(20)]
    assert outcomes.count("queued") == 5
    assert d.run_pending() == 15
    assert len(sent.items) == 15  # dropped requests got no answer (no amplification)


def test_full_queue_answers_busy() -> None:
    d, sent = make(queue_size=2)
    outcomes = [d.submit(f"{PREFIX}/cmd/ping", b"{}", None, None) for _ in range(4)]
    assert outcomes == ["queued", "queued", "busy", "busy"]
    assert [b["error"]["code"] for _, b, _ in sent.items] == ["busy", "busy"]


def test_handler_exception_becomes_failed_response_and_worker_lives_on() -> None:
    def boom(args: Any) -> dict[str, Any]:
        raise RuntimeError("instrument unplugged")

    d, sent = make({"background": boom})
    d.start()
    try:
        d.submit(f"{PREFIX}/cmd/background", b"{}", None, b"1")
        d.submit(f"{PREFIX}/cmd/ping", b"{}", None, b"2")
        sent.wait(2)
    finally:
        d.stop()
    by_corr = {c: b for _, b, c in sent.items}
    assert by_corr[b"1"]["error"] == {"code": "failed", "message": "instrument unplugged"}
    assert by_corr[b"1"]["command"] == "background"
    assert by_corr[b"2"]["ok"] is True
    assert d.snapshot()["failed"] == 1 and d.snapshot()["ok"] == 1


def test_future_result_is_answered_when_it_completes() -> None:
    pending: Future[dict[str, Any]] = Future()
    d, sent = make({"scan": lambda a: pending})
    d.submit(f"{PREFIX}/cmd/scan", b'{"consignment": "MSKU 1234567"}', None, b"s")
    d.run_pending()
    assert sent.items == []
    pending.set_result({"scan_id": "abc", "status": "identified", "consignment": "MSKU 1234567"})
    assert sent.items[0][1]["result"]["scan_id"] == "abc"
    assert sent.items[0][2] == b"s"


def test_slow_handler_never_blocks_submit() -> None:
    release = threading.Event()

    def slow(args: Any) -> dict[str, Any]:
        release.wait(10)
        return {}

    d, _ = make({"background": slow}, queue_size=4)
    d.start()
    try:
        t0 = time.monotonic()
        outcomes = [d.submit(f"{PREFIX}/cmd/background", b"{}", None, None) for _ in range(20)]
        assert time.monotonic() - t0 < 0.5
        assert "busy" in outcomes
    finally:
        release.set()
        d.stop()


def test_failing_responder_is_counted_not_raised() -> None:
    def broken(topic: str, payload: bytes, corr: bytes | None) -> None:
        raise ConnectionError("link down")

    d = Dispatcher(PREFIX, {"ping": lambda a: {}}, broken, device="d", post="p")
    d.submit(f"{PREFIX}/cmd/ping", b"{}", None, None)
    d.run_pending()
    assert d.snapshot()["response_error"] == 1


def test_parse_returns_typed_models() -> None:
    d, _ = make()
    a = d.parse("scan", b'{"consignment": "TGHU 8812345"}')
    assert isinstance(a, ScanArgs) and a.consignment == "TGHU 8812345"
    ack = d.parse("ack", b'{"scan_id": "s-1"}')
    assert isinstance(ack, AckArgs) and ack.scan_id == "s-1"
    g = d.parse("get_spectrum", b'{"scan_id": "s-1", "kind": "raw"}')
    assert isinstance(g, GetSpectrumArgs) and g.kind == "raw"
    assert d.parse("get_spectrum", b'{"scan_id": "s-1"}').kind == "processed"  # type: ignore[attr-defined]
    assert isinstance(d.parse("ping", b""), PingArgs)  # an empty body is an empty object
    with pytest.raises(CommandRejected) as info:
        d.parse("ack", b'{"scan_id": true}')
    assert info.value.code == "bad_request" and isinstance(info.value, ValueError)


def test_handler_not_found_maps_to_its_code() -> None:
    def missing(args: Any) -> dict[str, Any]:
        raise CommandRejected("not_found", "scan 'x' is not in the archive")

    d, sent = make({"get_spectrum": missing})
    d.submit(f"{PREFIX}/cmd/get_spectrum", b'{"scan_id": "x"}', None, None)
    d.run_pending()
    assert sent.items[0][1]["error"]["code"] == "not_found"
    assert d.snapshot()["not_found"] == 1


def test_oversized_correlation_data_is_not_echoed() -> None:
    d, sent = make()
    d.submit(f"{PREFIX}/cmd/ping", b"{}", None, b"x" * (MAX_CORRELATION_BYTES + 1))
    d.run_pending()
    assert sent.items[0][2] is None and sent.items[0][1]["ok"] is True


def test_a_handler_outside_the_contract_is_refused_and_info_lists_what_is_served() -> None:
    with pytest.raises(ValueError, match="selfdestruct"):
        make({"selfdestruct": lambda a: {}})
    d = Dispatcher(
        PREFIX, {"ping": lambda a: {}, "ack": lambda a: {}}, Sent(), device="d", post="p"
    )
    assert d.served == ("ack", "ping")  # registry order
    # a command of the contract this dispatcher does not serve is unknown here
    assert d.submit(f"{PREFIX}/cmd/scan", b'{"consignment": "X"}') == "unknown_command"


def test_token_bucket() -> None:
    clock = FakeClock()
    b = TokenBucket(2.0, 3, clock)
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)
    assert b.take() and not b.take()
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
