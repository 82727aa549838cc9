"""A private network for the network-fault tests: one Linux network namespace per site,
each joined by a veth pair to a bridge in a hub namespace, addresses (10.213.0.0/24) that
exist only inside those namespaces. Nothing in the root namespace changes: no interface,
route or firewall rule; the test process reaches a site only through `expose()` (a relay
on 127.0.0.1 whose upstream socket is made inside the site's namespace).

Faults, all inside the site's own namespace:
- `partition(site)`: nftables drops everything on the site's link (or only to some peers);
  `heal()` removes the drops;
- `loss(site, percent)`: nftables drops that share of packets, in and out, at random;
- `delay(site, target, port, one_way)`: a `Relay` in the hub namespace that the site dials
  instead of the target, adding the delay in each direction (the kernel has no netem).

Namespaces are named `ccnf-<pid>-<random>-<n>`. Teardown (context manager, a finalizer
at garbage collection or interpreter exit) kills every process left in them and deletes
them, which takes their veths, bridge and nftables tables along; `sweep()`, run at every
set-up, deletes those of processes that no longer exist (a killed test run).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .relay import Relay, RelayLimits

PREFIX = "ccnf-"
SUBNET = "10.213.0"
HUB_ADDRESS = f"{SUBNET}.254"
CLONE_NEWNET = 0x40000000
TABLE = "ccnf"
T = TypeVar("T")


class NetnsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`/`nft`, no support)."""


def _ip(*args: str, check: bool = True, timeout: float = 30) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True,  # noqa: S603,S607
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _nft(namespace: str, script: str) -> None:
    result = subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"],  # noqa: S603,S607
                            input=script, capture_output=True, text=True, timeout=30,
                            check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"nft in {namespace}: {result.stderr.strip()}")


