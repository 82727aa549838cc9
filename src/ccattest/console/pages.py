"""The dashboard: one HTML shell and its script and stylesheet, all in the package (no build
step, no CDN), and the login form that turns the console token into a session cookie.

The pages hold no data: the script reads the JSON API (see app.js), so what a page shows
is exactly what the API answers.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from importlib.resources import files
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .attest import BodyTooLarge, read_capped
from .auth import bearer_ok
from .session import COOKIE, SESSION_SECONDS, local_target, new_session

ASSET_TYPES = {"app.js": "text/javascript; charset=utf-8", "icon.svg": "image/svg+xml",
               "style.css": "text/css; charset=utf-8"}
PAGES = ("/", "/timeline", "/jobs")
MAX_LOGIN_BYTES = 4096


def _asset(name: str) -> str:
    return (files(__package__) / "static" / name).read_text(encoding="utf-8")


SHELL = _asset("index.html")
ASSETS = {name: _asset(name) for name in ASSET_TYPES}
LOGIN = _asset("login.html")
# The login page is all a signed-out browser may load, so its style is inline; CSP allows
# exactly that block by its hash (and still no inline script anywhere).
_STYLE = re.search(r"<style>(.*?)</style>", LOGIN, re.S)
assert _STYLE is not None
LOGIN_STYLE_HASH = "'sha256-" + base64.b64encode(
    hashlib.sha256(_STYLE.group(1).encode()).digest()).decode() + "'"


def login_page(target: str, problem: str = "", status: int = 401) -> HTMLResponse:
    text = LOGIN.replace('name="next" value=""',
                         f'name="next" value="{html.escape(local_target(target))}"')
    if problem:
        text = text.replace("<!--problem-->", f'<p class="error">{html.escape(problem)}</p>')
    return HTMLResponse(text, status_code=status)


def wants_html(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get(
        "accept", "") and not request.url.path.startswith(("/api/", "/metrics", "/static/"))


def add_pages(app: FastAPI, token: str) -> None:
    def shell() -> HTMLResponse:
        return HTMLResponse(SHELL)

    for path in PAGES:
        app.add_api_route(path, shell, methods=["GET"], include_in_schema=False)
    app.add_api_route("/sites/{name}", shell, methods=["GET"], include_in_schema=False)

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            return Response(status_code=404)
        return Response(ASSETS[name], media_type=ASSET_TYPES[name],
                        headers={"Cache-Control": "no-cache"})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        try:  # a login form is a few hundred bytes; a chunked flood is cut off early
            body = await read_capped(request, MAX_LOGIN_BYTES)
        except BodyTooLarge:
            return login_page("/", "That request was too large.", status=413)
        try:
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:
            form = {}
        target = (form.get("next") or ["/"])[0]
        given = (form.get("token") or [""])[0]
        if not bearer_ok(f"Bearer {given}", token):
            return login_page(target, "That is not this console's token.")
        response = RedirectResponse(local_target(target), status_code=303)
        response.set_cookie(COOKIE, new_session(token), max_age=SESSION_SECONDS,
                            httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response
