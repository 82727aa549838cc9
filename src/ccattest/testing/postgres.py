"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, listen on
127.0.0.1 only (a free port, no Unix socket), trust for TCP from 127.0.0.1 and nowhere else,
stopped with ``pg_ctl stop -m immediate`` and deleted on exit, also when a test fails.

PostgreSQL refuses to run as root; under root (CI containers) the server runs as the
``postgres`` OS user through ``runuser``. Durability is off (``fsync=off``): it is a test
server, and this makes initdb and CREATE DATABASE fast.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "postgres"
SEARCH = "/usr/lib/postgresql/*/bin"  # Debian and Ubuntu keep the binaries off PATH


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or no unprivileged user to run them as."""


def find_binaries(search: str = SEARCH) -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then the newest under ``search``."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = [Path(folder) for folder in glob.glob(search)
                  if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file()]
    if not candidates:
        raise PostgresUnavailable(f"no initdb and pg_ctl on PATH or under {search} "
                                  "(apt-get install postgresql)")
    return max(candidates, key=lambda path: _version(path.parent.name))


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    database: str
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def url(self, database: str | None = None) -> str:
        return (f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/"
                f"{database or self.database}")

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named, or the next ``t_N``); returns its URL. One per test
        keeps tests apart on one server."""
        import psycopg
        from psycopg import sql

        name = name or f"t_{next(self._counter)}"
        with psycopg.connect(host=self.host, port=self.port, user=self.user,
                             dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix, uid and gid the server runs as."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and no {SUPERUSER!r} user to run "
                                  "PostgreSQL as") from None
    runuser = shutil.which("runuser")
    prefix = [runuser, "-u", SUPERUSER, "--"] if runuser else ["su", SUPERUSER, "-s",
                                                                 "/bin/sh", "-c"]
    return prefix, account.pw_uid, account.pw_gid


def _run(prefix: Sequence[str], command: Sequence[str], cwd: Path, timeout: float,
         *, check: bool = True) -> None:
    # su (no runuser) takes one shell command line; runuser takes the argv as it is.
    argv = [*prefix, shlex.join(command)] if prefix[:1] == ["su"] else [*prefix, *command]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout)[-2000:]}")


@contextmanager
def postgres_server(database: str = "ccattest_test", *, binaries: Path | None = None,
                    timeout: float = 60) -> Iterator[PostgresServer]:
    folder = binaries or find_binaries()
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="ccattest-pg-"))
    data = root / "data"
    started = False
    try:
        if uid is not None:
            os.chown(root, uid, gid or -1)
        _run(prefix, [str(folder / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
             root, timeout)
        (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        port = _free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                       "unix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
                       "full_page_writes = off\nmax_connections = 50\n")
        log = root / "server.log"
        try:
            started = True
            _run(prefix, [str(folder / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                          "-t", str(int(timeout)), "start"], root, timeout + 5)
        except RuntimeError as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{error}\n{tail}") from None
        server = PostgresServer(port=port, database=database)
        server.create_database(database)
        yield server
    finally:
        if started:
            _run(prefix, [str(folder / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate",
                          "-w"], root, 60, check=False)
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PostgresServer", "PostgresUnavailable", "find_binaries", "postgres_server"]
