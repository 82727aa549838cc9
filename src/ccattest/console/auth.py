"""The console's bearer token: made on first start, kept owner-only, compared in constant
time. Anyone who can read the token file can read the console; nobody else can."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..errors import ConfigError

TOKEN_FILE = "console.token"  # noqa: S105 - a file name, not a secret


def load_or_create_token(path: Path) -> str:
    """The token in `path`, made (mode 0600) when the file does not exist yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the console token {path}",
                          found=exc.strerror or type(exc).__name__) from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def _read(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the console token {path} is readable by others",
                          expected="mode 0600", found=oct(path.stat().st_mode & 0o777),
                          hint=f"chmod 600 {path}, or delete it to make a new one")
    token = path.read_text(encoding="ascii").strip()
    if len(token) < 32:
        raise ConfigError(f"the console token {path} is too short",
                          expected="at least 32 characters", hint="delete it to make a new one")
    return token


def bearer_ok(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
