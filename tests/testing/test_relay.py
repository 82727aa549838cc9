"""The delay relay on 127.0.0.1: it adds about the configured delay each way, carries bytes
intact both ways, and holds its bounds (connections, buffered bytes, lifetime)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from ccattest.testing.relay import Relay, RelayLimits


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Sink(socketserver.BaseRequestHandler):
    """Reads nothing until told: lets a relay's buffer fill."""

    release = threading.Event()

    def handle(self) -> None:
        self.release.wait(10)
        while self.request.recv(65536):
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def _round_trip(address: tuple[str, int], payload: bytes = b"ping") -> float:
    with socket.create_connection(address, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        assert got == payload
        return time.monotonic() - started


def test_adds_about_the_configured_delay_each_way(echo):
    direct = min(_round_trip(echo) for _ in range(3))
    with Relay(echo, delay_up=0.08, delay_down=0.05) as relay:
        assert relay.address is not None
        times = [_round_trip(relay.address) for _ in range(3)]
    assert direct < 0.05
    assert all(0.13 <= t < 0.13 + 0.15 for t in times), times
    assert relay.stats.accepted == 3 and relay.stats.active == 0
    assert not relay.running


def test_carries_a_large_stream_intact_and_passes_half_close(echo):
    payload = bytes(range(256)) * 8192  # 2 MiB: more than one buffer's worth
    with Relay(echo, delay_up=0.01, limits=RelayLimits(buffer_bytes=256 * 1024)) as relay, \
            socket.create_connection(relay.address, timeout=10) as sock:
        received = bytearray()

        def read() -> None:
            while data := sock.recv(65536):
                received.extend(data)

        reader = threading.Thread(target=read)
        reader.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # the echo sees EOF, ends, and the EOF comes back
        reader.join(10)
        assert not reader.is_alive()
        assert bytes(received) == payload
        assert relay.stats.peak_buffered <= 256 * 1024 + 65536


def test_refuses_connections_over_the_limit(echo):
    with Relay(echo, limits=RelayLimits(max_connections=2)) as relay:
        held = [socket.create_connection(relay.address, timeout=5) for _ in range(2)]
        for sock in held:  # both are relayed
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        with socket.create_connection(relay.address, timeout=5) as extra:
            assert extra.recv(1) == b""  # accepted and closed at once
        assert relay.stats.refused == 1 and relay.stats.peak == 2
        for sock in held:
            sock.close()


def test_stops_reading_when_its_buffer_is_full():
    _Sink.release.clear()
    server = _Server(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    limit = 128 * 1024
    try:
        with Relay(server.server_address[:2], limits=RelayLimits(buffer_bytes=limit)) as relay, \
                socket.create_connection(relay.address, timeout=5) as sock:
            sock.setblocking(False)
            sent = 0
            chunk = b"\0" * 65536
            deadline, stalled = time.monotonic() + 10, time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - stalled < 0.5:
                try:  # until every buffer on the way is full and the send stalls
                    sent += sock.send(chunk)
                    stalled = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.05)
            assert relay.stats.peak_buffered <= limit + 65536
            assert sent < 64 * 1024 * 1024  # the sender was held back, not buffered forever
            _Sink.release.set()
    finally:
        _Sink.release.set()
        server.shutdown()
        server.server_close()


def test_closes_everything_when_its_lifetime_ends(echo):
    relay = Relay(echo, limits=RelayLimits(lifetime_seconds=0.5))
    address = relay.start()
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        time.sleep(1.0)
        assert sock.recv(1) == b""  # the relay closed the connection
    relay.stop()
    assert not relay.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=1):
        pass


def test_an_unreachable_target_closes_the_client_and_is_counted():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[:2]  # bound, never listening: connections are refused
        with Relay(dead) as relay, socket.create_connection(relay.address, timeout=5) as sock:
            assert sock.recv(1) == b""
            deadline = time.monotonic() + 5
            while relay.stats.failed < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert relay.stats.failed == 1


def test_misuse_is_refused(echo):
    with pytest.raises(ValueError, match="negative"):
        Relay(echo, delay_up=-1)
    relay = Relay(echo)
    relay.start()
    try:
        with pytest.raises(RuntimeError, match="already"):
            relay.start()
    finally:
        relay.stop()
    relay.stop()  # twice is harmless
    with pytest.raises(OSError, match="assign"):
        Relay(echo, listen=("203.0.113.1", 0)).start()  # not an address of this machine
