"""The console's ASGI app (FastAPI): a versioned JSON API, Prometheus metrics and the
dashboard's pages.

Every route but `/healthz` needs `Authorization: Bearer <token>`; a request without it, or
with another token, is a 401 with a JSON body (a browser gets the login form instead, and
may then read with a session cookie: see session.py). API answers are `no-store` and carry security
headers; errors are JSON, never a traceback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .. import __version__
from ..errors import CCAttestError
from ..timeutil import parse_instant
from .attest import add_attest_routes, body_limit
from .auth import bearer_ok
from .desk import AttestDesk
from .detail_api import add_detail_routes
from .metrics import render_metrics
from .pages import LOGIN_STYLE_HASH, add_pages, login_page, wants_html
from .session import COOKIE, SAFE_METHODS, session_ok
from .views import MAX_EVENTS, Federation, json_object

API = "/api/v1"
OPEN_PATHS = ("/healthz", "/login")  # /login checks the token in its form itself
MAX_BODY_BYTES = 64 * 1024  # the read API takes no body; the attest API will take evidence
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                               f"style-src 'self' {LOGIN_STYLE_HASH}; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _authorized(request: Request, token: str) -> bool:
    """The bearer header, or for reading only, a browser's session cookie."""
    return bearer_ok(request.headers.get("authorization"), token) or (
        request.method in SAFE_METHODS and session_ok(request.cookies.get(COOKIE), token))


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(federation: Federation, token: str,
               attest: AttestDesk | CCAttestError | None = None, *,
               client_certs: bool = False) -> FastAPI:
    """`client_certs`: uvicorn runs HTTPS with CERT_REQUIRED against the federation's root
    (tls.py), so every connection already showed a certificate and needs no token."""
    app = FastAPI(title="ccattest console", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=f"{API}/openapi.json")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        limit = body_limit(request.url.path, MAX_BODY_BYTES)  # streamed bodies: attest.py
        if length is not None and (not length.isdigit() or int(length) > limit):
            response: Response = _error(413, "request body too large",
                                        expected=f"at most {limit} bytes")
        elif request.url.path not in OPEN_PATHS and not (
                client_certs and request.url.scheme == "https") and not _authorized(
                request, token):
            if wants_html(request):  # a browser: the login form, then a session cookie
                response = login_page(str(request.url.path))
            else:
                response = _error(401, "a bearer token is required",
                                  hint="send Authorization: Bearer <the console.token file>")
            response.headers["WWW-Authenticate"] = "Bearer"
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith(API) or request.url.path == "/metrics":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(CCAttestError)
    async def ccattest_error(_request: Request, error: CCAttestError) -> JSONResponse:
        return _error(400, error.message, expected=error.expected, found=error.found,
                      hint=error.hint)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        return _error(422, "the request does not parse", found=problems[:8])

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"the console failed: {type(error).__name__}")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(f"{API}/status")
    def status() -> dict[str, Any]:
        """Every site, its last rounds and exclusions (as `ccattest status --json`)."""
        view = federation.view()
        return {"sites": view["sites"], "rounds": view["rounds"],
                "excluded": view["excluded"]}

    @app.get(f"{API}/matrix")
    def matrix() -> dict[str, Any]:
        """Who trusts whom: one cell a (verifier, peer) with its status and age."""
        return {"matrix": federation.view()["matrix"]}

    @app.get(f"{API}/sites")
    def sites() -> dict[str, Any]:
        return {"sites": [{"name": kit.name, "role": kit.role} for kit in federation.kits]}

    @app.get(f"{API}/events", response_model=dict[str, Any])
    def events(site: str | None = None, kind: str | None = None,
               since: str | None = None, after: int = Query(-1, ge=-1),
               limit: int = Query(MAX_EVENTS, ge=1, le=MAX_EVENTS),
               before: int | None = Query(None, ge=0), until: str | None = None,
               order: str = Query("asc", pattern="^(asc|desc)$"),
               about: str | None = Query(None, max_length=200)) -> Response:
        """A site's record (the server's by default), oldest first, or newest first with
        `order=desc` (a timeline); `since`/`until` bound the time, `after`/`before` the
        index. `next` pages on: pass it as `after` (asc) or `before` (desc). `about`: only
        entries naming that site (read at most 20,000 entries a call; `next` goes on)."""
        when: datetime | None = parse_instant(since) if since else None
        end: datetime | None = parse_instant(until) if until else None
        if about:
            items, cursor = federation.events_about_json(
                about, site, kind=kind, since=when, until=end, after=after, before=before,
                limit=limit, newest_first=order == "desc")
            return Response(json_object({"next": cursor}, {"events": items}),
                            media_type="application/json")
        found = federation.events_json(site, kind=kind, since=when, until=end, after=after,
                                       before=before, limit=limit,
                                       newest_first=order == "desc")
        # Written from the entries' own JSON: parsing megabytes to serialize them is the cost.
        body = json_object({"next": found[-1][0] if len(found) == limit else None},
                           {"events": [event for _, event in found]})
        return Response(body, media_type="application/json")

    @app.get(f"{API}/receipts")
    def receipts(job: str | None = None) -> dict[str, Any]:
        """The job receipts in the server's record (the signed JWTs, to verify offline)."""
        found = [e for e in federation.events(kind="receipt", limit=MAX_EVENTS)
                 if job is None or (e["data"] or {}).get("job") == job]
        return {"receipts": found}

    @app.get(f"{API}/jwks")
    def jwks() -> Response:
        """The federation's public keys: what checks a receipt or a record."""
        keys = federation.jwks()
        if keys is None:
            return _error(404, "no federation key set in these kits",
                          hint="provisioning writes local/cc/federation.jwks.json")
        return JSONResponse(keys)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        body, content_type = render_metrics(federation)
        return Response(body, media_type=content_type)

    add_detail_routes(app, federation)
    add_attest_routes(app, attest, token, MAX_BODY_BYTES)
    add_pages(app, token)
    return app
