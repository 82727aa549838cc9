"""Loaded by the Python processes of tests/test_cli_offline.py (it is on their PYTHONPATH):
any attempt to resolve a name or open a connection is written to CCATTEST_NONET_LOG and
fails loudly, so a test can assert that `--offline` means no network at all."""

import os
import socket

_LOG = os.environ.get("CCATTEST_NONET_LOG")


def _refuse(what: str, *args: object, **kwargs: object) -> None:
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{what} {args!r}\n")
    raise OSError(f"network use in an --offline test: {what} {args!r}")


def _getaddrinfo(*args: object, **kwargs: object) -> None:
    _refuse("getaddrinfo", *args)


def _connect(self: socket.socket, *args: object) -> None:
    if self.family == socket.AF_UNIX:  # local IPC is not networking
        return _real_connect(self, *args)
    _refuse("connect", *args)


def _connect_ex(self: socket.socket, *args: object) -> int:
    if self.family == socket.AF_UNIX:
        return _real_connect_ex(self, *args)
    _refuse("connect_ex", *args)
    return 1


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
socket.getaddrinfo = _getaddrinfo
socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
