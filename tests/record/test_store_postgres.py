"""record.store's PostgreSQL side that the shared suite does not reach, and the throwaway
server of ccattest.testing.postgres."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ccattest.errors import ConfigError
from ccattest.record.store import RecordStore
from ccattest.testing import postgres as pg

from .conftest import ORIGIN


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_a_database_that_does_not_answer_fails_fast(scheme: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot open the record") as caught:
        RecordStore.open(f"{scheme}://ccattest:s3cret@127.0.0.1:{closed_port()}/record",
                         origin=ORIGIN)
    assert time.monotonic() - started < 5
    assert "refused" in str(caught.value.found).lower()
    assert caught.value.hint and "PostgreSQL runs" in caught.value.hint
    assert "s3cret" not in str(caught.value)
    assert "***" in caught.value.message  # the location, password hidden


def test_a_missing_database_on_a_live_server(postgres: pg.PostgresServer) -> None:
    with pytest.raises(ConfigError, match="cannot open the record") as caught:
        RecordStore.open(postgres.url("no_such_db"), origin=ORIGIN)
    assert "no_such_db" in str(caught.value.found)


def test_the_server_listens_on_loopback_only(postgres: pg.PostgresServer) -> None:
    assert postgres.host == "127.0.0.1"
    assert postgres.url() == (f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/"
                              "ccattest_test")
    with RecordStore.open(postgres.url(), origin=ORIGIN) as record, \
            record.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW listen_addresses").scalar() == "127.0.0.1"
        assert conn.exec_driver_sql("SHOW unix_socket_directories").scalar() == ""


def test_find_binaries_looks_beyond_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for version in ("9.6", "15", "13"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        (folder / "initdb").write_text("")
        (folder / "pg_ctl").write_text("")
    (tmp_path / "16" / "bin").mkdir(parents=True)  # no binaries in it
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert pg.find_binaries(str(tmp_path / "*" / "bin")) == tmp_path / "15" / "bin"
    with pytest.raises(pg.PostgresUnavailable, match="apt-get install postgresql"):
        pg.find_binaries(str(tmp_path / "none" / "*"))


def test_a_failed_start_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("initdb", "pg_ctl"):
        (folder / name).write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
        (folder / name).chmod(0o755)
    made: list[str] = []
    real = pg.tempfile.mkdtemp

    def mkdtemp(**kwargs: str) -> str:
        made.append(real(**kwargs))
        return made[-1]

    monkeypatch.setattr(pg.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(RuntimeError, match="initdb failed"), \
            pg.postgres_server(binaries=folder):
        pass  # pragma: no cover - never reached
    assert made and not Path(made[0]).exists()
