"""The console on a uvicorn server in a background thread: how `ccattest demo`, a CC
manager (cc_config `console:`) and the tests run it beside other work."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .auth import TOKEN_FILE, load_or_create_token
from .desk import desk_or_reason
from .tls import MutualTls
from .views import Federation

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
START_SECONDS = 15.0


def token_path(federation: Federation, workspace: Path) -> Path:
    """A site's kit keeps the token in its local/cc/; a folder of sites, at its top."""
    if len(federation.kits) == 1:
        return federation.kits[0].local / "cc" / TOKEN_FILE
    return workspace / TOKEN_FILE


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class ConsoleServer:
    """One console; `start` returns once it listens (or raises saying why it cannot)."""

    workspace: Path
    host: str = "127.0.0.1"
    port: int = 8765
    app_options: dict[str, Any] = field(default_factory=dict)
    server_options: dict[str, Any] = field(default_factory=dict)
    client_certs: MutualTls | None = None  # HTTPS, certificates from the federation's root

    def __post_init__(self) -> None:
        self.federation = Federation.find(self.workspace)
        self.token_file = token_path(self.federation, self.workspace)
        self.token = load_or_create_token(self.token_file)
        if self.client_certs is not None:
            self.server_options = {**self.server_options,
                                   **self.client_certs.uvicorn_options()}
            self.app_options = {**self.app_options, "client_certs": True}
        if "attest" not in self.app_options:  # the attest API verifies as the server's kit
            self.app_options = {**self.app_options, "attest": desk_or_reason(self.federation)}
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.server_options.get("ssl_certfile") else "http"
        return f"{scheme}://{host}:{self.port}/"

    def start(self) -> ConsoleServer:
        import uvicorn

        from .app import create_app

        if not port_free(self.host, self.port):
            raise ConfigError(f"cannot serve the console on {self.host}:{self.port}",
                              found="the port is in use",
                              hint="choose another port (--port, or console.port)")
        # proxy_headers off: uvicorn would otherwise take the client address from
        # X-Forwarded-For (sent by anyone on 127.0.0.1), and the rate limit keys on it.
        config = uvicorn.Config(create_app(self.federation, self.token, **self.app_options),
                                host=self.host, port=self.port, log_level="warning",
                                proxy_headers=False, **self.server_options)
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only on the main thread; this is not one.
        self._thread = threading.Thread(target=self._server.run, name="ccattest-console",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the console did not start on {self.host}:{self.port}",
                                  hint="see the log above for uvicorn's reason")
            time.sleep(0.05)
        # The first scrape would otherwise read every record whole (seconds for weeks).
        threading.Thread(target=self.federation.warm, name="ccattest-console-warm",
                         daemon=True).start()
        return self

    @property
    def attest_site(self) -> str | None:
        """The site the attest API verifies as; None when it answers 503 (see `why`)."""
        return getattr(self.app_options["attest"], "site", None)

    def serve_until_interrupted(self) -> None:
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
