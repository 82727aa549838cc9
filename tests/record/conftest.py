"""Record fixtures: the store's tests run against SQLite and a real PostgreSQL server (one
per test session, a fresh database per test). Under CI=true a missing PostgreSQL fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ccattest.testing.postgres import PostgresServer, PostgresUnavailable, postgres_server

ORIGIN = "ccattest.example/federation-a/site-1"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailable as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true needs PostgreSQL for the record's tests: {error}")
            pytest.skip(str(error))
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def record_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "record.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
