"""A browser's way in: the operator pastes the console token once into a login form and
gets a session cookie that stands for it.

Browsers cannot send a bearer header on page loads, so pages, their assets and the read
API also take this cookie, for GET and HEAD only. The cookie is HttpOnly and
SameSite=Strict, and the routes that act (the attest API) still want the header, so a
cross-site page can neither read the console nor make it act on the operator's behalf.

The cookie holds an expiry and an HMAC of it keyed by the token: nothing to store on the
server, and a new token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

COOKIE = "ccattest_console"
SESSION_SECONDS = 12 * 3600  # a working day; then the token is asked for again
SAFE_METHODS = frozenset({"GET", "HEAD"})


def _mac(token: str, expires: int) -> str:
    key = hashlib.sha256(b"ccattest console session\0" + token.encode()).digest()
    return hmac.new(key, str(expires).encode(), hashlib.sha256).hexdigest()


def new_session(token: str, *, now: float | None = None) -> str:
    expires = int(time.time() if now is None else now) + SESSION_SECONDS
    return f"{expires}.{_mac(token, expires)}"


def session_ok(cookie: str | None, token: str, *, now: float | None = None) -> bool:
    if not cookie or cookie.count(".") != 1:
        return False
    expires_text, mac = cookie.split(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires <= (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac.encode(), _mac(token, expires).encode())


def local_target(target: str | None) -> str:
    """Where to go after logging in: a path on this console, never another site."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target
