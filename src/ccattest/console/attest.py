"""The console's attestation API, for attesters outside NVFlare (as a Trustee or Veraison
verifier would serve it):

    POST /api/v1/challenge  {"context"?, "attester"?}          -> a nonce and how to bind it
    POST /api/v1/attest     {"nonce", "evidence", "context"?, "attester"?}
                                                             -> the verdict and its EAR

Both take the bearer token in the Authorization header only, never a cookie, and are rate
limited per client address. Bodies are capped (1 MiB for evidence, 64 KiB elsewhere) whether
or not the request declares its length. Every refusal is JSON (`error`, and `expected`,
`found`, `hint` where known): bad input is a 4xx, a console that cannot verify a 503.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import CCAttestError, MalformedEvidence, PlatformUnavailable, StaleEvidence
from .auth import bearer_ok
from .desk import AttestDesk
from .ratelimit import retry_after

API = "/api/v1"
ATTEST_PATH = f"{API}/attest"
CHALLENGE_PATH = f"{API}/challenge"
MAX_ATTEST_BYTES = 1024 * 1024  # evidence with its certificates and collateral fits easily


class BodyTooLarge(Exception):
    """The body went past the route's limit while it was read."""


def body_limit(path: str, default: int) -> int:
    """The largest body a route takes: evidence on /attest, `default` everywhere else."""
    return MAX_ATTEST_BYTES if path == ATTEST_PATH else default


def _json(status: int, message: str, **extra: Any) -> JSONResponse:
    body = {"error": message, **{k: _plain(v) for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status)


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return str(value)


def refusal(error: CCAttestError) -> JSONResponse:
    """A challenge that cannot be redeemed is a conflict (ask for a new one); evidence of a
    platform this site cannot judge is unprocessable; anything else is a bad request."""
    status = 409 if isinstance(error, StaleEvidence) else \
        422 if isinstance(error, PlatformUnavailable) else 400
    return _json(status, error.message, expected=error.expected, found=error.found,
                 hint=error.hint)


def header_token_only(request: Request, token: str) -> JSONResponse | None:
    """The POST routes take the token from the Authorization header alone: a cookie is what
    a browser attaches by itself, so it must never authorise a state-changing request."""
    if bearer_ok(request.headers.get("authorization"), token):
        return None
    response = _json(401, "a bearer token is required",
                     hint="send Authorization: Bearer <the console.token file>; "
                     "cookies are not accepted here")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, read as it streams so that a request without Content-Length (chunked) is
    cut off at `limit` too, before it fills memory."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def _too_large(limit: int) -> JSONResponse:
    return _json(413, "request body too large", expected=f"at most {limit} bytes")


def _parse(body: bytes) -> Any:
    """JSON, or None for an empty body; anything else is a CCAttestError."""
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvidence("the request body is not JSON",
                                found=str(exc)[:120] or type(exc).__name__) from None


def add_attest_routes(app: FastAPI, desk: AttestDesk | CCAttestError | None, token: str,
                      default_limit: int = 64 * 1024) -> None:
    """Register the two routes. Without a desk (no CC config, or one that does not load)
    they answer 503 saying why; the rest of the console is unaffected."""

    async def handle(request: Request, action: str) -> Response:
        refused = header_token_only(request, token)
        if refused is not None:
            return refused
        if not isinstance(desk, AttestDesk):
            return _unavailable(desk)
        client = request.client.host if request.client else "unknown"
        wait = desk.limiter.take(client)
        if wait:
            response = _json(429, "too many requests", hint="retry after the Retry-After "
                             "seconds; an attestation takes two requests")
            response.headers["Retry-After"] = retry_after(wait)
            return response
        limit = body_limit(request.url.path, default_limit)
        try:
            data = _parse(await read_capped(request, limit))
            # Verification is CPU work (signatures, chains): off the event loop.
            answer = await run_in_threadpool(getattr(desk, action), data)
        except BodyTooLarge:
            return _too_large(limit)
        except CCAttestError as error:
            return refusal(error)
        return JSONResponse(answer)

    @app.post(CHALLENGE_PATH)
    async def challenge(request: Request) -> Response:
        """A single-use nonce and the report_data evidence answering it must bind."""
        return await handle(request, "challenge")

    @app.post(ATTEST_PATH)
    async def attest(request: Request) -> Response:
        """Judge evidence answering a challenge as this site judges a peer; a signed EAR."""
        return await handle(request, "attest")


def _unavailable(reason: CCAttestError | None) -> JSONResponse:
    if reason is None:
        return _json(503, "this console does not verify attestations",
                     hint="`ccattest serve` a kit (or folder) holding a CC config")
    found = reason.message if reason.found is None else f"{reason.message}: {reason.found}"
    return _json(503, "this console cannot verify attestations", found=found,
                 hint=reason.hint or "check the verifying kit's CC config")
