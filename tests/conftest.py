"""Shared fixtures: a real mosquitto broker per test, on a free loopback port.

Tests live in tiers (``unit``, ``component``, ``e2e``, ``hil``; see ``pytest.ini_options`` in
pyproject.toml); their helpers are in ``support/``, which is on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_db import database_url
from mosquitto_broker import Broker, BrokerFactory, BrokerTls
from release_build import build_release, wheelhouse


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerFactory]:
    """Make started brokers: ``factory(persistence=, tls=, max_inflight=, users=)``; all
    killed at teardown."""
    made: list[Broker] = []

    def make(
        persistence: bool = False,
        tls: BrokerTls | None = None,
        max_inflight: int = 0,
        users: dict[str, str] | None = None,
    ) -> Broker:
        broker = Broker(
            tmp_path_factory.mktemp("mosquitto"),
            persistence=persistence,
            tls=tls,
            max_inflight=max_inflight,
            users=users,
        )
        made.append(broker)
        return broker.start()

    yield make
    for broker in made:
        broker.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: BrokerFactory) -> Broker:
    """A started plain broker on a free port, without persistence."""
    return mosquitto_factory()


@pytest.fixture(scope="session")
def release_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree, built once per run with ``python -m build`` (sdist too)."""
    wheel, _sdist = build_release(tmp_path_factory.mktemp("dist"))
    return wheel


@pytest.fixture(scope="session")
def release_wheelhouse(release_wheel: Path) -> Path:
    """Wheels of every dependency of the release, for offline installs (skips if unobtainable)."""
    return wheelhouse(release_wheel)


TIERS = ("unit", "component", "e2e", "hil")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (the folder it lives in): ``pytest -m unit`` etc."""
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(params=["sqlite", "postgresql"])
def console_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh console database: an SQLite file, then a new PostgreSQL database."""
    with database_url(request.param, tmp_path) as url:
        yield url
