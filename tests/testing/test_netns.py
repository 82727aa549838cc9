"""The network-fault harness itself: what it makes it removes (also after a crash, by the
sweep), a partition really drops, loss drops about the share asked, the relay delays, and
the root namespace is left as it was."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccattest.testing import netns

pytestmark = pytest.mark.slow

ECHO = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 9001))
import threading
def udp():
    while True:
        data, peer = u.recvfrom(2048); u.sendto(data, peer)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = s.accept()
    while (d := c.recv(65536)): c.sendall(d)
    c.close()
"""


@pytest.fixture(scope="module")
def available() -> None:
    reason = netns.unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but network namespaces are unavailable: {reason}")
        pytest.skip(reason)


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                          check=True).stdout


def _root_routes() -> str:
    return subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def net(available) -> Iterator[netns.Topology]:
    links, routes = _root_links(), _root_routes()
    with netns.Topology(["server", "site-1"]) as topology:
        topology.run("server", [sys.executable, "-c", ECHO])
        deadline = time.monotonic() + 20
        while not topology.connectable("site-1", topology.address("server"), 9000):
            assert time.monotonic() < deadline, "the echo server did not start"
            time.sleep(0.1)
        assert _root_links() == links and _root_routes() == routes
        yield topology
    assert not [n for n in netns.namespaces() if topology.token in n]
    assert _root_links() == links and _root_routes() == routes


def _udp_answers(net: netns.Topology, count: int, timeout: float = 0.2) -> int:
    answered = 0
    with net.socket("site-1", kind=socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        for i in range(count):
            try:  # a drop on the way out answers EPERM; on the way back, silence
                sock.sendto(str(i).encode(), (net.address("server"), 9001))
                while sock.recv(64) != str(i).encode():
                    pass
                answered += 1
            except (TimeoutError, PermissionError):
                pass
    return answered


def test_sites_reach_each_other_only_inside_their_namespaces(net):
    assert net.address("server") == "10.213.0.1" and net.address("site-1") == "10.213.0.2"
    assert net.connectable("site-1", net.address("server"), 9000)
    root = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True)
    assert "10.213." not in root.stdout  # their addresses exist only in their namespaces
    host, port = net.expose("server", 9000)
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"


def test_partition_drops_everything_until_healed(net):
    net.partition("site-1")
    try:
        assert not net.connectable("site-1", net.address("server"), 9000)
        assert _udp_answers(net, 3) == 0
        assert "drop" in net.counters("site-1")
    finally:
        net.heal()
    assert net.connectable("site-1", net.address("server"), 9000)
    assert _udp_answers(net, 3) == 3


def test_partition_from_named_peers_only(net):
    net.partition("server", from_=["site-1"])
    try:
        assert not net.connectable("site-1", net.address("server"), 9000)
        net.partition("server", from_=["hub"])
        assert "10.213.0.254" in net.counters("server")
    finally:
        net.heal("server")
    assert net.connectable("site-1", net.address("server"), 9000)


def test_loss_drops_about_the_share_asked(net):
    net.loss("site-1", 30)  # each probe crosses the link twice: ~49 % lost both ways
    try:
        answered = _udp_answers(net, 200, timeout=0.05)
    finally:
        net.loss("site-1", 0)
    assert 0.3 <= 1 - answered / 200 <= 0.68, answered
    assert "numgen" not in net.counters("site-1")
    assert _udp_answers(net, 20) == 20
    with pytest.raises(ValueError, match="percent"):
        net.loss("site-1", 101)


def test_delay_relay_adds_the_delay_inside_the_topology(net):
    host, port = net.delay("server", 9000, 0.1)
    assert host == netns.HUB_ADDRESS
    with net.socket("site-1") as sock:
        sock.settimeout(5)
        sock.connect((host, port))
        started = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        assert 0.2 <= time.monotonic() - started < 0.5


def test_processes_run_in_the_site_namespace(net):
    process = net.run("site-1", ["ip", "-o", "-4", "addr", "show", "eth0"],
                      stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=10)
    assert "10.213.0.2/24" in out


def test_teardown_removes_everything_and_kills_what_runs(available):
    knob = Path("/proc/sys/net/ipv4/tcp_rto_max_ms")
    root = knob.read_text() if knob.exists() else None
    topology = netns.Topology(["a"], rto_max_ms=1000)
    with topology:
        made = topology.namespaces
        if root is not None:  # capped in the site's namespace only
            inside = netns.in_namespace(topology.namespace("a"), knob.read_text)
            assert inside.strip() == "1000" and knob.read_text() == root
        assert len(made) == 2 and set(made) <= set(netns.namespaces())
        sleeper = topology.run("a", ["sleep", "300"])
        stray = subprocess.Popen(topology.command("a", ["sleep", "300"]))  # not tracked
    assert sleeper.wait(timeout=10) != 0
    assert stray.wait(timeout=10) != 0  # killed because it was in the namespace
    assert not set(made) & set(netns.namespaces())
    topology.close()  # twice is harmless


def test_a_failing_setup_leaves_nothing(available, monkeypatch):
    topology = netns.Topology(["a", "b"])
    real = netns._nft
    monkeypatch.setattr(netns, "_nft", lambda name, script: (_ for _ in ()).throw(
        netns.NetnsUnavailable("no nftables")) if name.endswith("-1") else real(name, script))
    with pytest.raises(netns.NetnsUnavailable, match="no nftables"):
        topology.setup()
    assert not [n for n in netns.namespaces() if topology.token in n]


def test_sweep_removes_what_a_dead_run_left_and_spares_live_ones(available):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{netns.PREFIX}{dead.pid}-abc123-0"
    live = f"{netns.PREFIX}{os.getpid()}-abc123-hub"
    other = "ccnfx-unrelated"
    for name in (stale, live, other):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "300"])
        time.sleep(0.2)
        removed = netns.sweep()
        assert stale in removed and live not in removed and other not in removed
        assert sleeper.wait(timeout=10) != 0
        assert stale not in netns.namespaces() and live in netns.namespaces()
    finally:
        for name in (stale, live, other):
            subprocess.run(["ip", "netns", "delete", name], check=False,
                           capture_output=True)


def test_misuse_is_refused(available):
    with pytest.raises(ValueError, match="distinct"):
        netns.Topology(["a", "a"])
    with pytest.raises(ValueError, match="distinct"):
        netns.Topology([])
    with pytest.raises(FileNotFoundError):
        netns.in_namespace("ccnf-no-such-namespace", lambda: None)


def test_unavailable_says_why(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in (netns.unavailable() or "")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None)
    assert "`ip` is not installed" in (netns.unavailable() or "")
