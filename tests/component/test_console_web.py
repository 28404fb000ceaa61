"""The web console's access control, CSRF, log-in throttling, audit chain, search and export
(real SQLite and PostgreSQL; no browser: starlette's TestClient)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import pytest
from console_helpers import add_users, login
from fastapi.testclient import TestClient
from helpers_mqtt import make_identification
from sqlalchemy import text

from controlroom import audit
from controlroom.archive import Incoming, MessageWriter
from controlroom.audit import verify_chain
from controlroom.db import Database, open_database
from controlroom.db.schema import AuditEntry
from controlroom.keys import KeyRegistry, register_key
from controlroom.topics import TopicFilter
from controlroom.web.app import create_app, route_table
from controlroom.web.context import ConsoleContext
from controlroom.web.security import PUBLIC_PATHS
from edge.publish import messages
from edge.publish.signing import DeviceKey

PREFIX = "customs/post-1/dev-1"


@pytest.fixture
def db(console_db_url: str) -> Iterator[Database]:
    database = open_database(console_db_url)
    add_users(database)
    yield database
    database.close()


@pytest.fixture
def app_client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(ConsoleContext(db, commands=None))) as client:
        yield client


def store_results(db: Database, n: int = 6) -> list[dict]:
    """*n* signed results of one device (every third an alarm), written as the ingester does."""
    key = DeviceKey.generate()
    registry = KeyRegistry()
    writer = MessageWriter(TopicFilter(), registry)
    out = []
    with db.session() as s:
        register_key(s, PREFIX, key.public_b64, state="approved", by="test")
        registry.load(s)
        batch = []
        for i in range(1, n + 1):
            body = key.sign(
                messages.result_payload(
                    make_identification(i, alarm=i % 3 == 0),
                    device="dev-1",
                    post="post-1",
                    seq=i,
                    consignment=f"MSKU{i:07d}",
                )
            )
            out.append(body)
            batch.append(Incoming(f"{PREFIX}/scan/result", json.dumps(body).encode()))
        writer.write(s, batch)
    return out


def fill_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_refuses_an_anonymous_request(app_client: TestClient) -> None:
    table = route_table(app_client.app)  # type: ignore[arg-type]
    # the OpenAPI generator walks the routes its own way: it must find nothing we missed
    schema_paths = set(app_client.app.openapi()["paths"])  # type: ignore[attr-defined]
    assert schema_paths <= {p for p, _m in table}
    checked = 0
    public = set()
    for path, methods in table:
        if not methods:
            assert path == "/static", f"unexpected mount {path}"
            continue
        for method in methods:
            r = app_client.request(method, fill_path(path), follow_redirects=False)
            if path in PUBLIC_PATHS:
                public.add(path)
                continue
            if path.startswith(("/api/", "/events/")):
                assert r.status_code == 401, (method, path, r.status_code)
            else:
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/login?next=")
            checked += 1
    assert public == {"/login"}
    assert checked >= 20
    # a path no route serves is refused too (not a 404 that tells what exists)
    assert app_client.get("/nothing-here", follow_redirects=False).status_code == 303
    assert app_client.get("/api/nothing", follow_redirects=False).status_code == 401
    # the static files the log-in form needs are public, nothing else is
    assert app_client.get("/static/console.css").status_code == 200


def test_every_state_changing_route_needs_the_csrf_token(app_client: TestClient) -> None:
    login(app_client, "admin")
    posts = [p for p, m in route_table(app_client.app) if "POST" in m]  # type: ignore[arg-type]
    assert len(posts) >= 6
    for path in posts:
        if path == "/login":
            continue
        r = app_client.post(fill_path(path), data={"x": "1"}, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code)
        assert "CSRF" in r.text


def test_operator_ack_is_403_and_audited(app_client: TestClient, db: Database) -> None:
    store_results(db)
    token = login(app_client, "operator")
    alarms = app_client.get("/api/alarms").json()
    assert len(alarms) == 2 and all(a["state"] == "open" for a in alarms)
    r = app_client.post(f"/api/alarms/{alarms[0]['id']}/ack", headers={"X-CSRF-Token": token})
    assert r.status_code == 403
    r = app_client.post(
        f"/alarms/{alarms[0]['id']}/ack", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 403
    with db.session() as s:
        denied = s.execute(
            text("select actor, role, action, outcome from audit_log where outcome = 'denied'")
        ).all()
    assert [tuple(d) for d in denied] == [("operator", "operator", "alarm_ack", "denied")] * 2
    assert all(a["state"] == "open" for a in app_client.get("/api/alarms").json())
    # a supervisor may, but with no broker link the ack is not sent and says so
    app_client.cookies.clear()
    token = login(app_client, "supervisor")
    r = app_client.post(f"/api/alarms/{alarms[0]['id']}/ack", headers={"X-CSRF-Token": token})
    assert r.status_code == 503 and "not sent" in r.json()["detail"]
    assert app_client.get("/api/alarms").json()[0]["state"] == "open"


def test_roles_gate_admin_pages_and_export(app_client: TestClient) -> None:
    login(app_client, "viewer")
    assert app_client.get("/").status_code == 200
    assert app_client.get("/admin/keys").status_code == 403
    assert app_client.get("/search/export.csv").status_code == 403
    assert app_client.get("/audit").status_code == 403
    app_client.cookies.clear()
    login(app_client, "supervisor")
    assert app_client.get("/audit").status_code == 200
    assert app_client.get("/admin/users").status_code == 403
    app_client.cookies.clear()
    login(app_client, "admin")
    assert app_client.get("/admin/users").status_code == 200


def test_login_is_throttled_and_sessions_end(app_client: TestClient) -> None:
    for _ in range(5):
        r = app_client.post("/login", data={"username": "viewer", "password": "wrong password"})
        assert r.status_code == 401
    # the right password no longer helps while throttled
    r = app_client.post("/login", data={"username": "viewer", "password": "correct horse battery"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # another user is not affected
    token = login(app_client, "operator")
    assert app_client.get("/me").json() == {"username": "operator", "role": "operator"}
    r = app_client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/api/results").status_code == 401


def test_search_and_csv_export(app_client: TestClient, db: Database) -> None:
    sent = store_results(db, 9)
    login(app_client, "operator")
    page = app_client.get("/search", params={"severity": "alarm"})
    assert page.status_code == 200
    assert page.text.count('class="sev-alarm') == 3
    api = app_client.get("/api/results", params={"consignment": "msku0000004"}).json()
    assert [r["scan_id"] for r in api] == [sent[3]["scan_id"]]
    r = app_client.get("/search/export.csv", params={"severity": "alarm", "device": "dev-1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["scan_id"] for row in rows) == sorted(
        s["scan_id"] for s in sent if s["severity"] == "alarm"
    )
    assert {row["signature_state"] for row in rows} == {"valid"}
    assert app_client.get("/search", params={"date_from": "not-a-date"}).status_code == 400
    scan = app_client.get(f"/scans/{sent[0]['scan_id']}")
    assert scan.status_code == 200 and "MSKU0000001" in scan.text
    report = app_client.get(f"/scans/{sent[0]['scan_id']}/report")
    assert report.status_code == 200 and "@media print" not in report.text  # CSS is external
    with db.session() as s:
        actions = [a for (a,) in s.execute(text("select action from audit_log order by id"))]
    assert "export" in actions and "report" in actions


def test_audit_log_is_append_only_and_an_edit_is_detected(db: Database) -> None:
    with db.session() as s:
        for i in range(5):
            audit.append(s, actor=f"user{i}", action="test", target=str(i), detail={"i": i})
    with db.session() as s:
        report = verify_chain(s)
        assert report.ok and report.entries >= 5
    # the database refuses an edit
    with pytest.raises(Exception, match="append-only"), db.session() as s:
        s.execute(text("update audit_log set actor = 'mallory' where id = 3"))
    with pytest.raises(Exception, match="append-only"), db.session() as s:
        s.execute(text("delete from audit_log where id = 3"))
    # someone with the owner's rights goes around the trigger: the chain still tells
    with db.session() as s:
        if db.dialect == "sqlite":
            s.execute(text("drop trigger audit_log_no_update"))
        else:
            s.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        s.execute(text("update audit_log set actor = 'mallory' where id = 3"))
    with db.session() as s:
        report = verify_chain(s)
        assert not report.ok and report.first_bad_id == 3
        assert "changed" in (report.problem or "")
        assert s.get(AuditEntry, 3).actor == "mallory"  # type: ignore[union-attr]


def test_audit_page_shows_tampering(app_client: TestClient, db: Database) -> None:
    login(app_client, "supervisor")
    assert "Hash chain verified" in app_client.get("/audit").text
    with db.session() as s:
        if db.dialect == "sqlite":
            s.execute(text("drop trigger audit_log_no_delete"))
        else:
            s.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        s.execute(text("delete from audit_log where id = (select max(id) from audit_log)"))
    page = app_client.get("/audit").text
    assert "AUDIT LOG TAMPERED" in page
    assert app_client.get("/api/audit/verify").json()["ok"] is False