def namespaces() -> list[str]:
    """Every network namespace with a name in /run/netns."""
    out = _ip("netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def unavailable() -> str | None:
    """Why this machine cannot run the topology, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install -y iproute2 nftables)"
    probe = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}-hub"
    try:
        _ip("netns", "add", probe)
        _nft(probe, f"add table inet {TABLE}\n")
    except (NetnsUnavailable, OSError, subprocess.SubprocessError) as error:
        return f"cannot make a network namespace with nftables: {error}"
    finally:
        _ip("netns", "delete", probe, check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _kill_and_delete(name: str) -> None:
    for _ in range(3):
        pids = [int(p) for p in _ip("netns", "pids", name, check=False).split() if p.isdigit()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _ip("netns", "delete", name, check=False)


def sweep(prefix: str = PREFIX) -> list[str]:
    """Deletes the namespaces (and their processes) that a dead process of ours left."""
    removed = []
    for name in namespaces():
        match = re.match(rf"^{re.escape(prefix)}(\d+)-[0-9a-f]+-(hub|\d+)$", name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_and_delete(name)
            removed.append(name)
    return removed


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "setns"):  # pragma: no cover - Python 3.12+
            os.setns(fd, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), path)
    finally:
        os.close(fd)


def in_namespace(name: str, function: Callable[[], T], timeout: float = 10) -> T:
    """Calls `function` on a fresh thread that entered namespace `name` (setns moves only
    the calling thread): sockets it makes belong to that namespace for their whole life."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            _setns(f"/run/netns/{name}")
            box["value"] = function()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, name=f"ccattest-netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    if "value" not in box:  # pragma: no cover - a stuck setns
        raise TimeoutError(f"entering namespace {name} took over {timeout}s")
    return box["value"]


def _teardown(names: list[str], processes: list[subprocess.Popen[Any]],
              relays: list[Relay]) -> None:
    for relay in relays:
        relay.stop()
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
    for name in names:
        _kill_and_delete(name)


class Topology:
    """`with Topology(["server", "site-1"]) as net:` makes and later removes the network."""

    def __init__(self, sites: Sequence[str], *, prefix: str = PREFIX,
                 rto_max_ms: int | None = None) -> None:
        if not sites or len(set(sites)) != len(sites) or len(sites) > 200:
            raise ValueError("sites must be 1 to 200 distinct names")
        self.sites = list(sites)
        # TCP doubles its retransmission timeout up to 120 s: after a 30 s blackhole a
        # connection can stay silent for 20 s more once healed. Where the kernel lets a
        # namespace cap it (Linux 6.15+), `rto_max_ms` does, in these namespaces only.
        self.rto_max_ms = rto_max_ms
        self.token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.hub = f"{prefix}{self.token}-hub"
        self._names = {site: f"{prefix}{self.token}-{i}" for i, site in enumerate(sites)}
        self._addresses = {site: f"{SUBNET}.{i + 1}" for i, site in enumerate(sites)}
        self.processes: list[subprocess.Popen[Any]] = []
        self.relays: list[Relay] = []
        self._made: list[str] = []
        self._finalizer = weakref.finalize(self, _teardown, self._made, self.processes,
                                           self.relays)

    # --- set-up and teardown -------------------------------------------------------------
    def setup(self) -> Topology:
        sweep()
        try:
            self._add(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "addr", "add", f"{HUB_ADDRESS}/24", "dev", "br0")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for i, site in enumerate(self.sites):
                name = self._names[site]
                self._add(name)
                _ip("-n", self.hub, "link", "add", f"v{i}", "type", "veth", "peer", "name",
                    "eth0", "netns", name)
                _ip("-n", self.hub, "link", "set", f"v{i}", "master", "br0", "up")
                _ip("-n", name, "addr", "add", f"{self._addresses[site]}/24", "dev", "eth0")
                _ip("-n", name, "link", "set", "eth0", "up")
                _nft(name, self._table())
                if self.rto_max_ms is not None:
                    in_namespace(name, self._cap_rto)
        except BaseException:
            self.close()
            raise
        return self

    def _cap_rto(self) -> None:
        path = "/proc/sys/net/ipv4/tcp_rto_max_ms"  # this thread's namespace's own value
        if os.path.exists(path):
            with open(path, "w") as knob:
                knob.write(str(self.rto_max_ms))

    def _add(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    @staticmethod
    def _table() -> str:
        chains = "".join(
            f"add chain inet {TABLE} {chain} {{ type filter hook {hook} priority 0; }}\n"
            for chain, hook in (("partition_in", "input"), ("partition_out", "output"),
                                ("loss_in", "input"), ("loss_out", "output")))
        return f"add table inet {TABLE}\n{chains}"

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Topology:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def namespaces(self) -> list[str]:
        return list(self._made)

    # --- sites ---------------------------------------------------------------------------
    def namespace(self, site: str) -> str:
        return self._names[site]

    def address(self, site: str) -> str:
        return self._addresses[site]

    def command(self, site: str, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the site's namespace (for callers that keep their own Popen;
        teardown still kills whatever runs in the namespace)."""
        return ["ip", "netns", "exec", self._names[site], *argv]

    def run(self, site: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(self.command(site, argv), **popen)  # noqa: S603
        self.processes.append(process)
        return process

    def socket(self, site: str | None, family: int = socket.AF_INET,
               kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket that lives in the site's namespace (the hub's for site=None)."""
        name = self.hub if site is None else self._names[site]
        return in_namespace(name, lambda: socket.socket(family, kind))

    def connectable(self, site: str, host: str, port: int, timeout: float = 0.5) -> bool:
        """Whether a TCP connection from inside `site` to host:port succeeds now."""
        with self.socket(site) as sock:
            sock.settimeout(timeout)
            return sock.connect_ex((host, port)) == 0

    # --- faults --------------------------------------------------------------------------
    def partition(self, site: str, from_: Iterable[str] | None = None) -> None:
        """Drops the site's traffic: all of it on its link, or only to and from `from_`
        (site names, or "hub" for the relays)."""
        peers = None if from_ is None else [self._peer(p) for p in from_]
        if peers is None:
            rules = ('add rule inet {t} partition_in iifname "eth0" drop\n'
                     'add rule inet {t} partition_out oifname "eth0" drop\n')
        else:
            rules = "".join(f"add rule inet {{t}} partition_in ip saddr {a} drop\n"
                            f"add rule inet {{t}} partition_out ip daddr {a} drop\n"
                            for a in peers)
        _nft(self._names[site], rules.format(t=TABLE))

    def _peer(self, name: str) -> str:
        return HUB_ADDRESS if name == "hub" else self._addresses[name]

    def heal(self, *sites: str) -> None:
        """Removes the partitions of `sites` (of every site when none is named)."""
        for site in sites or self.sites:
            _nft(self._names[site], f"flush chain inet {TABLE} partition_in\n"
                                    f"flush chain inet {TABLE} partition_out\n")

    def loss(self, site: str, percent: int) -> None:
        """Drops `percent` % of the packets entering and leaving the site's link at random
        (replacing an earlier setting; 0 removes it)."""
        if not 0 <= percent <= 100:
            raise ValueError("percent is 0 to 100")
        script = f"flush chain inet {TABLE} loss_in\nflush chain inet {TABLE} loss_out\n"
        if percent:
            script += (f'add rule inet {TABLE} loss_in iifname "eth0" numgen random mod 100 '
                       f"< {percent} drop\n"
                       f'add rule inet {TABLE} loss_out oifname "eth0" numgen random mod 100 '
                       f"< {percent} drop\n")
        _nft(self._names[site], script)

    def counters(self, site: str) -> str:
        """The site's nftables rules as text (for a failing test's message)."""
        result = subprocess.run(["ip", "netns", "exec", self._names[site], "nft", "list",  # noqa: S603,S607
                                 "table", "inet", TABLE], capture_output=True, text=True,
                                timeout=30, check=False)
        return result.stdout

    def delay(self, target: str, port: int, one_way: float, *,
              limits: RelayLimits | None = None) -> tuple[str, int]:
        """A relay in the hub to target:port adding `one_way` seconds in each direction;
        returns the address that sites dial instead of the target."""
        relay = Relay((self._addresses[target], port), listen=(HUB_ADDRESS, 0),
                      delay_up=one_way, delay_down=one_way, limits=limits,
                      listen_socket=lambda family: self.socket(None, family),
                      upstream_socket=lambda family: self.socket(None, family))
        self.relays.append(relay)
        return relay.start()

    def expose(self, site: str, port: int, *, limits: RelayLimits | None = None
               ) -> tuple[str, int]:
        """A relay on 127.0.0.1 in the root namespace to the site's port, so that the test
        process reaches it (NVFlare's admin API); its upstream is inside the site's
        namespace and never crosses the link, so partitions do not cut it."""
        relay = Relay((self._addresses[site], port), limits=limits,
                      upstream_socket=lambda family: self.socket(site, family))
        self.relays.append(relay)
        return relay.start()
