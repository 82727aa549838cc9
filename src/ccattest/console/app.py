"""The console's ASGI app (FastAPI): a versioned, read-only JSON API and Prometheus metrics.

Every route but `/healthz` needs `Authorization: Bearer <token>`; a request without it, or
with another token, is a 401 with a JSON body. API answers are `no-store` and carry security
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
from .auth import bearer_ok
from .metrics import render_metrics
from .views import MAX_EVENTS, Federation

API = "/api/v1"
MAX_BODY_BYTES = 64 * 1024  # the read API takes no body; the attest API will take evidence
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(federation: Federation, token: str) -> FastAPI:
    app = FastAPI(title="ccattest console", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url=f"{API}/openapi.json")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            response: Response = _error(413, "request body too large",
                                        expected=f"at most {MAX_BODY_BYTES} bytes")
        elif request.url.path != "/healthz" and not bearer_ok(
                request.headers.get("authorization"), token):
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

    @app.get(f"{API}/events")
    def events(site: str | None = None, kind: str | None = None,
               since: str | None = None, after: int = Query(-1, ge=-1),
               limit: int = Query(MAX_EVENTS, ge=1, le=MAX_EVENTS)) -> dict[str, Any]:
        """A site's record, oldest first (the server's by default); page with `after`."""
        when: datetime | None = parse_instant(since) if since else None
        found = federation.events(site, kind=kind, since=when, after=after, limit=limit)
        return {"events": found, "next": found[-1]["index"] if len(found) == limit else None}

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

    return app
