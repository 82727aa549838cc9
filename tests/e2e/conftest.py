"""Real NVFlare POC deployments on 127.0.0.1: a server and two clients in separate
processes, software TEEs, every process stopped by PID at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nvflare", reason="the [nvflare] extra is not installed")

from ccattest.nvflare.poc import PocFederation


@pytest.fixture
def poc(tmp_path: Path) -> Iterator[PocFederation]:
    federation = PocFederation(tmp_path)
    federation.prepare()
    try:
        yield federation
    finally:
        federation.stop()
        for site in ("server", *federation.clients):
            assert not federation.alive(site), f"{site} still running after teardown"
