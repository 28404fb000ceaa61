"""The web console in a real headless browser: Debian's chromium driven by Playwright.

Playwright's Python package drives ``/usr/bin/chromium`` through ``executable_path`` (never
``playwright install``). The console runs in-process on SQLite against a real mosquitto;
simulated devices publish signed results and answer ``ack`` and ``get_spectrum``.
Screenshots go to ``tests/artifacts/console/`` (ignored by git).
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_helpers import PASSWORD, add_users
from mosquitto_broker import Broker, free_port
from paths import TESTS
from sim_devices import SimDevice

from controlroom.keys import register_key
from controlroom.service import Console, ConsoleSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = TESTS / "artifacts" / "console"
BROWSER_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


@pytest.fixture
def console(mosquitto: Broker, tmp_path: Path) -> Iterator[Console]:
    c = Console(
        ConsoleSettings(
            db_url=f"sqlite:///{tmp_path / 'console.sqlite'}",
            mqtt_port=mosquitto.port,
            http_port=free_port(),
        )
    )
    c.start()
    assert c.db is not None
    add_users(c.db)
    yield c
    c.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, timeout=30_000)
        yield b
        b.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)  # type: ignore[attr-defined]


def test_console_in_a_real_browser(console: Console, mosquitto: Broker, browser: object) -> None:
    assert console.db is not None
    dev = SimDevice(mosquitto.port, "altynkol", "altynkol-01")
    mute = SimDevice(mosquitto.port, "khorgos", "khorgos-03", answer=False)
    with console.db.session() as s:
        for d in (dev, mute):
            register_key(s, d.prefix, d.key.public_b64, state="approved", by="test")
    for _ in range(3):
        dev.result()
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        # 1. log in
        page.goto(console.url + "/alarms")
        assert "/login" in page.url
        page.fill("input[name=username]", "supervisor")
        page.fill("input[name=password]", "wrong password!")
        page.click("button[type=submit]")
        page.wait_for_selector("p.error")
        shot(page, "01-login-refused.png")
        page.fill("input[name=username]", "supervisor")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(console.url + "/alarms")
        assert "supervisor (supervisor)" in page.inner_text("nav")

        # 2. a new result appears live, without a reload
        page.goto(console.url + "/results")
        page.wait_for_selector("#live-results tr", state="attached")
        page.evaluate("window.__no_reload = 42")
        time.sleep(0.5)  # the event stream is connected by now
        live = dev.result(consignment="TGHU 8812345")
        row = page.wait_for_selector(f'#live-results tr[data-scan="{live["scan_id"]}"]')
        assert "TGHU 8812345" in row.inner_text()
        assert page.evaluate("window.__no_reload") == 42
        shot(page, "02-live-result.png")

        # 3. as supervisor, acknowledge an alarm and see the device confirm it
        alarm = dev.result(alarm=True, consignment="MSCU 5550001")
        silent = mute.result(alarm=True, consignment="MSCU 5550002")
        page.goto(console.url + "/alarms")
        a_row = f'tr[data-scan="{alarm["scan_id"]}"]'
        s_row = f'tr[data-scan="{silent["scan_id"]}"]'
        page.wait_for_selector(f"{a_row} td.state:has-text('OPEN')")
        page.wait_for_selector(f"{s_row} td.state:has-text('OPEN')")
        shot(page, "03-alarm-open.png")
        page.click(f"{a_row} button.ack")
        page.wait_for_selector(f"{a_row} td.state:has-text('acknowledged')")
        assert ("ack", {"scan_id": alarm["scan_id"], "operator": "supervisor"}) in dev.commands
        assert dev.alarm is None  # the device cleared it
        # a device that never answers: the alarm is not shown acknowledged
        page.click(f"{s_row} button.ack")
        page.wait_for_selector(f"{s_row} td.state:has-text('waiting for device')")
        time.sleep(2.0)
        assert "waiting for device" in page.inner_text(f"{s_row} td.state")
        assert "supervisor at" in page.inner_text(a_row)
        shot(page, "04-alarm-acknowledged.png")

        # 4. a scan page with its plot
        page.goto(f"{console.url}/scans/{alarm['scan_id']}")
        page.wait_for_selector("svg.spectrum polyline.scan", timeout=40_000)
        assert page.locator("svg.spectrum polyline.reference").count() == 1
        assert "library: cocaine hydrochloride" in (page.text_content("svg.spectrum") or "")
        assert "MSCU 5550001" in page.inner_text("table.facts")
        assert "valid (approved key" in page.inner_text("table.facts")
        shot(page, "05-scan-page.png")

        # 5. search and export
        page.goto(console.url + "/search")
        page.fill("input[name=substance]", "cocaine")
        page.select_option("select[name=severity]", "alarm")
        page.click("form.search button[type=submit]")
        page.wait_for_selector("#match-count")
        assert page.inner_text("#match-count") == "2"
        shot(page, "06-search.png")
        with page.expect_download() as dl:
            page.click("#export")
        path = dl.value.path()
        rows = list(csv.DictReader(open(path, encoding="utf-8")))  # noqa: SIM115
        assert sorted(r["scan_id"] for r in rows) == sorted([alarm["scan_id"], silent["scan_id"]])
        assert {r["severity"] for r in rows} == {"alarm"}
        (ARTIFACTS / "06-export.csv").write_bytes(Path(path).read_bytes())

        # the devices page shows both, online, with approved keys
        page.goto(console.url + "/devices")
        page.wait_for_selector(f'tr[data-prefix="{dev.prefix}"] td.status:has-text("online")')
        shot(page, "07-devices.png")
    finally:
        ctx.close()
        dev.close()
        mute.close()
