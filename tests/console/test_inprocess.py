"""cc_config `console:`: the server's CC manager runs the console in-process over its own
kit, stops it at SYSTEM_END, and keeps the federation going when it cannot start."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ccattest.console.server import free_port

pytest.importorskip("nvflare")


def _bootstrap(tmp_path: Path, port: int) -> Any:
    from nvflare.apis.event_type import EventType
    from nvflare.apis.fl_constant import FLContextKey

    from ccattest.nvflare.manager import CCManager
    from ccattest.provisioning import FederationRequest, SiteRequest, provision

    class Context:
        def get_prop(self, key: str, default: Any = None) -> Any:
            return str(tmp_path / "server") if key == FLContextKey.WORKSPACE_ROOT else default

        def get_engine(self) -> Any:
            return self  # has get_clients: a server's engine

        def get_clients(self) -> list[Any]:
            return []

    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1")])
    folders = {site.name: tmp_path / site.name / "local" / "cc" for site in request.sites}
    provision(request, folders, tmp_path / "root", datetime.now(UTC))
    config = folders["server"] / "cc_config.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                      "console": {"port": port}}))
    (tmp_path / "server" / "startup").mkdir()
    (tmp_path / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    manager = CCManager()
    manager.handle_event(EventType.SYSTEM_BOOTSTRAP, Context())
    return manager, Context()


def test_the_server_manager_serves_its_console_until_the_system_ends(tmp_path: Path) -> None:
    from nvflare.apis.event_type import EventType

    port = free_port()
    manager, context = _bootstrap(tmp_path, port)
    assert manager.console is not None
    token = (tmp_path / "server" / "local" / "cc" / "console.token").read_text().strip()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/api/v1/status").status_code == 401
        answer = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "server" in answer.json()["sites"]
    assert any(e["event"] == "console_started" for e in manager.events)
    manager.handle_event(EventType.SYSTEM_END, context)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_a_console_that_cannot_start_does_not_stop_the_server(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        manager, _ = _bootstrap(tmp_path, taken.getsockname()[1])
    assert manager.ready and manager.console is None
    failed = [e for e in manager.events if e["event"] == "console_failed"]
    assert failed and "port is in use" in failed[0]["detail"]
