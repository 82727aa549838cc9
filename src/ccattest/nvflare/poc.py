"""A local NVFlare POC federation on 127.0.0.1 with ccattest configured: for the end-to-end
tests and the demo. Orchestration only (subprocesses with timeouts, logs in the workspace);
nothing here runs during verification.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PlatformUnavailable
from ..mesh.actions import ActionConfig
from ..mesh.config import RoundsConfig
from ..provisioning import FederationRequest, SiteRequest
from ..timeutil import utcnow
from .kits import Kit, configure_kits, find_kit

SERVER_MODULE = "nvflare.private.fed.app.server.server_train"
CLIENT_MODULE = "nvflare.private.fed.app.client.client_train"
ADMIN = "admin@nvidia.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
             ) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class PocFederation:
    workspace: Path
    clients: Sequence[str] = ("site-1", "site-2")
    python: str = sys.executable
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Each site in its own network namespace (ccattest.testing.netns.Topology) instead of
    # all on 127.0.0.1; `targets` sends a client to another address than the server's
    # (a delay relay). Both must be set before prepare().
    network: Any = None
    targets: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def prod(self) -> Path:
        return self.workspace / "poc" / "example_project" / "prod_00"

    @property
    def env(self) -> dict[str, str]:
        # HOME: `nvflare poc` writes ~/.nvflare; keep it inside the workspace.
        return {**os.environ, "HOME": str(self.workspace / "home"),
                "NVFLARE_POC_WORKSPACE": str(self.workspace / "poc"), "PYTHONUNBUFFERED": "1"}

    def kit(self, site: str) -> Kit:
        return find_kit(self.prod / site)

    # --- set-up --------------------------------------------------------------------------
    def prepare(self) -> None:
        nvflare = Path(self.python).parent / "nvflare"
        if not nvflare.exists():
            raise PlatformUnavailable("NVFlare is not installed",
                                      hint="pip install 'ccattest[nvflare]'")
        (self.workspace / "home").mkdir(parents=True, exist_ok=True)
        subprocess.run([str(nvflare), "poc", "prepare", "-c", *self.clients, "--force"],  # noqa: S603
                       env=self.env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, timeout=120)
        self._loopback_only()

    def _loopback_only(self) -> None:
        host = "localhost" if self.network is None else self.network.address("server")
        target = f"{host}:{self.port}"
        server = self.prod / "server" / "startup" / "fed_server.json"
        config = _load(server)
        config["servers"][0]["service"]["target"] = target
        config["servers"][0]["admin_port"] = self.port
        _dump(server, config)
        resources = self.prod / "server" / "local" / "resources.json"
        if resources.exists():  # a dead client leaves the list after this, not 600 s
            data = _load(resources)
            for entry in data.get("servers", []):
                entry["heart_beat_timeout"] = 30
            _dump(resources, data)
        for client in self.clients:
            path = self.prod / client / "startup" / "fed_client.json"
            config = _load(path)
            via = self.targets.get(client)
            config["servers"][0]["service"]["target"] = target if via is None else \
                f"{via[0]}:{via[1]}"
            _dump(path, config)
        admin = self.prod / ADMIN / "startup" / "fed_admin.json"
        config = _load(admin)
        # The admin API (the test process's) stays on 127.0.0.1 in the root namespace.
        port = self.port if self.network is None else self.network.expose("server",
                                                                          self.port)[1]
        config["admin"].update({"host": "localhost", "port": port})
        _dump(admin, config)

    def configure(self, *, not_cc: Sequence[str] = (), rounds: RoundsConfig | None = None,
                  actions: ActionConfig | None = None, seal: str = "off") -> dict[str, str]:
        kits = [self.kit("server"), *(self.kit(c) for c in self.clients)]
        request = FederationRequest(
            [SiteRequest(k.name, k.name not in not_cc) for k in kits],
            rounds=rounds or RoundsConfig(interval_seconds=3, deadline_seconds=10,
                                          request_timeout_seconds=5),
            actions=actions or ActionConfig(unreachable_grace_seconds=5), seal=seal)
        return dict(configure_kits(kits, request, self.workspace / "root", utcnow()))

    # --- processes -----------------------------------------------------------------------
    def _spawn(self, site: str, module: str, config: str, extra: Sequence[str]) -> None:
        kit = self.prod / site
        log_path = self.workspace / "logs" / f"{site}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [self.python, "-u", "-m", module, "-m", str(kit), "-s", config, "--set",
                   "secure_train=true", "org=nvidia", "config_folder=config", *extra]
        if self.network is not None:
            command = self.network.command(site, command)
        with log_path.open("ab") as log:
            self.processes[site] = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command, cwd=kit, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def start_server(self, timeout: float = 60) -> None:
        self._spawn("server", SERVER_MODULE, "fed_server.json", [])
        wait_for(self._port_open, timeout, f"the server on 127.0.0.1:{self.port}")

    def start_client(self, site: str) -> None:
        self._spawn(site, CLIENT_MODULE, "fed_client.json", [f"uid={site}"])

    def start(self, timeout: float = 90) -> None:
        self.start_server(timeout)
        for client in self.clients:
            self.start_client(client)

    def _port_open(self) -> bool:
        if self.network is not None:
            return bool(self.network.connectable("server", self.network.address("server"),
                                                 self.port))
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def alive(self, site: str) -> bool:
        process = self.processes.get(site)
        return process is not None and process.poll() is None

    def kill(self, site: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.get(site)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process this federation started, by process group; bounded waits."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    # --- what the sites did --------------------------------------------------------------
    def status(self, site: str) -> dict[str, Any]:
        path = self.prod / site / "local" / "cc" / "status.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def log(self, site: str) -> str:
        path = self.workspace / "logs" / f"{site}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def events(self, site: str, kind: str | None = None) -> list[dict[str, Any]]:
        events = self.status(site).get("events", [])
        return [e for e in events if kind is None or e.get("event") == kind]

    def session(self, timeout: float = 30.0) -> Any:
        from nvflare.fuel.flare_api.flare_api import new_secure_session

        return new_secure_session(ADMIN, str(self.prod / ADMIN), timeout=timeout)

    def restart(self, site: str, timeout: float = 60) -> None:
        """Kill `site` (SIGKILL, if it still runs) and start it again from the same kit, as
        an operator or a supervisor (NVFlare's start.sh loop) would."""
        self.kill(site)
        if site == "server":
            self.start_server(timeout)
        else:
            self.start_client(site)


def write_numpy_job(folder: Path, name: str = "np_fedavg", *, rounds: int = 1,
                    min_clients: int = 1, byoc: bool = False) -> Path:
    """A small NumPy scatter-and-gather job; `byoc` adds custom code (app/custom)."""
    app = folder / name / "app"
    (app / "config").mkdir(parents=True, exist_ok=True)
    _dump(folder / name / "meta.json", {"name": name, "resource_spec": {},
                                        "min_clients": min_clients,
                                        "deploy_map": {"app": ["@ALL"]}})
    _dump(app / "config" / "config_fed_server.json", {
        "format_version": 2,
        "workflows": [{"id": "sag", "path": "nvflare.app_common.workflows."
                       "scatter_and_gather.ScatterAndGather", "args": {
                           "min_clients": min_clients, "num_rounds": rounds,
                           "wait_time_after_min_received": 0, "aggregator_id": "aggregator",
                           "persistor_id": "persistor",
                           "shareable_generator_id": "shareable_generator",
                           "train_task_name": "train", "train_timeout": 0}}],
        "components": [
            {"id": "persistor", "path": "nvflare.app_common.np.np_model_persistor."
             "NPModelPersistor", "args": {}},
            {"id": "shareable_generator", "path": "nvflare.app_common.shareablegenerators."
             "full_model_shareable_generator.FullModelShareableGenerator", "args": {}},
            {"id": "aggregator", "path": "nvflare.app_common.aggregators."
             "intime_accumulate_model_aggregator.InTimeAccumulateWeightedAggregator",
             "args": {"expected_data_kind": "WEIGHTS"}}]})
    _dump(app / "config" / "config_fed_client.json", {
        "format_version": 2,
        "executors": [{"tasks": ["train"], "executor": {
            "path": "nvflare.app_common.np.np_trainer.NPTrainer", "args": {}}}]})
    if byoc:
        (app / "custom").mkdir(exist_ok=True)
        (app / "custom" / "my_code.py").write_text("print('custom code')\n")
    return folder / name
