"""A userspace TCP relay that adds a one-way delay per direction: the network-fault tests'
stand-in for `tc netem delay`, which these kernels do not have.

Bounded on every axis: at most `max_connections` at once (more are accepted and closed at
once), at most `buffer_bytes` in flight per direction of a connection (the relay stops
reading until its queue drains, so TCP's own flow control pushes back on the sender), and
a total `lifetime_seconds` after which the relay closes its listener and every connection.
It runs its own asyncio loop in one daemon thread; `stop()` ends it and joins the thread.

Sockets come from factories so that the listening side and the upstream side may live in
different network namespaces (see `ccattest.testing.netns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SocketFactory = Callable[[int], socket.socket]
CHUNK = 64 * 1024


@dataclass(frozen=True)
class RelayLimits:
    max_connections: int = 64
    buffer_bytes: int = 1 << 20
    lifetime_seconds: float = 900.0
    connect_timeout_seconds: float = 5.0


@dataclass
class RelayStats:
    accepted: int = 0
    refused: int = 0  # over max_connections
    failed: int = 0  # the upstream could not be reached
    active: int = 0
    peak: int = 0
    peak_buffered: int = 0  # the most bytes queued in one direction of one connection


def _plain_socket(family: int) -> socket.socket:
    return socket.socket(family, socket.SOCK_STREAM)


class Relay:
    """Listens on `listen`, forwards each connection to `target`; data from the client
    reaches the target `delay_up` seconds after it arrived, data back `delay_down`."""

    def __init__(self, target: tuple[str, int], *, listen: tuple[str, int] = ("127.0.0.1", 0),
                 delay_up: float = 0.0, delay_down: float = 0.0,
                 limits: RelayLimits | None = None,
                 listen_socket: SocketFactory = _plain_socket,
                 upstream_socket: SocketFactory = _plain_socket) -> None:
        if delay_up < 0 or delay_down < 0:
            raise ValueError("a delay cannot be negative")
        self.target = target
        self.listen = listen
        self.delay_up = delay_up
        self.delay_down = delay_down
        self.limits = limits or RelayLimits()
        self._listen_socket = listen_socket
        self._upstream_socket = upstream_socket
        self.stats = RelayStats()
        self.address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- life cycle (caller's thread) ----------------------------------------------------
    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        if self._thread is not None:
            raise RuntimeError("the relay was already started")
        sock = self._listen_socket(socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.listen)
            sock.listen(self.limits.max_connections)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True,
                                        name=f"ccattest-relay-{port}")
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:  # pragma: no cover
            self.stop()
            raise RuntimeError(f"the relay did not start: {self._error}")
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and self._done is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own meanwhile
                loop.call_soon_threadsafe(self._done.set)
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the loop (relay thread) ---------------------------------------------------------
    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(sock))
        except BaseException as error:  # pragma: no cover - reported by start()
            self._error = error
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._done = asyncio.Event()
        server = await asyncio.start_server(self._accept, sock=sock,
                                            limit=self.limits.buffer_bytes)
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), self.limits.lifetime_seconds)
        server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        if self._done is not None and self._done.is_set():  # pragma: no cover - racing stop
            writer.close()
            return
        if self.stats.active >= self.limits.max_connections:
            self.stats.refused += 1
            writer.close()
            return
        self.stats.accepted += 1
        self.stats.active += 1
        self.stats.peak = max(self.stats.peak, self.stats.active)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            self.stats.active -= 1
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        upstream = self._upstream_socket(socket.AF_INET)
        upstream.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, self.target),
                                   self.limits.connect_timeout_seconds)
        except (OSError, TimeoutError):
            upstream.close()
            self.stats.failed += 1
            return
        up_reader, up_writer = await asyncio.open_connection(
            sock=upstream, limit=self.limits.buffer_bytes)
        pipes = [asyncio.ensure_future(self._pipe(reader, up_writer, self.delay_up)),
                 asyncio.ensure_future(self._pipe(up_reader, writer, self.delay_down))]
        try:
            # Each direction ends on its own EOF (half-close); an error ends both.
            for finished in asyncio.as_completed(pipes):
                if not await finished:
                    break
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    delay: float) -> bool:
        """Copies one direction, each chunk `delay` seconds after it arrived. True when the
        source closed cleanly (its EOF passed on), False on an error."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Event()
        room.set()
        pending = 0
        limit = self.limits.buffer_bytes

        async def feed() -> None:
            nonlocal pending
            while True:
                await room.wait()
                data = await reader.read(min(CHUNK, limit))
                queue.put_nowait((loop.time() + delay, data))
                if not data:
                    return
                pending += len(data)
                self.stats.peak_buffered = max(self.stats.peak_buffered, pending)
                if pending >= limit:
                    room.clear()

        async def deliver() -> None:
            nonlocal pending
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                pending -= len(data)
                if pending < limit:
                    room.set()

        tasks = [asyncio.ensure_future(feed()), asyncio.ensure_future(deliver())]
        try:
            await asyncio.gather(*tasks)
            return True
        except (OSError, asyncio.IncompleteReadError):
            return False
        finally:
            for task in tasks:
                task.cancel()
